"""The ``ifharness`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import IfharnessError

if TYPE_CHECKING:
    from .loader import Task, TaskFile
    from .run import RunConfig
    from .runners.registry import BackendOptions


def _score_preset(args: argparse.Namespace) -> tuple[str, str | None, dict | None]:
    """The task and profile ``score`` uses, and ``--preset``'s run.json record (its scoring
    part: task, profile, headline metric; an explicit --task or --profile wins)."""
    if args.preset is None:
        if not args.task:
            raise IfharnessError("score needs --task NAME (or a --preset that names one)")
        return args.task, args.profile, None
    from .presets import get_preset

    preset = get_preset(args.preset)
    task = args.task or preset.task
    profile = args.profile or preset.profile
    overridden = {
        k: v
        for k, v in (("task", args.task), ("profile", args.profile))
        if v is not None and v != getattr(preset, k)
    }
    return task, profile, preset.record(overridden, {})


def _finish_score(args: argparse.Namespace, record: dict | None, task: Task | TaskFile) -> None:
    """After a score folder is written: --preset's record in run.json, then report.html."""
    from .report import write_report
    from .results import record_preset

    if record is not None:
        metric = record["settings"].get("metric") or task.spec.metric
        record["effective"] = {"task": task.name, "profile": task.profile.name, "metric": metric}
        record_preset(args.out, record, metric)
    print(f"report: {write_report(args.out)}")


def _cmd_score(args: argparse.Namespace) -> int:
    from .loader import load_task, task_file
    from .report_text import metrics_table
    from .results import missing_warning, score_run
    from .stream import score_file

    if args.from_lmeval:
        return _score_from_lmeval(args)
    if not args.responses:
        raise IfharnessError("score needs --responses FILE (or --from-lmeval SAMPLES.jsonl)")
    task_name, profile, record = _score_preset(args)
    # a JSONL task file streams (samples, answers and verdicts a range at a time, in the
    # --processes pool: ifharness.stream); otherwise the task is loaded, and its answers
    # and verdicts stream unless its metrics need every row
    task: Task | TaskFile | None = None
    tf = task_file(task_name, data=args.data, profile=profile)
    if tf is not None:
        task = tf
        result = score_file(args.out, tf, args.responses, processes=args.processes)
    else:
        task = load_task(task_name, data=args.data, profile=profile)
        result = score_run(args.out, task, args.responses, processes=args.processes)
    j = result.joined
    if j.missing:
        print(
            f"warning: {missing_warning(j.missing, f'no answer in {args.responses}')}",
            file=sys.stderr,
        )
    for d in j.duplicates[:10]:
        print(f"warning: duplicate answer for {d}", file=sys.stderr)
    if j.unmatched:
        print(
            f"warning: {j.unmatched} answer row(s) match no prompt of task {task.name} "
            "(by key or prompt text) and were ignored",
            file=sys.stderr,
        )
    print(
        f"task {task.name} ({task.data_origin}), profile {task.profile.name}" + _preset_note(record)
    )
    print(metrics_table(result.metrics, "per_constraint" if args.per_constraint else "per_family"))
    _print_per_turn(result.metrics)
    print(
        f"\nwrote {args.out}/run.json, samples.jsonl, completions.jsonl, verdicts.jsonl, "
        "metrics.json"
    )
    _finish_score(args, record, task)
    return 0


def _preset_note(record: dict | None) -> str:
    return f", preset {record['name']}@v{record['version']}" if record else ""


