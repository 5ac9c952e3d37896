"""Generation overhead: `ifharness run` machinery versus a bare `LLM.chat`, one script.

Both generate greedy answers for the same prompts (the first BENCH_PROMPTS of the bundled
``default`` task, else of IFEval from ../shared/data) with the same model (the embedded
SmolLM2-135M-Instruct unless BENCH_MODEL names a folder) and the same engine settings (the
environment and ``LLM(...)`` keyword arguments the ifharness runner uses, prefix caching off
on both so repeats do not feed on each other):

* bare — ``vllm.LLM`` in this process; one ``llm.chat`` over every conversation, nothing
  written: the floor;
* ifharness — ``ifharness.run.execute`` into a fresh run folder, on a started ``VLLMRunner``
  (its replica process, the default schedule and chunk size, the reasoning split, one
  fsynced append per chunk, the progress line), then scoring and writing the run folder.

Both engines are started first (start-up is the same cost, paid once, and excluded), then
the two are timed back to back BENCH_REPEATS times, in alternating order, so load from
other processes on the machine hits both alike; the median of the paired ratios is the
result. The overhead ratio is generation wall time,
ifharness's ``drive`` (prompts in, every answer on disk) over the bare call; the whole
``execute`` (task loading, scoring, run folder) is printed beside it. For reference the
script also times bare ``llm.chat`` once per chunk (what ``--schedule chunk`` does), which
shows what draining the batch at every chunk boundary costs. Greedy answers are compared
with the bare call's; on a CPU a different batch composition can flip a near-tie, so the
count is reported, not required.

    make bench-run
    # or:
    BENCH_PROMPTS=256 BENCH_MAX_TOKENS=128 BENCH_REPEATS=5 python bench/bench_run.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_IFEVAL = ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
N_PROMPTS = int(os.environ.get("BENCH_PROMPTS", "128"))
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "64"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
TARGET = 1.05
ENGINE_ARGS = {"enable_prefix_caching": False}
# The started runner is lent to ``execute`` by ``tests.support.models.LentRunner``, the same
# wrapper the vLLM tests use; the repository root goes on sys.path so ``tests`` imports.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_prompts():
    from ifharness.loader import bundled_task_names, load_task

    if "default" in bundled_task_names():
        return "default", None, load_task("default").limit(N_PROMPTS)
    if not SHARED_IFEVAL.is_file():
        sys.exit(f"no default task and no {SHARED_IFEVAL}: nothing to generate for")
    return "ifeval", str(SHARED_IFEVAL), load_task("ifeval", data=SHARED_IFEVAL).limit(N_PROMPTS)


def main() -> int:
    from ifharness import models
    from ifharness.run import RunConfig, build_requests, default_chunk_size, execute
    from ifharness.runners.base import SamplingSettings
    from ifharness.runners.vllm import VLLMOptions, VLLMRunner, replica_envs, vllm_version
    from tests.support.models import LentRunner

    if vllm_version() is None:
        print("skipped: vLLM is not installed (make install)")
        return 0
    model_arg = os.environ.get("BENCH_MODEL")
    ref = models.resolve(model_arg)
    task_name, data, task = load_prompts()
    requests = build_requests(task, SamplingSettings(max_tokens=MAX_TOKENS), None)
    conversations = [r.messages for r in requests]
    chunk_size = default_chunk_size()
    options = VLLMOptions(model=ref.path, engine_args=dict(ENGINE_ARGS))
    print(
        f"model {ref.name}, task {task_name}: {len(conversations)} prompts, greedy, max_tokens "
        f"{MAX_TOKENS}, chunk size {chunk_size}, {REPEATS} repeats, vLLM {vllm_version()}",
        flush=True,
    )

    # -- the bare engine, set up exactly as the runner's replica sets up its own
    os.environ.update(replica_envs(options)[0])
    from vllm import LLM, SamplingParams
    from vllm.platforms import current_platform

    kwargs: dict[str, Any] = {"tensor_parallel_size": 1, "seed": 0, **ENGINE_ARGS}
    if current_platform.is_cpu():
        kwargs["enforce_eager"] = True  # as ifharness.runners.vllm.Engine does
    llm = LLM(model=ref.path, **kwargs)
    params = SamplingParams(n=1, max_tokens=MAX_TOKENS, temperature=0.0, top_p=1.0, stop=None)
    chunks = [conversations[i : i + chunk_size] for i in range(0, len(conversations), chunk_size)]

    def bare(batches: list[list[Any]]) -> tuple[float, int, list[str]]:
        started = time.perf_counter()
        outs = [o for b in batches for o in llm.chat(b, params, use_tqdm=False)]
        return (
            time.perf_counter() - started,
            sum(len(o.outputs[0].token_ids) for o in outs),
            [o.outputs[0].text for o in outs],
        )

    runner = VLLMRunner(options)
    runner.start()
    cfg: dict[str, Any] = {
        "model": model_arg,
        "task": task_name,
        "data": data,
        "limit": N_PROMPTS,
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": [],
        "seed": 0,
        "reasoning_parser": "none",
        "chunk_size": chunk_size,
        "options": {"schedule": "stream"},
        "engine_args": dict(ENGINE_ARGS),
    }
    bare_s, drive_s, execute_s = [], [], []
    tokens = 0
    identical = None

    main_cpu_s: list[float] = []

    def harness_once(out: Path) -> None:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        outcome = execute(RunConfig(out=str(out), **cfg), lambda *a: LentRunner(runner))
        execute_s.append(time.perf_counter() - started)
        drive_s.append(outcome.stats.seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        main_cpu_s.append(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
            for rep in range(REPEATS):
                out = Path(tmp) / f"run{rep}"
                if rep % 2:  # alternate the order, so drift in the machine's load cancels
                    harness_once(out)
                seconds, tokens, texts = bare([conversations])
                bare_s.append(seconds)
                if not rep % 2:
                    harness_once(out)
                rows = {
                    str(json.loads(x)["key"]): json.loads(x)["response"]
                    for x in (out / "completions.jsonl").read_text().splitlines()
                }
                identical = sum(rows.get(str(r.key)) == t for r, t in zip(requests, texts))
                print(
                    f"  repeat {rep + 1}: bare {seconds:7.2f} s   ifharness drive "
                    f"{drive_s[-1]:7.2f} s, execute {execute_s[-1]:7.2f} s   ratio "
                    f"{drive_s[-1] / seconds:.3f}",
                    flush=True,
                )
            per_chunk_s, _, _ = bare(chunks)
    finally:
        runner.close()
        llm.llm_engine.engine_core.shutdown()

    b, d, e = (statistics.median(x) for x in (bare_s, drive_s, execute_s))
    print(f"bare LLM.chat, one call   {b:8.2f} s  {tokens / b:7.1f} tok/s  (median)")
    print(
        f"ifharness run, generating {d:8.2f} s  {tokens / d:7.1f} tok/s  (median; schedule "
        f"{cfg['schedule']}, chunk size {chunk_size})"
    )
    print(
        f"ifharness run, everything {e:8.2f} s  (loading the task, generating, scoring, "
        "writing the run folder; engine start excluded)"
    )
    print(
        f"bare LLM.chat per chunk of {chunk_size} (what --schedule chunk does): "
        f"{per_chunk_s:.2f} s, {per_chunk_s / b:.3f} x the one call"
    )
    print(f"answers identical to the bare call's: {identical}/{len(requests)}")
    print(
        f"CPU time of the ifharness process itself per run (receiving, writing, fsync, "
        f"progress, scoring): {statistics.median(main_cpu_s):.2f} s, "
        f"{100 * statistics.median(main_cpu_s) / b:.1f} % of the bare wall time"
    )
    ratio = statistics.median(x / y for x, y in zip(drive_s, bare_s))
    print(
        f"overhead ratio (ifharness generating / bare, median of the paired repeats): "
        f"{ratio:.3f}  ({'within' if ratio <= TARGET else 'above'} the {TARGET:.2f} target); "
        f"ratio of medians {d / b:.3f}; with scoring and writing: {e / b:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
