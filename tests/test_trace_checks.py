"""``check: answer | reasoning | both``: which text a task's constraints are checked on.

Replayed answers carry a trace (``reasoning``) beside the answer. One breaks ``no_comma`` in
its trace and keeps it in its answer, one the reverse, one has no trace, one a blank trace,
one keeps it in both: each ``check:`` mode must give the verdicts its text deserves, a
missing trace must be counted and failed (never passed), and an answer-only task must write
exactly the rows and metric keys it always wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import ifharness
from ifharness import metrics as metric_table
from ifharness.cli import main
from ifharness.errors import DataError
from ifharness.scoring import TRACE_WHOLE_TEXT, score
from ifharness.verifiers.reasonif import TRACE_WHOLE_TEXT as SUITE_FLAG

NO_COMMA = "punctuation:no_comma"
# key: (answer, trace); None: the row has no reasoning field
ROWS = {
    1: ("No commas in this answer.", "Well, a comma in the trace."),  # trace breaks it
    2: ("An answer, with a comma.", "A clean trace"),  # answer breaks it
    3: ("A clean answer.", None),  # no trace
    4: ("A clean answer.", "   \n"),  # a blank trace
    5: ("Clean answer.", "Clean trace."),  # both keep it
}
ANSWER_OK = {1: True, 2: False, 3: True, 4: True, 5: True}
TRACE_OK = {1: False, 2: True, 3: False, 4: False, 5: True}


def _task(tmp_path: Path, check: str, profile: str = "reference") -> str:
    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "key": k,
                    "prompt": f"Question {k}: answer without commas.",
                    "instruction_id_list": [NO_COMMA],
                    "kwargs": [{}],
                }
            )
            + "\n"
            for k in ROWS
        )
    )
    path = tmp_path / f"trace-{check}-{profile}.yaml"
    spec = {
        "name": f"trace-{check}",
        "suite": "ifeval",
        "profile": profile,
        "source": {"file": data.name},
        "check": check,
    }
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _responses(tmp_path: Path) -> Path:
    path = tmp_path / "answers.jsonl"
    lines = []
    for k, (answer, trace) in ROWS.items():
        row: dict = {"key": k, "response": answer}
        if trace is not None:
            row["reasoning"] = trace
        lines.append(json.dumps(row) + "\n")
    path.write_text("".join(lines))
    return path


def _rows(folder: Path) -> dict[int, dict]:
    lines = (folder / "verdicts.jsonl").read_text().splitlines()
    return {r["key"]: r for r in map(json.loads, lines)}


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _score_and_replay(tmp_path: Path, check: str, profile: str = "reference") -> Path:
    """Score through `ifharness score` and `ifharness run --backend replay`: same files."""
    task, responses = _task(tmp_path, check, profile), _responses(tmp_path)
    common = ["--task", task, "--responses", str(responses)]
    out = tmp_path / f"score-{check}-{profile}"
    assert main(["score", *common, "--out", str(out)]) == 0
    run = tmp_path / f"run-{check}-{profile}"
    assert main(["run", "--backend", "replay", *common, "--out", str(run)]) == 0
    assert (run / "verdicts.jsonl").read_text() == (out / "verdicts.jsonl").read_text()
    assert _metrics(run) == _metrics(out)
    return out


TRACE_KEYS = {"check", "reasoning_strict", "reasoning_loose", "trace_missing", "trace_whole_text"}
TRACE_METRICS = {"check", "missing_trace", "trace_whole_text", "reasoning", "both", "reasonif_ifs"}


def test_check_answer_judges_the_answer_and_writes_the_rows_it_always_wrote(tmp_path):
    out = _score_and_replay(tmp_path, "answer")
    rows = _rows(out)
    assert {k: r["strict"] for k, r in rows.items()} == {k: [v] for k, v in ANSWER_OK.items()}
    # byte for byte the answer-only row (no trace key), and no trace metric anywhere
    first = (out / "verdicts.jsonl").read_text().splitlines()[0]
    assert first == (
        '{"key": 1, "instruction_id_list": ["punctuation:no_comma"], '
        '"strict": [true], "loose": [true]}'
    )
    assert not any(TRACE_KEYS & set(r) for r in rows.values())
    m = _metrics(out)
    assert not TRACE_METRICS & set(m)
    assert "reasonif_ifs" not in m["ci"] and "reasonif_ifs_stderr" not in m
    assert m["prompt_level_strict_acc"] == pytest.approx(4 / 5)


def test_check_reasoning_judges_the_trace_and_counts_the_missing_ones(tmp_path):
    out = _score_and_replay(tmp_path, "reasoning")
    rows = _rows(out)
    for k, r in rows.items():
        assert r["strict"] == r["loose"] == [TRACE_OK[k]], k  # the trace, not the answer
        assert r["reasoning_strict"] == [TRACE_OK[k]] and r["check"] == "reasoning"
    # no trace and a blank trace: reported as missing, failed (the answers would pass)
    assert {k for k, r in rows.items() if r.get("trace_missing")} == {3, 4}
    assert not any(r.get("missing") for r in rows.values())  # the answers are there
    m = _metrics(out)
    assert m["check"] == "reasoning" and m["missing_trace"] == 2 and m["trace_whole_text"] == 0
    assert m["prompt_level_strict_acc"] == pytest.approx(2 / 5)
    assert m["reasoning"]["prompt_level_strict_acc"] == pytest.approx(2 / 5)
    assert m["reasonif_ifs"] == pytest.approx(2 / 5)
    assert m["reasonif_ifs_stderr"] == m["reasoning"]["prompt_level_strict_acc_stderr"]
    assert m["ci"]["reasonif_ifs"] == m["reasoning"]["ci"]["prompt_level_strict_acc"]
    assert "both" not in m


def test_check_both_reports_answer_and_trace_separately_and_together(tmp_path):
    out = _score_and_replay(tmp_path, "both")
    rows = _rows(out)
    for k, r in rows.items():
        assert r["strict"] == [ANSWER_OK[k]], k
        assert r["reasoning_strict"] == r["reasoning_loose"] == [TRACE_OK[k]], k
    m = _metrics(out)
    assert m["check"] == "both" and m["missing_trace"] == 2
    assert m["prompt_level_strict_acc"] == pytest.approx(4 / 5)  # the answer's
    assert m["reasoning"]["prompt_level_strict_acc"] == pytest.approx(2 / 5)  # the trace's
    assert m["reasonif_ifs"] == pytest.approx(2 / 5)
    # each constraint must hold on each: only key 5 keeps it in both texts
    assert m["both"]["prompt_level_strict_acc"] == pytest.approx(1 / 5)
    assert m["both"]["per_constraint"][NO_COMMA]["strict_followed"] == 1


def test_whole_text_profile_checks_the_text_when_no_trace_was_split_off(tmp_path):
    assert TRACE_WHOLE_TEXT == SUITE_FLAG
    out = _score_and_replay(tmp_path, "reasoning", profile="reasonif-2025")
    rows = _rows(out)
    assert rows[3]["strict"] == [True] and rows[3]["trace_whole_text"] is True
    # a trace that was split off but is blank stays blank: missing, failed
    assert rows[4]["strict"] == [False] and rows[4]["trace_missing"] is True
    assert "trace_missing" not in rows[3]
    m = _metrics(out)
    assert m["missing_trace"] == 1 and m["trace_whole_text"] == 1
    assert m["reasonif_ifs"] == pytest.approx(3 / 5)


def test_a_missing_answer_has_no_trace_either(tmp_path):
    task = ifharness.load_task(_task(tmp_path, "reasoning"))
    result = score(task, [{"key": 5, "response": "ok", "reasoning": "fine"}], n_resamples=0)
    rows = {r["key"]: r for r in result.verdicts}
    assert rows[1]["missing"] is True and rows[1]["trace_missing"] is True
    assert rows[1]["strict"] == [False] and rows[5]["strict"] == [True]
    assert result.metrics["missing_trace"] == 4 and result.metrics["missing_responses"] == 4


def test_verdict_rows_read_back_keep_the_trace_verdicts(tmp_path):
    # RunFolder validates verdicts.jsonl against VerdictRow: the trace keys must survive it
    from ifharness.rundir import RunFolder

    out = _score_and_replay(tmp_path, "both")
    back = {r["key"]: r for r in RunFolder(out).load().verdicts}
    assert back[1]["reasoning_strict"] == [False] and back[3]["trace_missing"] is True
    from ifharness.scoring import summarize

    again = summarize(list(back.values()), n_resamples=0)
    assert again["reasoning"]["prompt_level_strict_acc"] == pytest.approx(2 / 5)
    assert again["both"]["prompt_level_strict_acc"] == pytest.approx(1 / 5)


def test_unknown_check_is_refused_with_the_choices(tmp_path):
    with pytest.raises(DataError, match="check: 'trace' is not one of answer, reasoning, both"):
        ifharness.load_task(_task(tmp_path, "trace"))


def test_a_reasoning_field_that_is_not_text_is_refused(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"key": 1, "response": "x", "reasoning": ["a", "b"]}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'reasoning' must be a string"):
        score(ifharness.load_task(_task(tmp_path, "reasoning")), bad)


def test_trace_metric_is_a_headline_name_but_not_a_metric_every_run_has():
    assert "reasonif_ifs" in metric_table.headline_names()
    assert "reasonif_ifs" not in metric_table.metric_names()  # so answer-only runs lack it
    assert metric_table.get_metric("reasonif_ifs").of == "prompt_level_strict_acc"
    assert not metric_table.is_loose("reasonif_ifs")
    with pytest.raises(ValueError, match="not a base or composite metric"):
        metric_table.register_metric(
            metric_table.TraceMetric(name="nope", of="no_such_metric", description="x")
        )