def _score_from_lmeval(args: argparse.Namespace) -> int:
    from .lmeval.rescore import rescore, write_lmeval_run
    from .report_text import metrics_table

    if args.responses:
        raise IfharnessError("give either --responses or --from-lmeval, not both")
    task_name, profile, record = _score_preset(args)
    result = rescore(
        args.from_lmeval, task_name, data=args.data, profile=profile, processes=args.processes
    )
    write_lmeval_run(args.out, result, args.from_lmeval)
    task = result.task
    print(
        f"task {task.name} ({task.data_origin}), profile {task.profile.name}, "
        f"answers from lm-eval {args.from_lmeval}" + _preset_note(record)
    )
    print(metrics_table(result.metrics, "per_constraint" if args.per_constraint else "per_family"))
    print(
        f"\nwrote {args.out}/run.json, samples.jsonl, completions.jsonl, verdicts.jsonl, "
        "metrics.json"
    )
    _finish_score(args, record, task)
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from ifharness.verifiers import load_all
    from ifharness.verifiers.profiles import profile_lines

    from .presets import listing

    load_all()  # every suite, entry points included, has registered its profiles
    print("scoring profiles (--profile):")
    for line in profile_lines():
        print(f"  {line}")
    print("\npresets (--preset; `run` applies all of one, `score` its task, profile and metric):")
    for line in listing():
        print(f"  {line}")
    return 0


def _profile_help() -> str:
    """``--profile``'s help, naming every registered profile (suites loaded first)."""
    from ifharness.verifiers import load_all
    from ifharness.verifiers.profiles import profile_names

    load_all()
    return (
        f"scoring profile: {', '.join(profile_names())} (default: the task's, normally "
        "'reference'; `ifharness profiles` describes them)"
    )


def _preset_help(what: str) -> str:
    """``--preset``'s help, naming every registered preset."""
    from .presets import preset_names

    return (
        f"settings a published score used: {', '.join(preset_names())}; {what}; an explicit "
        "flag wins over the preset (`ifharness profiles` describes them)"
    )


def _cmd_lmeval_path(args: argparse.Namespace) -> int:
    from .lmeval import include_path

    print(include_path())
    return 0


def _cmd_lmeval_task(args: argparse.Namespace) -> int:
    from .lmeval.export import write_lmeval_task

    path = write_lmeval_task(args.task, args.out, name=args.name, data=args.data)
    print(path)
    print(
        f"run it: lm_eval --include_path {path.parent} --tasks {path.stem} ...",
        file=sys.stderr,
    )
    return 0


