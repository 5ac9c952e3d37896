"""Same answers, same bytes: in one process, twice, and across worker processes."""

from __future__ import annotations

import ifharness
from ifharness.results import write_score_run


def test_verdicts_byte_identical_twice_and_with_two_processes(ifeval_task, gpt4_path, tmp_path):
    outs = []
    for name, processes in [("a", 1), ("b", 1), ("c", 2)]:
        result = ifharness.score(ifeval_task, gpt4_path, processes=processes)
        write_score_run(tmp_path / name, result, gpt4_path)
        outs.append(tmp_path / name)
    first = (outs[0] / "verdicts.jsonl").read_bytes()
    assert first.count(b"\n") == 541
    for other in outs[1:]:
        assert (other / "verdicts.jsonl").read_bytes() == first
        assert (other / "metrics.json").read_bytes() == (outs[0] / "metrics.json").read_bytes()


def test_score_accepts_mappings_and_rows(ifeval_task):
    s = ifeval_task.samples[0]
    by_key = ifharness.score(ifeval_task.limit(1), {s.key: "No commas here"})
    by_prompt = ifharness.score(
        ifeval_task.limit(1), [{"prompt": s.prompt, "response": "No commas here"}]
    )
    assert by_key.verdicts == by_prompt.verdicts
    assert by_key.verdicts[0]["strict"][0] is True  # punctuation:no_comma
