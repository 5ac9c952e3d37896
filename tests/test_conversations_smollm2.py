"""A conversation task on the embedded SmolLM2 (vLLM CPU): own answers fed back, kill -9.

Six three-turn conversations, short answers. ``ifharness run`` is started as a process and
killed with SIGKILL as soon as turn 2 has begun to reach ``completions.jsonl``; the same
command is run again to the end. What must hold:

* every turn k > 1 was sent with the model's *own* answer to turn k-1 in its history
  (read from the stored request of each turn, ``messages`` in the completion row);
* the rows written before the kill (all of turn 1, the first of turn 2) are unchanged after
  the rerun: read back, never regenerated, and the rerun generated only the rest;
* every (key, turn) is in ``completions.jsonl`` exactly once, and the run is scored per turn.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.data import write_jsonl
from tests.support.models import embedded_model_or_skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (make install installs it)",
    ),
]

TOPICS = ["the sea", "a forest", "a city", "the moon", "a river", "winter"]
N, TURNS = len(TOPICS), 3


def conversations() -> list[dict[str, Any]]:
    def turn(prompt: str, cid: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": prompt, "instruction_id_list": [cid], "kwargs": [kwargs]}

    return [
        {
            "key": f"conv{i}",
            "turns": [
                turn(f"Write two sentences about {topic}.", "punctuation:no_comma", {}),
                turn("Now say it again in lower case.", "change_case:english_lowercase", {}),
                turn(
                    "Now add a sentence about a dog.",
                    "keywords:existence",
                    {"keywords": ["dog"]},
                ),
            ],
        }
        for i, topic in enumerate(TOPICS)
    ]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Whole lines only (a kill may have torn the last one)."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def test_own_answers_fed_back_and_kill_9_during_turn_2(tmp_path):
    model = embedded_model_or_skip()
    task = tmp_path / "conv.yaml"
    task.write_text(
        "name: conv-smollm2\nsuite: ifeval\nsource: {}\nturns: conversation\n"
        "accumulate: cumulative\nmetric: if_avg4\n",
        encoding="utf-8",
    )
    data = write_jsonl(tmp_path / "conv.jsonl", conversations())
    out = tmp_path / "run"
    completions = out / "completions.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "ifharness.cli",
        "run",
        "--model",
        str(model),
        "--task",
        str(task),
        "--data",
        str(data),
        "--max-tokens",
        "32",
        # one answer in flight, one written at a time: turn 2 takes six steps to write
        "--chunk-size",
        "1",
        "--engine-arg",
        "max_num_seqs=1",
        "--out",
        str(out),
    ]

    # 1. start, and kill -9 once the first turn-2 answer is on disk
    log = tmp_path / "first.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 1200
        while proc.poll() is None and time.monotonic() < deadline:
            if any(r.get("turn") == 2 for r in read_rows(completions)):
                break
            time.sleep(0.01)
        assert proc.poll() is None, log.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(120)
    finally:
        time.sleep(1)
        try:  # the replica follows its parent down; never leave ours behind either way
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = read_rows(completions)
    turns_before = [r["turn"] for r in before]
    assert turns_before.count(1) == N and 1 <= turns_before.count(2) < N, turns_before
    assert 3 not in turns_before
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    # 2. the same command again, to the end
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"{len(before)}/{N * TURNS} samples already generated" in again.stderr

    after = read_rows(completions)
    assert after[: len(before)] == before  # turn 1 and the early turn 2 rows: unchanged
    ids = [(r["key"], r["turn"]) for r in after]
    assert len(ids) == len(set(ids)) == N * TURNS
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["sessions"][-1]["generated"] == N * TURNS - len(
        before
    )

    # 3. turn k was sent with the model's own answer to turn k-1
    by_id = {(r["key"], r["turn"]): r for r in after}
    for (key, t), row in by_id.items():
        sent = row["messages"]
        assert (
            sent[-1]["role"] == "user"
            and sent[-1]["content"] == conversations()[int(key[4:])]["turns"][t - 1]["prompt"]
        )
        assert [m["role"] for m in sent] == ["user", "assistant"] * (t - 1) + ["user"]
        for k in range(1, t):
            assert sent[2 * k - 1]["content"] == by_id[(key, k)]["response"]
    answers = [r["response"] for r in after if r["turn"] < TURNS]
    assert sum(bool(a.strip()) for a in answers) >= len(answers) - 2  # real text fed back

    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["per_turn"]) == ["1", "2", "3"]
    assert all(metrics["per_turn"][t]["n_prompts"] == N for t in ("1", "2", "3"))
    verdicts = [json.loads(x) for x in (out / "verdicts.jsonl").read_text().splitlines()]
    assert sorted((v["key"], v["turn"]) for v in verdicts) == sorted(ids)