def _cmd_constraints(args: argparse.Namespace) -> int:
    from ifharness.verifiers import load_all

    registry = load_all()
    if args.suite:
        registry.require_suite(args.suite)  # an unknown suite: main() prints the KeyError
    rows = [c for c in registry.values() if not args.suite or c.suite == args.suite]
    if args.json:  # {suite: {id: …}}: an id is unique within its suite only
        by_suite: dict[str, dict[str, object]] = {}
        for c in sorted(rows, key=lambda c: (c.suite, c.id)):
            by_suite.setdefault(c.suite, {})[c.id] = {
                "kwargs": c.kwargs_schema,
                "instruction": c.instruction,
            }
        print(json.dumps(by_suite, indent=2))
        return 0
    for c in sorted(rows, key=lambda c: (c.suite, c.id)):
        print(f"{c.suite:<7} {c.id:<50} {c.signature}")
    print(f"\n{len(rows)} constraints")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ifharness.verifiers import Text, get

    from .scoring import judge

    c = get(args.id, args.suite)
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
    verdict = judge([(c.id, bound)], text, Text("").profile, c.suite)
    out = {
        "id": c.id,
        "suite": c.suite,
        "kwargs": bound,
        "strict": verdict["strict"][0],
        "loose": verdict["loose"][0],
    }
    if "unscorable" in verdict:
        out["unscorable"] = verdict["unscorable"]["0"]
    print(json.dumps(out, ensure_ascii=False))
    return 0 if verdict["strict"][0] else 1


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import leaderboard_main

    return leaderboard_main(args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs, load_input, to_markdown, to_text
    from .files import atomic_write_json, atomic_write_text
    from .gate import parse_drop

    a, b = load_input(args.a), load_input(args.b)
    margin = None
    if args.equivalence_margin is not None:
        margin = parse_drop(args.equivalence_margin, "--equivalence-margin")
    try:
        result = compare_runs(
            a, b, args.metric or None, args.mode, args.n_resamples, args.seed, args.alpha, margin
        )
    except ValueError as e:
        raise IfharnessError(str(e)) from None
    print(to_text(result))
    if args.json:
        atomic_write_json(args.json, result)
    if args.markdown:
        atomic_write_text(args.markdown, to_markdown(result))
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from .gate import gate_main

    return gate_main(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report_main

    return report_main(args)


def _add_bootstrap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n-resamples", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _add_analysis_commands(sub) -> None:
    """leaderboard, compare, gate, report: the stages that read run folders back."""
    from .metrics import metric_names

    metrics = ", ".join(metric_names())
    lb = sub.add_parser("leaderboard", help="one table across run folders (md, csv, html, json)")
    lb.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR_OR_GLOB",
        help="run folders, globs (quote them), or folders holding run folders",
    )
    lb.add_argument(
        "--format",
        choices=("md", "csv", "html", "json"),
        help="output format (default: from --out's extension, else md)",
    )
    lb.add_argument(
        "--metric", help=f"headline metric for every row ({metrics}); default: each task's own"
    )
    lb.add_argument("--out", help="write to this file instead of standard output")
    _add_bootstrap_args(lb)
    lb.set_defaults(func=_cmd_leaderboard)

    run_or_log = (
        "a run folder, or an lm-eval --log_samples file (samples_ifharness_*.jsonl), "
        "re-scored in memory"
    )
    margin_help = (
        "equivalence margin m, a fraction (0.02) or points (2pt): two one-sided tests (TOST) on "
        "the paired bootstrap of delta, p(delta <= -m) = (#{d <= -m} + 1)/(B + 1) and "
        "p(delta >= +m) likewise"
    )
    cp = sub.add_parser("compare", help="paired comparison of two runs of the same task")
    cp.add_argument("a", metavar="A", help=f"run A (the reference): {run_or_log}")
    cp.add_argument("b", metavar="B", help=f"run B; deltas are B - A: {run_or_log}")
    cp.add_argument(
        "--metric", action="append", help=f"metric(s) to show ({metrics}); repeatable; default all"
    )
    cp.add_argument(
        "--mode",
        choices=("strict", "loose"),
        default="strict",
        help="verdicts for the per-constraint table",
    )
    cp.add_argument(
        "--alpha", type=float, default=0.05, help="intervals are at level 1 - alpha (default 0.05)"
    )
    cp.add_argument(
        "--equivalence-margin",
        metavar="M",
        help=margin_help + "; adds both p-values and the TOST verdict per metric",
    )
    cp.add_argument("--json", help="write the comparison as JSON here")
    cp.add_argument("--markdown", help="write a Markdown summary here")
    _add_bootstrap_args(cp)
    cp.set_defaults(func=_cmd_compare)

    g = sub.add_parser(
        "gate",
        help="CI gate: exit 1 on a significant drop beyond --max-drop",
        description="Exit 0: no significant regression (with --equivalence-margin: "
        "non-inferiority shown); 1: regression (not shown); 2: usage or data error.",
    )
    g.add_argument("--baseline", required=True, help=f"baseline: {run_or_log}")
    g.add_argument("--candidate", required=True, help=f"candidate: {run_or_log}")
    g.add_argument(
        "--metric",
        action="append",
        help=f"metric to gate ({metrics}); repeatable; default: the task's headline",
    )
    g.add_argument(
        "--max-drop",
        default="0.02",
        help="largest tolerated drop: a fraction (0.02) or points (2pt); default 0.02",
    )
    g.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    g.add_argument(
        "--rule",
        choices=("drop", "ci"),
        default="drop",
        help="drop: fail when delta < -max-drop and p < alpha (default); "
        "ci: fail when the whole (1-alpha) interval of delta is below -max-drop; "
        "--equivalence-margin replaces both with the non-inferiority rule",
    )
    g.add_argument(
        "--equivalence-margin",
        metavar="M",
        help=margin_help + ". Gate on non-inferiority: exit 0 only when p(delta <= -m) < alpha "
        "for every gated metric (the candidate is shown no worse than the baseline by more "
        "than m); the upper test is reported, not gated; --max-drop is not used",
    )
    g.add_argument("--json", help="write the JSON verdict here")
    g.add_argument("--markdown", help="write the Markdown PR summary here")
    _add_bootstrap_args(g)
    g.set_defaults(func=_cmd_gate)

    r = sub.add_parser("report", help="write report.html for a run folder")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--out", help="write here instead of RUN_DIR/report.html")
    r.set_defaults(func=_cmd_report)


def _engine_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _print_per_turn(metrics: dict[str, object]) -> None:
    """A conversation task's accuracies per turn (``metrics["per_turn"]``), one line each."""
    from .metrics import base_metrics, get_metric

    per_turn = metrics.get("per_turn")
    if not isinstance(per_turn, dict) or not per_turn:
        return
    names = [b.name for b in base_metrics()] + ["if_avg4"]
    heads = [get_metric(n).header for n in names]
    print("\nturn    n " + " ".join(f"{h:>13}" for h in heads))
    for turn, m in per_turn.items():
        values = ["n/a" if m.get(n) is None else f"{100 * m[n]:.2f}" for n in names]
        cells = " ".join(f"{v:>13}" for v in values)
        print(f"{turn:>4} {m['n_prompts']:>4} {cells}")


def _cmd_run(args: argparse.Namespace) -> int:
    from .report_text import metrics_table
    from .run import RunConfig, execute

    try:
        template_kwargs = json.loads(args.chat_template_kwargs) if args.chat_template_kwargs else {}
    except json.JSONDecodeError as e:
        raise IfharnessError(f"--chat-template-kwargs is not valid JSON: {e}") from None
    if not isinstance(template_kwargs, dict):
        raise IfharnessError(
            "--chat-template-kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'"
        )
    if args.thinking is not None:
        template_kwargs["enable_thinking"] = args.thinking == "on"
    engine_args = dict(args.engine_arg or [])
    if args.max_model_len is not None:
        engine_args["max_model_len"] = args.max_model_len
    cfg = RunConfig(
        model=args.model,
        task=args.task,
        data=args.data,
        profile=args.profile,
        backend=args.backend,
        limit=args.limit,
        out=args.out,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        stop=args.stop,
        seed=args.seed,
        n=args.n,
        chunk_size=args.chunk_size,
        system_prompt=args.system_prompt,
        chat_template=args.chat_template,
        chat_template_kwargs=template_kwargs,
        reasoning_parser=args.reasoning_parser,
        preset=args.preset,
        unterminated_reasoning=args.unterminated_reasoning,
        engine_args=engine_args,
        overwrite=args.overwrite,
        processes=args.processes,
        options=_backend_options(args),
        verbose=args.verbose,
    )
    many = _model_list(args)
    if many is not None:
        return _run_models(cfg, many, args)
    try:
        outcome = execute(cfg)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the chunks already written are kept; run the same command again "
            "to resume",
            file=sys.stderr,
        )
        return 130
    run = outcome.run
    print(
        f"model {run.model_name} · task {run.task} ({run.data}) · "
        f"{run.n_samples} samples · {outcome.stats.generated} generated now, "
        f"{outcome.stats.skipped} resumed"
    )
    print(
        metrics_table(
            outcome.result.metrics, "per_constraint" if args.per_constraint else "per_family"
        )
    )
    _print_per_turn(outcome.result.metrics)
    print(f"\nwrote {outcome.folder}/run.json, completions.jsonl, verdicts.jsonl, metrics.json")
    _print_run_notes(outcome)
    return _incomplete_exit(outcome)


