"""The ``ifharness`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import IfharnessError


def _cmd_score(args: argparse.Namespace) -> int:
    from .loader import load_task
    from .results import write_score_run
    from .report_text import metrics_table
    from .scoring import score

    task = load_task(args.task, data=args.data, profile=args.profile)
    result = score(task, args.responses, processes=args.processes)
    j = result.joined
    if j.missing:
        shown = ", ".join(map(str, j.missing[:10])) + (" …" if len(j.missing) > 10 else "")
        print(f"warning: {len(j.missing)} prompt(s) have no answer in {args.responses} and are "
              f"scored as not followed: keys {shown}", file=sys.stderr)
    for d in j.duplicates[:10]:
        print(f"warning: duplicate answer for {d}", file=sys.stderr)
    if j.unmatched:
        print(f"warning: {j.unmatched} answer row(s) match no prompt of task {task.name} "
              "(by key or prompt text) and were ignored", file=sys.stderr)
    write_score_run(args.out, result, responses=args.responses)
    print(f"task {task.name} ({task.data_origin}), profile {task.profile.name}")
    print(metrics_table(result.metrics, "per_constraint" if args.per_constraint else "per_family"))
    print(f"\nwrote {args.out}/verdicts.jsonl, metrics.json, run.json")
    return 0


def _cmd_constraints(args: argparse.Namespace) -> int:
    from ifharness.verifiers import load_all

    rows = [c for c in load_all().values() if not args.suite or c.suite == args.suite]
    if args.json:
        print(json.dumps({c.id: {"suite": c.suite, "kwargs": c.kwargs_schema,
                                 "instruction": c.instruction} for c in rows}, indent=2))
        return 0
    for c in sorted(rows, key=lambda c: (c.suite, c.id)):
        print(f"{c.suite:<7} {c.id:<50} {c.signature}")
    print(f"\n{len(rows)} constraints")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ifharness.verifiers import Text, get

    from .scoring import judge

    c = get(args.id)
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        raise IfharnessError(f"--kwargs is not valid JSON: {e}") from None
    if not isinstance(kwargs, dict):
        raise IfharnessError("--kwargs must be a JSON object, e.g. '{\"num_words\": 100}'")
    text = args.text
    if text == "-":
        text = sys.stdin.read()
    elif Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    from ifharness.verifiers import KwargsError

    try:
        bound = c.bind(kwargs)
    except KwargsError as e:
        raise IfharnessError(str(e)) from None
    verdict = judge([(c.id, bound)], text, Text("").profile)
    out = {"id": c.id, "kwargs": bound, "strict": verdict["strict"][0], "loose": verdict["loose"][0]}
    if "unscorable" in verdict:
        out["unscorable"] = verdict["unscorable"]["0"]
    print(json.dumps(out, ensure_ascii=False))
    return 0 if verdict["strict"][0] else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ifharness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score answers someone generated against a task")
    s.add_argument("--task", required=True, help="bundled task name (ifeval, …) or a task YAML path")
    s.add_argument("--data", help="local JSONL of the task's prompts (instead of the hub dataset)")
    s.add_argument("--responses", required=True,
                   help="JSONL with 'response' and 'key' (or the exact 'prompt') per line")
    s.add_argument("--out", required=True, help="folder for verdicts.jsonl, metrics.json, run.json")
    s.add_argument("--profile", help="scoring profile (default: the task's, normally 'reference')")
    s.add_argument("--processes", type=int, default=1)
    s.add_argument("--per-constraint", action="store_true", help="print the per-constraint table")
    s.set_defaults(func=_cmd_score)

    c = sub.add_parser("constraints", help="list every registered constraint and its kwargs")
    c.add_argument("--suite", help="only this suite (ifeval, ifbench)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cmd_constraints)

    v = sub.add_parser("verify", help="check one constraint on one text (exit 0 when followed)")
    v.add_argument("id", help="constraint id, e.g. length_constraints:number_words")
    v.add_argument("text", help="the text, a file path, or - for standard input")
    v.add_argument("--kwargs", default="{}", help="the constraint's kwargs as a JSON object")
    v.set_defaults(func=_cmd_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `ifharness constraints | head`
        sys.stderr.close()
        return 0
    except IfharnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyError as e:  # unknown constraint ids carry their own message
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
