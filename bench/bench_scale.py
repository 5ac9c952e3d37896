"""Scoring at scale: `ifharness score` on 10k, 100k and 1M IFEval answers, 1 and 2 processes.

The 541 IFEval prompts and the 540 published GPT-4 answers (shared/data/ifeval) are repeated
under new keys (copy ``c`` of key ``k`` is ``c * 10000 + k``) until the task has N prompts;
the task JSONL and the answers JSONL go to a temp folder. Each size is scored by
``ifharness score --processes P`` as a subprocess, timed, and its peak RSS read two ways:

* ``max RSS``: ``os.wait4``'s ``ru_maxrss``, the largest resident set of any one process of
  the run (the scorer, or one pool worker);
* ``tree RSS``: the sum of the resident sets of the scorer and its workers, sampled every
  0.2 s with psutil (forked workers share pages with the scorer, so this over-counts).

Printed: a table, then the two ratios the issue names: peak RSS at the largest size over the
one before it (target <= 1.5 from 100k to 1M), and 1-process time over 2-process time at the
largest size (target >= 1.7). The task file is streamed too (``ifharness.stream``): what
grows with N is the per-prompt table the bootstrap needs and the join's arrays, tens of
bytes per prompt.

    python bench/bench_scale.py [--sizes 10k,100k,1M] [--processes 1,2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ifeval"
IFHARNESS = Path(sys.executable).with_name("ifharness")


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def write_inputs(n: int, folder: Path) -> tuple[Path, Path, int]:
    """The task (n prompts) and its answers; returns the paths and how many answers."""
    prompts = [json.loads(line) for line in (DATA / "input_data.jsonl").open() if line.strip()]
    answers = {
        r["key"]: r["response"]
        for r in map(json.loads, (DATA / "gpt4_responses.jsonl").open())
        if "key" in r
    }
    task, responses = folder / f"task-{n}.jsonl", folder / f"answers-{n}.jsonl"
    written = 0
    with task.open("w") as t, responses.open("w") as r:
        for i in range(n):
            copy, row = divmod(i, len(prompts))
            p = prompts[row]
            key = copy * 10_000 + p["key"]
            t.write(json.dumps({**p, "key": key}) + "\n")
            if p["key"] in answers:
                r.write(json.dumps({"key": key, "response": answers[p["key"]]}) + "\n")
                written += 1
    return task, responses, written


def tree_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    try:
        import psutil
    except ImportError:
        return
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return
    peak = 0
    while not stop.is_set():
        try:
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peak = max(peak, total)
        stop.wait(0.2)
    out.append(peak)


#: what ``ifharness score`` runs to score (``cli._cmd_score``: ``stream.score_file`` on a JSONL
#: task file), without the report.html it builds afterwards from the whole folder
#: (``report.write_report``; ``--cli`` measures the whole command)
SCORER = """
import sys
from ifharness.loader import task_file
from ifharness.stream import score_file
task = task_file("ifeval", data=sys.argv[1])
score_file(sys.argv[3], task, sys.argv[2], processes=int(sys.argv[4]))
"""


def score_once(
    task: Path, responses: Path, out: Path, processes: int, cli: bool = False
) -> dict[str, float]:
    if not cli:
        cmd = [sys.executable, "-c", SCORER, str(task), str(responses), str(out), str(processes)]
    else:
        cmd = [
            str(IFHARNESS),
            "score",
            "--task",
            "ifeval",
            "--data",
            str(task),
            "--responses",
            str(responses),
            "--out",
            str(out),
            "--processes",
            str(processes),
        ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop, sampled = threading.Event(), []
    watcher = threading.Thread(target=tree_rss, args=(proc.pid, stop, sampled), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ifharness score failed ({proc.returncode}):\n{err[-2000:]}")
    return {
        "seconds": seconds,
        "max_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        "tree_rss_mb": (sampled[0] / 2**20) if sampled else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", default="10k,100k,1M", help="comma-separated, e.g. 10k,100k")
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts")
    ap.add_argument("--keep", help="write the inputs and run folders here and keep them")
    ap.add_argument(
        "--cli", action="store_true", help="time the whole `ifharness score` (report.html too)"
    )
    args = ap.parse_args()
    if not (DATA / "gpt4_responses.jsonl").is_file():
        print(f"skipped: reference data not found in {DATA}")
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    procs = [int(p) for p in args.processes.split(",") if p.strip()]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[int, int], dict[str, float]] = {}
    try:
        for n in sizes:
            t0 = time.perf_counter()
            task, responses, answered = write_inputs(n, work)
            print(
                f"[{n:>9,} prompts] inputs written ({answered:,} answers, "
                f"{responses.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )
            for p in procs:
                print(f"[{n:>9,} prompts] scoring with {p} process(es) …", flush=True)
                r = score_once(task, responses, work / f"out-{n}-p{p}", p, args.cli)
                results[(n, p)] = r
                print(
                    f"[{n:>9,} prompts]   {r['seconds']:.1f}s, max RSS {r['max_rss_mb']:.0f} MB, "
                    f"tree RSS {r['tree_rss_mb']:.0f} MB",
                    flush=True,
                )
                if not args.keep:
                    shutil.rmtree(work / f"out-{n}-p{p}", ignore_errors=True)
            if not args.keep:
                task.unlink()
                responses.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{'prompts':>10} {'procs':>5} {'seconds':>9} {'answers/s':>10} {'max RSS MB':>11} "
        f"{'tree RSS MB':>12}"
    )
    for (n, p), r in results.items():
        print(
            f"{n:>10,} {p:>5} {r['seconds']:>9.1f} {n / r['seconds']:>10,.0f} "
            f"{r['max_rss_mb']:>11.0f} {r['tree_rss_mb']:>12.0f}"
        )
    if len(sizes) >= 2:
        big, before = sizes[-1], sizes[-2]
        for p in procs:
            ratio = results[(big, p)]["max_rss_mb"] / results[(before, p)]["max_rss_mb"]
            print(f"peak RSS at {big:,} / at {before:,} ({p} proc): {ratio:.2f}  (target <= 1.5)")
    if 1 in procs and 2 in procs:
        big = sizes[-1]
        speedup = results[(big, 1)]["seconds"] / results[(big, 2)]["seconds"]
        print(f"time 1 process / 2 processes at {big:,}: {speedup:.2f}  (target >= 1.7)")
    print(f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