def _print_run_notes(outcome) -> None:
    """The preset, traces that never closed, and where the report is."""
    run = outcome.run
    if run.preset:
        over = run.preset.get("overridden") or {}
        print(
            f"preset {run.preset_label}"
            + (f" (overridden by flags: {', '.join(sorted(over))})" if over else "")
        )
    gen = run.generation or {}
    if gen.get("unterminated_reasoning"):
        print(
            f"{gen['unterminated_reasoning']} answer(s) ended inside their reasoning (no closing "
            f"tag); policy {gen.get('unterminated_policy')}"
        )
    if outcome.report is not None:
        print(f"report: {outcome.report}")


def _backend_options(args: argparse.Namespace) -> BackendOptions:
    """The chosen backend's options from its flags (a flag of another backend is an error)."""
    from .runners.registry import options_from_args

    return options_from_args(args, args.backend)


def _incomplete_exit(outcome) -> int:
    """Exit 3 when samples failed (failed.jsonl): scored, but not a complete run."""
    if outcome.run.status == "incomplete":
        print(f"incomplete: {outcome.run.error}", file=sys.stderr)
        return 3
    return 0


def _model_list(args: argparse.Namespace) -> list[str] | None:
    """``--models a,b,c`` or ``--models @FILE`` (one per line, # comments); None without it."""
    if args.models is None:
        return None
    if args.model:
        raise IfharnessError("pass --model or --models, not both")
    spec = args.models.strip()
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        if not path.is_file():
            raise IfharnessError(f"--models {spec}: no such file")
        names = [
            line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()
        ]
    else:
        names = [n.strip() for n in spec.split(",")]
    names = [n for n in names if n]
    if not names:
        raise IfharnessError(f"--models {spec}: names no model")
    if len(set(names)) != len(names):
        raise IfharnessError(f"--models {spec}: a model is named twice")
    return names


