"""The vLLM runner on a real engine (CPU build), with a tiny random Llama (``tiny_model``).

The model is random, so its answers are nonsense, but deterministic nonsense: greedy decoding
must give the same text for a prompt whatever chunk or replica it lands in, and a run killed
with SIGKILL and started again must end with the same completions and metrics as one that was
never stopped. Engine start-ups are the slow part (tens of seconds each on two cores), so one
engine is shared by the module and the rest are the start-ups the tests are about.
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

from ifharness.run import RunConfig, execute
from ifharness.runners.base import Request, SamplingSettings
from tests.support.data import TOPICS, write_prompts
from tests.support.models import LentRunner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (make install installs it)",
    ),
]


@pytest.fixture(scope="module")
def tiny_runner(tiny_model):
    from ifharness.runners.vllm import VLLMOptions, VLLMRunner

    runner = VLLMRunner(VLLMOptions(model=str(tiny_model)))
    runner.start()
    yield runner
    runner.close()


def requests(count: int, **sampling: Any) -> list[Request]:
    s = SamplingSettings(**{"max_tokens": 24, **sampling})
    return [
        Request(k, [{"role": "user", "content": f"Write note {k} about {TOPICS[k % 8]}."}], s)
        for k in range(count)
    ]


def texts(runner: Any, reqs: list[Request], chunk_size: int) -> dict[Any, list[str]]:
    out: dict[Any, list[str]] = {}
    for chunk in runner.generate(reqs, chunk_size):
        for c in chunk:
            assert c.n_tokens <= reqs[0].sampling.max_tokens
            assert c.finish_reason in ("stop", "length")
            out.setdefault(c.key, []).append(c.text)
    return out


# ----------------------------------------------------------------------------- the runner


def test_greedy_answers_do_not_depend_on_chunking_or_schedule(tiny_runner):
    reqs = requests(12)
    whole = texts(tiny_runner, reqs, 12)
    assert sorted(whole) == list(range(12)) and all(len(v) == 1 for v in whole.values())
    assert len({v[0] for v in whole.values()}) > 6  # different prompts, different answers
    assert texts(tiny_runner, reqs, 5) == whole
    assert texts(tiny_runner, reqs, 1) == whole
    tiny_runner.options.schedule = "chunk"  # one LLM.chat per chunk, same engine
    try:
        assert texts(tiny_runner, reqs, 5) == whole
        assert texts(tiny_runner, reqs, 1) == whole
    finally:
        tiny_runner.options.schedule = "stream"


def test_sampled_n_per_prompt_on_cpu(tiny_runner):
    # per-request seeds crash vLLM's CPU build; the runner seeds the engine there instead
    got = texts(tiny_runner, requests(4, temperature=0.9, top_p=0.95, n=3, stop=("\n\n",)), 4)
    assert sorted(got) == [0, 1, 2, 3] and all(len(v) == 3 for v in got.values())


def test_describe_records_the_engine(tiny_runner, tiny_model):
    from ifharness.models import resolve

    info = tiny_runner.describe()
    assert info["backend"] == "vllm" and info["vllm"] and info["platform"] == "cpu"
    assert info["per_request_seed"] is False and info["engine_args"]["enforce_eager"] is True
    # the dtype the CPU runs well (bf16 where it has native bf16, else float32), and why
    assert info["max_model_len"] == 2048 and info["dtype"] == info["tuning"]["dtype"]["value"]
    assert set(info["tuning"]) == {"dtype", "threads", "max_num_seqs", "kv_cache_bytes"}
    assert info["kv_cache_bytes"] == info["tuning"]["kv_cache_bytes"]["value"]
    assert info["engine_chat_template_sha256"] == resolve(str(tiny_model)).chat_template_sha256


def test_two_data_parallel_replicas_give_the_same_answers(tiny_runner, tiny_model):
    from ifharness.runners.vllm import VLLMOptions, VLLMRunner, replica_envs

    options = VLLMOptions(model=str(tiny_model), data_parallel=2)
    envs = replica_envs(options)
    if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ and len(os.sched_getaffinity(0)) >= 2:
        binds = [e["VLLM_CPU_OMP_THREADS_BIND"] for e in envs]
        assert len(set(binds)) == 2  # each replica on its own cores
    reqs = requests(10)
    with VLLMRunner(options) as dp:
        chunks = list(dp.generate(reqs, 2))
    assert len(chunks) >= 2  # each replica took its share
    got: dict[Any, list[str]] = {}
    for chunk in chunks:
        for c in chunk:
            got.setdefault(c.key, []).append(c.text)
    assert got == texts(tiny_runner, reqs, 10)


# ----------------------------------------------------------------------------- kill -9, resume


def _session_processes(sid: int) -> list[int]:
    import psutil

    pids = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getsid(p.pid) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                pids.append(p.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def _run_and_stop(
    cmd: list[str], completions: Path, after_lines: int, how: str, log_path: Path
) -> int:
    """Start ``ifharness run``, stop it once ``after_lines`` answers are on disk; its exit code.

    how="ctrl-c": SIGINT to its process group, as a terminal's Ctrl-C; how="kill-9": SIGKILL
    to the ifharness process alone, as ``kill -9 PID``. Either way nothing may stay running.
    """

    def lines() -> int:
        return completions.read_bytes().count(b"\n") if completions.exists() else 0

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline and lines() < after_lines:
            time.sleep(0.01)
        assert proc.poll() is None, log_path.read_text()[-3000:]
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(120)
        deadline = time.monotonic() + 90
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _session_processes(proc.pid)
        assert not left, f"processes left running after {how}: {left}"
    finally:
        for pid in _session_processes(proc.pid):  # never leave ours behind, pass or fail
            os.kill(pid, signal.SIGKILL)
    return code


def test_ctrl_c_then_kill_9_then_the_same_command_resumes(tmp_path, tiny_model, tiny_runner):
    data = write_prompts(tmp_path / "prompts.jsonl", 16)
    out = tmp_path / "run"
    # two sequences at a time, so answers finish (and are written) two by two
    args = [
        "--model",
        str(tiny_model),
        "--task",
        "ifeval",
        "--data",
        str(data),
        "--max-tokens",
        "160",
        "--chunk-size",
        "2",
        "--engine-arg",
        "max_num_seqs=2",
    ]
    cmd = [sys.executable, "-m", "ifharness.cli", "run", *args, "--out", str(out)]
    completions = out / "completions.jsonl"

    code = _run_and_stop(cmd, completions, 1, "ctrl-c", tmp_path / "first.log")
    assert code == 130 and "run the same command again" in (tmp_path / "first.log").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and not (out / "metrics.json").exists()
    after_ctrl_c = len(completions.read_text().splitlines())
    assert 0 < after_ctrl_c < 16

    # the ifharness process alone: its engine replica notices and takes vLLM down with it
    _run_and_stop(cmd, completions, after_ctrl_c + 2, "kill-9", tmp_path / "second.log")
    done_before = len([x for x in completions.read_bytes().split(b"\n") if x.strip()])
    assert after_ctrl_c < done_before < 16
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert not (out / "metrics.json").exists()
    with open(completions, "ab") as f:  # and as if the kill had landed mid-write
        f.write(b'{"key": 1015, "sample": 0, "response": "cut sho')

    last = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert last.returncode == 0, last.stderr[-3000:]
    assert f"resuming {out}: {done_before}/16 samples already generated" in last.stderr
    assert "1 torn line(s) dropped" in last.stderr
    assert "prompt_level_strict_acc" in last.stdout
    rows = [json.loads(x) for x in completions.read_text().splitlines()]
    keys = [r["key"] for r in rows]
    assert sorted(keys) == list(range(1000, 1016))  # every sample exactly once
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and [s.get("status") for s in run["sessions"]] == [
        "interrupted",
        None,
        "complete",
    ]  # the killed session never got to say anything

    # the same run, never interrupted, on the module's engine
    whole = tmp_path / "whole"
    execute(
        RunConfig(
            model=str(tiny_model),
            task="ifeval",
            data=str(data),
            out=str(whole),
            max_tokens=160,
            chunk_size=16,
        ),
        lambda *a: LentRunner(tiny_runner),
    )
    expected = {
        r["key"]: r for r in map(json.loads, (whole / "completions.jsonl").read_text().splitlines())
    }
    assert {r["key"]: r for r in rows} == expected
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        (whole / "metrics.json").read_text()
    )
    assert (out / "verdicts.jsonl").read_text() == (whole / "verdicts.jsonl").read_text()
