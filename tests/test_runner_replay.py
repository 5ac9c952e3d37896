"""``ifharness run --backend replay`` gives what ``ifharness score`` gives on the same file."""

from __future__ import annotations

import json
from pathlib import Path

from ifharness.cli import main
from tests.support.data import read_jsonl, shared


def _same_scores(score_dir: Path, run_dir: Path) -> None:
    assert (run_dir / "verdicts.jsonl").read_text() == (score_dir / "verdicts.jsonl").read_text()
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(
        (score_dir / "metrics.json").read_text()
    )


def test_replay_equals_score_on_the_ifeval_gpt4_answers(tmp_path):
    data, responses = shared("ifeval/input_data.jsonl"), shared("ifeval/gpt4_responses.jsonl")
    common = ["--task", "ifeval", "--data", str(data), "--responses", str(responses)]
    assert main(["score", *common, "--out", str(tmp_path / "score")]) == 0
    # the reference file has no answer for key 2785: scored as not followed by both, and
    # the run says it is missing, as score does: not a failure to retry (exit 0, no
    # failed.jsonl, status complete, counted in run.json)
    assert main(["run", "--backend", "replay", *common, "--out", str(tmp_path / "run")]) == 0
    _same_scores(tmp_path / "score", tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "complete" and run["model"]["source"] == "replay"
    assert "error" not in run and run["generation"]["missing_answers"] == 1
    assert run["identity"]["backend"] == "replay" and run["identity"]["responses_sha256"]
    assert len(read_jsonl(tmp_path / "run" / "completions.jsonl")) == 540
    assert not (tmp_path / "run" / "failed.jsonl").exists()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["missing"] == [2785]
    # run again: only the missing one is looked for, the same numbers
    assert main(["run", "--backend", "replay", *common, "--out", str(tmp_path / "run")]) == 0
    _same_scores(tmp_path / "score", tmp_path / "run")
    assert len(read_jsonl(tmp_path / "run" / "completions.jsonl")) == 540


def test_replay_joins_as_score_does_and_records_what_is_missing(tmp_path, capsys):
    data = shared("ifeval/input_data.jsonl")
    prompts = read_jsonl(data)[:6]
    rows = [
        {"key": prompts[0]["key"], "response": "first answer, with a comma."},
        {"prompt": prompts[1]["prompt"], "response": "joined by prompt text"},
        {
            "prompt": "  " + prompts[2]["prompt"] + "\n",
            "response": "joined by stripped prompt",
            "reasoning": "a trace, kept apart",
            "finish_reason": "length",
        },
        {"key": prompts[3]["key"], "response": "replaced by the later row"},
        {"key": prompts[3]["key"], "response": "THE LATER ROW WINS"},
        {"key": 999999, "prompt": prompts[4]["prompt"], "response": "unknown key, known prompt"},
        # prompts[5] has no answer
    ]
    responses = tmp_path / "answers.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows))
    subset = tmp_path / "prompts.jsonl"
    subset.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    common = ["--task", "ifeval", "--data", str(subset), "--responses", str(responses)]
    assert main(["score", *common, "--out", str(tmp_path / "score")]) == 0
    score_err = capsys.readouterr().err
    code = main(["run", "--backend", "replay", *common, "--out", str(tmp_path / "run")])
    assert code == 0  # scored; the prompt with no answer is missing, which rerunning cannot fix
    err = capsys.readouterr().err
    warning = (
        f"1 prompt(s) have no answer in {responses} and are scored as not followed: "
        f"keys {prompts[5]['key']}"
    )
    assert warning in score_err and warning in err  # the same words as score's
    assert "incomplete" not in err and "retry" not in err
    _same_scores(tmp_path / "score", tmp_path / "run")
    assert not (tmp_path / "run" / "failed.jsonl").exists()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["generation"]["missing_answers"] == 1 and run["sessions"][-1]["missing"] == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["missing"] == [prompts[5]["key"]] and metrics["missing_responses"] == 1
    done = {r["key"]: r for r in read_jsonl(tmp_path / "run" / "completions.jsonl")}
    assert done[prompts[3]["key"]]["response"] == "THE LATER ROW WINS"
    assert done[prompts[2]["key"]]["reasoning"] == "a trace, kept apart"
    assert done[prompts[2]["key"]]["finish_reason"] == "length"
    assert run["status"] == "complete"
    assert "1 (scored as not followed)" in (tmp_path / "run" / "report.html").read_text()

    # the missing answer arrives: another file is another run (its hash is the identity)
    responses.write_text(
        responses.read_text() + json.dumps({"key": prompts[5]["key"], "response": "late"}) + "\n"
    )
    assert main(["run", "--backend", "replay", *common, "--out", str(tmp_path / "run")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    code = main(["run", "--backend", "replay", *common, "--out", str(tmp_path / "run2")])
    assert code == 0 and not (tmp_path / "run2" / "failed.jsonl").exists()
    run2 = json.loads((tmp_path / "run2" / "run.json").read_text())
    assert run2["generation"]["missing_answers"] == 0
    assert json.loads((tmp_path / "run2" / "metrics.json").read_text())["missing"] == []


def test_replay_needs_a_file(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "--backend",
                "replay",
                "--task",
                "ifeval",
                "--data",
                str(shared("ifeval/input_data.jsonl")),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "--backend replay needs --responses" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--backend",
                "replay",
                "--task",
                "ifeval",
                "--data",
                str(shared("ifeval/input_data.jsonl")),
                "--responses",
                str(tmp_path / "nope.jsonl"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