def _run_models(cfg: RunConfig, names: list[str], args: argparse.Namespace) -> int:
    """The same task over several models, one run folder each (``--out`` is their parent).

    A model that fails (not served by the endpoint, say, or none of its requests answered)
    is reported and the next one runs; an endpoint that cannot serve any model
    (unreachable, key refused) stops the loop at once, and the models not tried are
    recorded as ``not run``. With ``--out`` the sweep keeps ``OUT/sweep.json`` (every model,
    its status, folder and error; ``leaderboard.write_sweep``), rewritten after each model,
    and ends with one leaderboard over the models' folders, printed and written to
    ``OUT/leaderboard.html`` (with the failed models and, for the ``quick`` task, the
    failure-family heat map).
    """
    import dataclasses

    from .files import now_utc
    from .leaderboard import NOT_RUN, write_sweep
    from .report_text import metrics_table
    from .run import _slug, execute

    parent = Path(cfg.out) if cfg.out else None
    slugs = [_slug(n) for n in names]
    if len(set(slugs)) != len(slugs):
        clash = sorted({n for n, s in zip(names, slugs) if slugs.count(s) > 1})
        raise IfharnessError(
            f"--models: {', '.join(clash)} would share one run folder; run them in separate sweeps"
        )
    entries = [{"model": n, "status": NOT_RUN, "folder": None, "error": None} for n in names]
    sweep = {
        "task": cfg.task or cfg.preset or "default",
        "backend": cfg.backend,
        "base_url": cfg.backend_options.to_json().get("base_url"),
        "started": now_utc(),
        "finished": None,
        "models": entries,
    }

    def record() -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
            write_sweep(parent, sweep)

    record()
    worst = 0
    summary: list[tuple[str, str, Path | None]] = []
    stopped: str | None = None
    for name, slug, entry in zip(names, slugs, entries):
        out = str(parent / slug) if parent else None
        entry["folder"] = slug if parent else None
        one = dataclasses.replace(cfg, model=name, out=out)
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            refused = _first_request(one)
            outcome = None if refused else execute(one)
        except KeyboardInterrupt:
            entry.update(status="interrupted", error="stopped by the user")
            record()
            print("\ninterrupted: run the same command again to resume", file=sys.stderr)
            return 130
        except IfharnessError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            summary.append((name, "failed", None))
            entry.update(status="failed", error=str(e))
            worst = max(worst, 2)
            if getattr(e, "every_model", False):
                stopped = str(e)
                record()
                break
            record()
            continue
        if outcome is None:  # its first request failed: skipped, nothing more sent
            print(f"error: {name}: {refused}", file=sys.stderr)
            summary.append((name, "failed", None))
            entry.update(status="failed", error=refused)
            worst = max(worst, 2)
            record()
            continue
        code = _incomplete_exit(outcome)
        status, error = outcome.run.status, outcome.run.error
        if status == "incomplete" and not outcome.stats.generated + outcome.stats.skipped:
            status, error = "failed", _no_answer_reason(outcome.folder)  # not one answer came
        worst = max(worst, 2 if status == "failed" else code)
        entry.update(status=status, error=error)
        record()
        summary.append((name, status, outcome.folder))
        print(f"\n{name}: {outcome.folder}")
        print(
            metrics_table(
                outcome.result.metrics, "per_constraint" if args.per_constraint else "per_family"
            )
        )
        _print_run_notes(outcome)
    if stopped is not None:
        for entry in entries:
            if entry["status"] == NOT_RUN:
                entry["error"] = f"not tried: the sweep stopped at an endpoint error ({stopped})"
    sweep["finished"] = now_utc()
    record()
    print("\nmodels:")
    for name, state, folder in summary:
        print(f"  {name}: {state}" + (f" ({folder})" if folder else ""))
    for entry in entries:
        if entry["status"] == NOT_RUN:
            print(f"  {entry['model']}: not run")
    _sweep_leaderboard(parent, [f for _, s, f in summary if f is not None and s != "failed"])
    return worst


