"""The CI gate recipe end to end: docs/ci-gate.sh (what the documented workflow runs) against the
committed baseline run of the embedded model on the bundled task.

The candidates are the baseline's own answers replayed (a re-run that must pass) and the same
answers with a planted regression (that must fail). Replay keeps this in the fast tier: what is
tested is the recipe, the committed folder and the gate, not the model.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "results" / "baselines" / "smollm2-135m-instruct__default"
SCRIPT = ROOT / "docs" / "ci-gate.sh"


def _baseline_rows(name: str) -> list[dict]:
    path = BASELINE / name
    assert path.is_file(), f"{path} is missing: the baseline must be committed (see its README)"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _recipe(tmp_path: Path, answers: list[dict], name: str) -> tuple[int, dict, str]:
    responses = tmp_path / f"{name}.jsonl"
    responses.write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    env = {
        **os.environ,
        "BASELINE": str(BASELINE),
        "CANDIDATE": str(tmp_path / name),
        "OUT": str(tmp_path / f"{name}-gate"),
        "RUN_ARGS": f"--backend replay --responses {responses}",
        "IFHARNESS": str(Path(sys.executable).with_name("ifharness")),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    gate_json = tmp_path / f"{name}-gate" / "gate.json"
    verdict = json.loads(gate_json.read_text()) if gate_json.is_file() else {}
    return done.returncode, verdict, done.stdout + done.stderr


def test_baseline_is_a_complete_run_of_the_default_model():
    info = json.loads((BASELINE / "run.json").read_text(encoding="utf-8"))
    assert info["kind"] == "run" and info["status"] == "complete"
    assert info["task"] == "default" and info["n_samples"] == 130
    assert info["model"]["source"] == "embedded"
    assert len(_baseline_rows("completions.jsonl")) == 130
    assert (BASELINE / "README.md").is_file()


def test_rerun_of_the_baselines_answers_passes_the_gate(tmp_path):
    answers = [
        {"key": r["key"], "response": r["response"]} for r in _baseline_rows("completions.jsonl")
    ]
    code, verdict, out = _recipe(tmp_path, answers, "same")
    assert code == 0, out
    assert verdict["passed"] is True
    assert (tmp_path / "same" / "report.html").is_file()
    assert (tmp_path / "same-gate" / "gate.md").is_file()


def test_planted_regression_fails_the_gate(tmp_path):
    verdicts = {str(v["key"]): v for v in _baseline_rows("verdicts.jsonl")}
    passing = [k for k, v in verdicts.items() if all(v["strict"])]
    assert len(passing) >= 20, "the baseline passes too few prompts to plant a drop in"
    broken = set(random.Random(0).sample(passing, len(passing) // 2))
    answers = [
        {"key": r["key"], "response": "" if str(r["key"]) in broken else r["response"]}
        for r in _baseline_rows("completions.jsonl")
    ]
    code, verdict, out = _recipe(tmp_path, answers, "worse")
    assert code == 1, out
    assert verdict["passed"] is False


def test_workflow_runs_the_tested_script():
    wf = yaml.safe_load((ROOT / "docs" / "github-actions-gate.yml").read_text(encoding="utf-8"))
    job = wf["jobs"]["gate"]
    assert job["env"]["BASELINE"] == str(BASELINE.relative_to(ROOT))
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "bash docs/ci-gate.sh" in runs
    assert "ci-gate.sh" in (ROOT / "docs" / "ci-gate.md").read_text(encoding="utf-8")
