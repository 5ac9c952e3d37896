"""Streamed scoring (``scoring.score_to_folder``): the files it leaves equal the in-memory
scorer's byte for byte, whatever the chunk size and the number of processes; a crash leaves
no half-written verdicts; and it does not hold every answer at once."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

import ifharness
from ifharness import scoring
from ifharness.results import score_run, write_score_run
from ifharness.run import score_completions
from ifharness.rundir import COMPLETIONS, VERDICTS, RunFolder
from ifharness.scoring import score, summarize

FILES = ("samples.jsonl", "completions.jsonl", "verdicts.jsonl", "metrics.json")


@pytest.fixture(scope="module")
def in_memory(ifeval_task, gpt4_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mem") / "run"
    write_score_run(out, score(ifeval_task, gpt4_path), responses=gpt4_path)
    return out


@pytest.mark.parametrize(("chunk_size", "processes"), [(7, 1), (7, 2), (10_000, 1), (200, 2)])
def test_streamed_files_equal_in_memory(
    ifeval_task, gpt4_path, in_memory, tmp_path, monkeypatch, chunk_size, processes
):
    pools = []
    real_pool = scoring.ProcessPoolExecutor

    def counting_pool(*args, **kwargs):
        pools.append(args)
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(scoring, "ProcessPoolExecutor", counting_pool)
    out = tmp_path / "streamed"
    result = score_run(out, ifeval_task, gpt4_path, processes=processes, chunk_size=chunk_size)
    assert isinstance(result, scoring.StreamedScore)
    for name in FILES:
        assert (out / name).read_bytes() == (in_memory / name).read_bytes(), name
    assert json.loads((out / "metrics.json").read_text()) == result.metrics
    # one pool for the whole scoring (541 answers in chunks of 7 is 78 chunks), none for 1
    assert len(pools) == (1 if processes > 1 else 0)
    missing = json.loads((in_memory / "metrics.json").read_text())["missing"]
    assert missing and result.joined.missing == missing  # GPT-4 left one prompt unanswered
    assert not list(out.glob(".*.tmp"))


def test_verdicts_read_back_on_demand(ifeval_task, gpt4_path, in_memory, tmp_path):
    result = score_run(tmp_path / "o", ifeval_task, gpt4_path, chunk_size=100)
    assert result.verdicts == RunFolder(in_memory).read_verdicts()


def _n2_completions(folder: RunFolder, gpt4_path: Path) -> None:
    """Two samples per prompt: sample 0 the GPT-4 answer, sample 1 the answer upper-cased
    (other verdicts), a few samples left out (missing) and one written twice (later wins)."""
    rows = [json.loads(line) for line in gpt4_path.read_text().splitlines() if line.strip()]
    out = []
    for i, r in enumerate(rows):
        base = {"key": r["key"], "reasoning": None, "n_tokens": 3}
        if i % 50 != 3:
            out.append({**base, "sample": 0, "response": r["response"], "finish_reason": "stop"})
        if i % 70 != 5:
            reason = "length" if i % 9 == 0 else "stop"
            out.append(
                {**base, "sample": 1, "response": r["response"].upper(), "finish_reason": reason}
            )
    out.append({**out[0], "response": "a later answer wins"})
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.file(COMPLETIONS).write_text("".join(json.dumps(r) + "\n" for r in out))


@pytest.mark.parametrize("processes", [1, 2])
def test_run_with_two_samples_streams_like_in_memory(ifeval_task, gpt4_path, tmp_path, processes):
    folder = RunFolder(tmp_path / "run")
    _n2_completions(folder, gpt4_path)
    rows = folder.read_completions()
    # the in-memory scorer `run` used before streaming: each sample index scored alone
    per = [score(ifeval_task, [r for r in rows if r["sample"] == i]) for i in range(2)]
    expected, finish = [], []
    for j, s in enumerate(ifeval_task.samples):
        for i, res in enumerate(per):
            expected.append({**res.verdicts[j], "sample": i})
            a = res.joined.answers.get(str(s.key))
            finish.append(a.finish_reason if a else None)
    metrics = summarize(expected, finish)
    metrics["missing"] = sorted({k for res in per for k in res.joined.missing}, key=str)

    scoring.STREAM_CHUNK, old = 25, scoring.STREAM_CHUNK  # many chunks
    try:
        result = score_completions(ifeval_task, folder, 2, processes)
    finally:
        scoring.STREAM_CHUNK = old
    assert isinstance(result, scoring.StreamedScore)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in expected)
    assert folder.file(VERDICTS).read_text() == text
    assert json.loads(folder.file("metrics.json").read_text()) == metrics
    assert metrics["samples"] is not None and metrics["truncation_rate"] > 0
    assert metrics["missing"]  # some samples were left out


def test_crash_mid_scoring_leaves_old_verdicts_or_none(
    ifeval_task, gpt4_path, in_memory, tmp_path, monkeypatch
):
    calls = []
    real = scoring._judge_chunk

    def dies_on_third_chunk(args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed mid-scoring")
        return real(args)

    monkeypatch.setattr(scoring, "_judge_chunk", dies_on_third_chunk)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="killed"):
        score_run(fresh, ifeval_task, gpt4_path, chunk_size=50)
    assert not (fresh / VERDICTS).exists() and not (fresh / COMPLETIONS).exists()
    assert not list(fresh.glob(".*"))  # no temp file left behind

    old = tmp_path / "old"
    old.mkdir()
    for name in FILES:
        (old / name).write_bytes((in_memory / name).read_bytes())
    calls.clear()
    with pytest.raises(RuntimeError, match="killed"):
        score_run(old, ifeval_task, gpt4_path, chunk_size=50)
    for name in FILES:
        assert (old / name).read_bytes() == (in_memory / name).read_bytes(), name
    assert not list(old.glob(".*.tmp"))


def test_streaming_does_not_hold_all_answers(tmp_path):
    """4000 answers of 12 kB (a 48 MB file): the in-memory scorer holds them all (its peak is
    above the file's size); streamed in chunks of 100 the peak is a small fraction of it.
    The bootstrap is left out of both (``n_resamples=0``): its prompt weights are bounded
    on their own (``stats.WEIGHTS_AT_ONCE``) and do not depend on the answers' size."""
    n, answer = 4000, "word " * 2400
    data, responses = tmp_path / "task.jsonl", tmp_path / "answers.jsonl"
    with data.open("w") as t, responses.open("w") as r:
        for i in range(n):
            row = {"key": i, "prompt": f"p{i}", "instruction_id_list": ["punctuation:no_comma"]}
            t.write(json.dumps({**row, "kwargs": [{}]}) + "\n")
            r.write(json.dumps({"key": i, "response": answer}) + "\n")
    size = responses.stat().st_size
    task = ifharness.load_task("ifeval", data=data)

    tracemalloc.start()
    try:
        streamed = scoring.score_to_folder(
            task,
            responses,
            RunFolder(tmp_path / "s"),
            chunk_size=100,
            write_completions=True,
            n_resamples=0,
        )
        _, stream_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tracemalloc.clear_traces()
        in_mem = score(task, responses, n_resamples=0)
        _, mem_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert streamed.metrics == in_mem.metrics
    assert mem_peak > size, (mem_peak, size)
    assert stream_peak < 0.2 * size, (stream_peak, size)