#: Retries of a sweep's first request per model: a broken model is skipped in seconds.
FIRST_REQUEST_RETRIES = 2


def _first_request(cfg: RunConfig) -> str | None:
    """The sweep's pre-check of one model on a server (``openai``): its first sample alone,
    into its own run folder, with at most :data:`FIRST_REQUEST_RETRIES` retries. The reason
    when that request failed (the model is then skipped); None when it was answered, and
    the full run resumes from it, so the check costs no extra request. Local backends
    (vllm, hf) are not pre-checked: loading a model twice costs more than it saves."""
    import dataclasses

    from .run import execute

    options = cfg.backend_options
    retries = getattr(options, "max_retries", None)
    if cfg.backend != "openai" or retries is None:
        return None
    capped = options.model_copy(update={"max_retries": min(retries, FIRST_REQUEST_RETRIES)})
    first = execute(dataclasses.replace(cfg, limit=1, options=capped))
    if first.run.status != "incomplete":
        return None
    return _no_answer_reason(first.folder).replace(
        "no request of this model was answered", "its first request failed", 1
    )


def _no_answer_reason(folder: Path) -> str:
    """Why a run got no answer at all: its first failure's error (failed.jsonl)."""
    from .rundir import RunFolder

    failed = RunFolder(folder).failures()
    first = next(iter(failed.values()), None)
    detail = f": {first['error']}" if first else ""
    return f"no request of this model was answered{detail}"


def _sweep_leaderboard(parent: Path | None, folders: list[Path]) -> None:
    """One leaderboard over the sweep's scored folders: printed, and with ``--out`` written
    to ``OUT/leaderboard.html`` with the models that did not complete (from sweep.json)."""
    from .errors import DataError
    from .files import atomic_write_text
    from .leaderboard import collect, failures, failures_markdown, render

    failed = failures([str(parent)]) if parent is not None else []
    rows = []
    if folders:
        try:
            rows = collect([str(f) for f in folders], warn=lambda m: print(m, file=sys.stderr))
        except DataError as e:
            print(f"warning: no leaderboard: {e}", file=sys.stderr)
    print(
        "\nleaderboard:\n"
        + (render(rows, "md") if rows else "(no model completed)\n")
        + failures_markdown(failed)
    )
    if parent is not None:
        html = parent / "leaderboard.html"
        atomic_write_text(html, render(rows, "html", failed))
        print(f"wrote {parent / 'sweep.json'} and {html}")


