"""``RewardPool``: persistent workers, same rewards as in-process, killed workers replaced."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from ifharness.reward import ConstraintsError, RewardPool, reward_batch
from ifharness.reward.pool import shared_pool
from ifharness.verifiers import Text, constraint, unregister_suite
from tests.support.data import read_jsonl, shared

HANG_SUITE = "reward-test-hang"


def register_hang() -> None:
    """A check that only a kill stops: SIGALRM is blocked, so the soft bound never fires.
    Registered in each worker through ``initializer`` (and in the test process)."""

    @constraint("test:hang", instruction="hang", suite=HANG_SUITE)
    def hang(t: Text) -> bool:
        if "hang" in t.raw:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(120)
        return True

    @constraint("test:nap", instruction="nap", suite=HANG_SUITE)
    def nap(t: Text) -> bool:
        time.sleep(NAP_S)
        return True


NAP_S = 0.4


@pytest.fixture(scope="module")
def gpt4_batch():
    rows = {r["key"]: r for r in read_jsonl(shared("ifeval/input_data.jsonl"))}
    answers = read_jsonl(shared("ifeval/gpt4_responses.jsonl"))
    labels = [
        str(
            [
                {
                    "instruction_id": rows[a["key"]]["instruction_id_list"],
                    "kwargs": rows[a["key"]]["kwargs"],
                }
            ]
        )
        for a in answers
    ]
    return [a["response"] for a in answers], labels


@pytest.fixture(scope="module")
def pool():
    register_hang()
    try:
        with RewardPool(workers=2, timeout_s=5, initializer=register_hang) as p:
            p.wait_ready()
            yield p
    finally:
        unregister_suite(HANG_SUITE)


def _pids(p: RewardPool) -> list[int]:
    return [w.process.pid for w in p._pool]


def test_pool_equals_in_process_and_is_reused(pool, gpt4_batch):
    texts, labels = gpt4_batch
    pids = _pids(pool)
    for mode in ("strict", "loose"):
        inline = reward_batch(texts, labels, suite="ifeval", mode=mode, workers=0)
        assert pool.reward_batch(texts, labels, suite="ifeval", mode=mode) == inline
    again = pool.reward_batch(texts[:100], labels[:100], suite="ifeval", reduce="all")
    assert again == reward_batch(texts[:100], labels[:100], suite="ifeval", reduce="all", workers=0)
    assert _pids(pool) == pids and all(w.process.is_alive() for w in pool._pool)


def test_tiny_batches_stay_in_process(pool):
    before = pool._job
    out = pool.reward_batch(["a, b", "ab"], [{"id": "punctuation:no_comma"}], suite="ifeval")
    assert [r.score for r in out] == [0.0, 1.0]
    assert pool._job == before


def test_hanging_check_is_killed_and_the_worker_replaced(pool):
    label = [{"id": "test:hang"}]
    texts = ["fine"] * 20 + ["please hang"] + ["fine"] * 20
    replaced, pids = pool.replaced, _pids(pool)
    t0 = time.monotonic()
    out = pool.reward_batch(texts, label, suite=HANG_SUITE, timeout_s=0.5)
    elapsed = time.monotonic() - t0
    assert elapsed < 0.5 + pool.grace_s + 2.0
    assert out[20].over_budget and out[20].score == 0.0
    assert out[20].budget_reason == "check took longer than timeout_s=0.5"
    assert out[20].verdicts[0].followed is None
    assert all(r.score == 1.0 and not r.over_budget for i, r in enumerate(out) if i != 20)
    assert pool.replaced == replaced + 1
    assert len(set(_pids(pool)) - set(pids)) == 1
    # the pool keeps working, with the replacement
    again = pool.reward_batch(["fine"] * 30, label, suite=HANG_SUITE, timeout_s=0.5)
    assert all(r.score == 1.0 for r in again)


def test_over_budget_score_and_max_chars(pool):
    label = [{"id": "punctuation:no_comma"}]
    texts = ["x" * 30_000, "y"] * 10
    out = pool.reward_batch(texts, label, suite="ifeval", max_chars=20_000, over_budget_score=-1.0)
    assert [r.over_budget for r in out] == [True, False] * 10
    assert out[0].score == -1.0 and out[0].budget_reason.endswith("max_chars is 20000")
    assert out[1].score == 1.0


def test_bad_constraints_raise_before_scoring(pool):
    with pytest.raises(ConstraintsError, match="response 1: instruction 0"):
        pool.reward_batch(
            ["a"] * 10,
            [
                str([{"instruction_id": ["punctuation:no_comma"], "kwargs": [{}]}]),
                "[{'instruction_id': ['nope:nope'], 'kwargs': [{}]}]",
            ]
            + ["[]"] * 8,
            suite="ifeval",
        )


def test_shared_pool_and_close():
    first = shared_pool(1)
    assert shared_pool(1) is first
    out = reward_batch(["a, b"] * 20, [{"id": "punctuation:no_comma"}], suite="ifeval", workers=1)
    assert all(r.score == 0.0 for r in out) and shared_pool(1) is first
    first.close()
    assert not any(w.process.is_alive() for w in first._pool)
    with pytest.raises(RuntimeError, match="closed"):
        first.reward_batch(["a"], [{"id": "punctuation:no_comma"}])
    assert shared_pool(1) is not first
    shared_pool(1).close()


def test_concurrent_callers_share_the_workers(pool, gpt4_batch):
    """Four threads with one answer each (OpenRLHF's per-sample calls) keep both workers
    busy: together they take about two naps, not four; and concurrent batches from many
    threads each get their own, right, results."""
    texts, labels = gpt4_batch
    expected = reward_batch(texts, labels, suite="ifeval", workers=0)
    # the module's pool fixture has registered the test suite here and in its workers
    with RewardPool(workers=2, inline_below=0, initializer=register_hang) as p:
        p.wait_ready()
        out: dict[int, object] = {}

        def nap(n: int) -> None:
            out[n] = p.reward_batch(["zzz"], [{"id": "test:nap"}], suite=HANG_SUITE)

        threads = [threading.Thread(target=nap, args=(n,)) for n in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        assert len(out) == 4
        assert elapsed < 3.2 * NAP_S, f"{elapsed:.2f} s: the calls ran one after another"

        got: dict[int, object] = {}

        def batch(n: int) -> None:
            part = slice(n * 60, (n + 1) * 60)
            got[n] = p.reward_batch(texts[part], labels[part], suite="ifeval")

        threads = [threading.Thread(target=batch, args=(n,)) for n in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(9):
            assert got[n] == expected[n * 60 : (n + 1) * 60]
