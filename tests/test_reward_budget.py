"""Bounded cost: hostile answers through ``reward_batch(timeout_s=1)`` beside normal ones, and
every IFEval constraint fast on a 1 MB answer in strict mode.

The hostile answers: 1 MB without spaces, 1 MB of words, 1 MB of ". ", a 140k-line markdown
document, 200k newlines, 1 MB of NULs. Each is checked against every IFEval constraint (one
label of 25) and every IFBench constraint (one label of 58), in one batch with normal answers.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from ifharness.reward import RewardPool, reward, reward_batch
from ifharness.verifiers import Text, get, load_all, nlp
from tests.support.data import read_jsonl, shared

TIMEOUT_S = 1.0
# Timing bounds are loose on purpose (shared CI machines); IFHARNESS_TIME_SLACK scales them.
SLACK = float(os.environ.get("IFHARNESS_TIME_SLACK", "3"))


def hostile_answers(size: int = 1_000_000) -> dict[str, str]:
    rng = random.Random(0)
    vocab = "alpha beta Gamma delta EPSILON zeta eta theta".split()
    words = " ".join(rng.choice(vocab) for _ in range(size // 5))[:size]
    unit = ["# Section {i}", "", "* item **bold {i}** and *it*", "- dash {i}", "", "***"]
    lines = [u.format(i=i) for i in range(140_000 // len(unit) + 1) for u in unit][:140_000]
    return {
        "no_spaces": "x" * size,
        "words": words,
        "dot_space": ". " * (size // 2),
        "markdown": "\n".join(lines),
        "newlines": "\n" * 200_000,
        "nuls": "\x00" * size,
    }


HOSTILE = hostile_answers()


def _first_kwargs(path: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for row in read_jsonl(shared(path)):
        for cid, kw in zip(row["instruction_id_list"], row["kwargs"]):
            found.setdefault(cid, kw)
    return dict(sorted(found.items()))


@pytest.fixture(scope="module")
def ifeval_kwargs() -> dict[str, dict]:
    found = _first_kwargs("ifeval/input_data.jsonl")
    assert len(found) == 25
    return found


@pytest.fixture(scope="module")
def ifbench_kwargs() -> dict[str, dict]:
    return _first_kwargs("ifbench/IFBench_test.jsonl")


def test_every_ifeval_constraint_is_fast_on_1mb_answers(ifeval_kwargs):
    load_all()
    nlp.word_tokenize("Warm up. Now!")  # imports NLTK's Treebank expressions once
    nlp.detect_language("warm up the language profiles")
    slow = {}
    for name, text in HOSTILE.items():
        for cid, kw in ifeval_kwargs.items():
            c = get(cid, "ifeval")
            bound = c.bind(kw)
            t0 = time.perf_counter()
            c.func(Text(text), **bound)
            bare = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = reward(text, [{"id": cid, "kwargs": kw}], suite="ifeval", max_chars=None)
            through = time.perf_counter() - t0
            assert not r.over_budget
            worst = max(bare, through)
            if worst > 0.5 * SLACK:
                slow[name, cid] = round(worst, 3)
    assert not slow, f"over {0.5 * SLACK:g} s on a 1 MB answer: {slow}"


@pytest.mark.parametrize("suite", ["ifeval", "ifbench"])
def test_hostile_answers_in_one_batch_with_normal_ones(suite, ifeval_kwargs, ifbench_kwargs):
    rows = {r["key"]: r for r in read_jsonl(shared("ifeval/input_data.jsonl"))}
    normal = read_jsonl(shared("ifeval/gpt4_responses.jsonl"))[:40]
    kwargs = ifeval_kwargs if suite == "ifeval" else ifbench_kwargs
    full = [{"id": cid, "kwargs": kw} for cid, kw in kwargs.items()]
    texts = [a["response"] for a in normal]
    labels: list = (
        [
            {
                "instruction_id": rows[a["key"]]["instruction_id_list"],
                "kwargs": rows[a["key"]]["kwargs"],
            }
            for a in normal
        ]
        if suite == "ifeval"
        else [full] * len(normal)
    )
    expected = reward_batch(texts, labels, suite=suite, workers=0)
    hostile_at = []
    for text in HOSTILE.values():  # spread among the normal answers
        at = (7 * len(hostile_at) + 3) % len(texts)
        texts.insert(at, text)
        labels.insert(at, full)
        hostile_at = [h + (h >= at) for h in hostile_at] + [at]
    with RewardPool(workers=2, timeout_s=TIMEOUT_S, max_chars=None) as pool:
        pool.wait_ready()
        t0 = time.monotonic()
        out = pool.reward_batch(texts, labels, suite=suite)
        elapsed = time.monotonic() - t0
        grace = pool.grace_s
        assert pool.reward_batch(texts[:3], labels[:3], suite=suite)  # still serving
    assert len(out) == len(texts)
    # Every result came back within its budget: at worst each hostile answer used its whole
    # budget (plus the grace before a kill) on one of the two workers.
    bound = (len(hostile_at) / 2) * (TIMEOUT_S + grace) + 2.0
    assert elapsed < bound * SLACK, (elapsed, bound)
    hostile = set(hostile_at)
    assert [r for i, r in enumerate(out) if i not in hostile] == expected
    for i in hostile_at:
        r = out[i]
        if r.over_budget:
            assert r.budget_reason == f"check took longer than timeout_s={TIMEOUT_S:g}"
            assert r.score == 0.0 and all(v.followed is None for v in r.verdicts)
        else:
            assert all(v.followed is not None or v.reason for v in r.verdicts)
    if suite == "ifeval":
        # All 25 IFEval checks of a hostile answer fit in the budget on a quiet machine
        # (~0.6 s of 1 s here). On a loaded one a flag must be earned: the same answer,
        # scored in this process right after, takes most of the budget too.
        for i in hostile_at:
            if out[i].over_budget:
                t0 = time.monotonic()
                reward(texts[i], labels[i], suite=suite, max_chars=None)
                took = time.monotonic() - t0
                assert took > TIMEOUT_S / 2, (i, took)