def _add_run_command(sub) -> None:
    from .reasoning import UNTERMINATED_POLICIES
    from .reasoning import names as parser_names
    from .runners.registry import DEFAULT_BACKEND, add_backend_arguments, all_backends

    r = sub.add_parser(
        "run",
        help="generate answers with a model (vLLM), resumably, and score them",
        description="Generate answers for a task and score them. With no --model the "
        "embedded SmolLM2-135M-Instruct runs on a plain CPU. Interrupted (Ctrl-C, kill -9)? "
        "Run the same command again: finished chunks are kept and only the rest is generated.",
    )
    r.add_argument(
        "--model",
        help="model folder or hub id (default: the embedded "
        "SmolLM2-135M-Instruct, converted once into the user cache); with "
        "--backend openai the model's name on the server",
    )
    r.add_argument(
        "--models",
        metavar="A,B,C|@FILE",
        help="run the task for each of these models (comma-separated, or @FILE "
        "with one per line), one run folder each; --out is then their parent, and gets "
        "sweep.json (each model's status and error) and leaderboard.html. A model that "
        "fails (not served, first request refused) is skipped; try --task quick",
    )
    r.add_argument(
        "--task",
        help="bundled task name or task YAML path (default: the --preset's task, else default)",
    )
    r.add_argument("--data", help="local JSONL of the task's prompts (instead of its source)")
    r.add_argument("--profile", help=_profile_help())
    r.add_argument(
        "--preset",
        help=_preset_help("sets task, profile, sampling, reasoning policy and headline metric"),
    )
    backends = all_backends()
    r.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        choices=[b.name for b in backends],
        help="; ".join(f"{b.name}: {b.summary}" if b.summary else b.name for b in backends)
        + f" (default {DEFAULT_BACKEND}); each "
        "backend's own flags are in its group below",
    )
    r.add_argument("--limit", type=int, help="only the first N samples")
    r.add_argument("--out", help="run folder (default: results/<model>__<task>)")
    g = r.add_argument_group("sampling (defaults: the task's generation settings)")
    g.add_argument("--max-tokens", type=int, help="new tokens per answer, reasoning included")
    g.add_argument("--temperature", type=float)
    g.add_argument("--top-p", type=float)
    g.add_argument("--stop", action="append", help="stop string (repeatable)")
    g.add_argument("--seed", type=int, default=0, help="engine / sampling seed (default 0)")
    g.add_argument("--n", type=int, default=1, help="samples per prompt (needs temperature > 0)")
    c = r.add_argument_group("chat")
    c.add_argument(
        "--system-prompt", help="system message put before each conversation that has none"
    )
    c.add_argument(
        "--chat-template", metavar="FILE", help="Jinja chat template to use instead of the model's"
    )
    c.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="extra chat template variables, e.g. '{\"enable_thinking\": false}'",
    )
    c.add_argument(
        "--thinking",
        choices=("on", "off"),
        help="shorthand for enable_thinking in --chat-template-kwargs",
    )
    c.add_argument(
        "--reasoning-parser",
        default="auto",
        choices=("auto", *parser_names()),
        help="how reasoning is split from the answer (default: by model family)",
    )
    c.add_argument(
        "--unterminated-reasoning",
        choices=tuple(UNTERMINATED_POLICIES),
        help="what is scored when a reasoning trace never closes (<think> with no </think>): "
        + "; ".join(f"{k}: {v}" for k, v in UNTERMINATED_POLICIES.items())
        + " (default: the preset's, else empty)",
    )
    e = r.add_argument_group(
        "engine",
        "vLLM's CPU build gets a 1 GiB KV cache unless VLLM_CPU_KVCACHE_SPACE (GiB) "
        "or --engine-arg kv_cache_memory_bytes=N says otherwise; VLLM_LOGGING_LEVEL defaults "
        "to WARNING",
    )
    e.add_argument(
        "--chunk-size",
        type=int,
        help="answers per checkpoint (one fsynced "
        "append), and prompts per LLM.chat call with --schedule chunk "
        "(default: 64 on vLLM's CPU build, 512 otherwise)",
    )
    e.add_argument("--max-model-len", type=int, help="context length the engine plans for")
    e.add_argument(
        "--engine-arg",
        action="append",
        type=_engine_arg,
        metavar="KEY=VALUE",
        help="any other vllm.LLM keyword argument, VALUE as JSON when it parses "
        "(repeatable), e.g. --engine-arg gpu_memory_utilization=0.8",
    )
    add_backend_arguments(r)
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a run folder made with other settings",
    )
    r.add_argument("--processes", type=int, default=1, help="scoring processes")
    r.add_argument("--per-constraint", action="store_true", help="print the per-constraint table")
    r.add_argument(
        "--verbose",
        action="store_true",
        help="stream the engine's own log (vLLM, torch) to the terminal instead of "
        "RUN_DIR/engine.log",
    )
    r.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ifharness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score answers someone generated against a task")
    s.add_argument(
        "--task",
        help="bundled task name (ifeval, …) or a task YAML path (default: the --preset's task)",
    )
    s.add_argument("--data", help="local JSONL of the task's prompts (instead of the hub dataset)")
    s.add_argument(
        "--responses", help="JSONL with 'response' and 'key' (or the exact 'prompt') per line"
    )
    s.add_argument(
        "--from-lmeval",
        metavar="SAMPLES_JSONL",
        help="instead of --responses: an lm-eval --log_samples file of an "
        "ifharness_* task (samples_<task>_<date>.jsonl)",
    )
    s.add_argument("--out", required=True, help="folder for verdicts.jsonl, metrics.json, run.json")
    s.add_argument("--profile", help=_profile_help())
    s.add_argument(
        "--preset",
        help=_preset_help("its scoring part applies: task, profile, headline metric"),
    )
    s.add_argument("--processes", type=int, default=1)
    s.add_argument("--per-constraint", action="store_true", help="print the per-constraint table")
    s.set_defaults(func=_cmd_score)

    pr = sub.add_parser(
        "profiles",
        help="list the scoring profiles and the presets, one line each",
        description="Scoring profiles (--profile) name scorer semantics (reference, or a named "
        "fix or older reference version); presets (--preset) name the settings a published "
        "score was obtained with.",
    )
    pr.set_defaults(func=_cmd_profiles)

    c = sub.add_parser("constraints", help="list every registered constraint and its kwargs")
    c.add_argument("--suite", help="only this suite (the first column of the listing)")
    c.add_argument("--json", action="store_true", help="as {suite: {id: {kwargs, instruction}}}")
    c.set_defaults(func=_cmd_constraints)

    v = sub.add_parser("verify", help="check one constraint on one text (exit 0 when followed)")
    v.add_argument("id", help="constraint id, e.g. length_constraints:number_words")
    v.add_argument("text", help="the text, a file path, or - for standard input")
    v.add_argument("--kwargs", default="{}", help="the constraint's kwargs as a JSON object")
    v.add_argument(
        "--suite", help="the suite to look the id up in (needed when several suites define it)"
    )
    v.set_defaults(func=_cmd_verify)
    _add_run_command(sub)
    _add_analysis_commands(sub)
    from .reward.server import register as add_serve_reward

    add_serve_reward(sub)
    from .generate.cli import register as add_generate

    add_generate(sub)

    lp = sub.add_parser(
        "lmeval-path",
        help="print the folder of the ifharness_* lm-eval tasks",
        description='lm_eval --include_path "$(ifharness lmeval-path)" '
        "--tasks ifharness_default ...",
    )
    lp.set_defaults(func=_cmd_lmeval_path)
    lt = sub.add_parser(
        "lmeval-task",
        help="write an lm-eval task YAML for any task (a generated one, your own YAML)",
        description="Writes OUT/ifharness_<name>.yaml (the plugin's template, the task's "
        "generation settings, the task by absolute path); then "
        "lm_eval --include_path OUT --tasks ifharness_<name> runs it. Prints its path.",
    )
    lt.add_argument("task", metavar="TASK_OR_YAML", help="a bundled task name or a task YAML")
    lt.add_argument("--out", required=True, help="folder to write the lm-eval YAML into")
    lt.add_argument("--name", help="lm-eval task name (default ifharness_<task name>)")
    lt.add_argument("--data", help="a local JSONL the task reads instead of its own data")
    lt.set_defaults(func=_cmd_lmeval_task)
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
