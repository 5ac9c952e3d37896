"""``ifharness leaderboard``: one table across run folders, one row per (model, task).

Every number is recomputed from each run's ``verdicts.jsonl`` (so old runs get intervals
too, and every row is computed the same way). The headline metric is always named: the
task's own (run.json ``metric``, else the task YAML's), or ``--metric`` for every row,
including the compositions ``ifeval_mean`` (Open LLM Leaderboard v2: mean of prompt- and
instruction-level strict) and ``mean4`` (mean of all four). Columns and definitions come
from the metric table (``ifharness.metrics``), one column per base metric. Rows carry a 95%
percentile bootstrap interval (resampling prompts), the truncation rate, and the provenance a reader
needs to judge comparability: dataset hash, scoring profile, preset (``name@vN``, when the
run used ``--preset``), sampling settings, chat-template hash.

When several runs share a (model, task), the one whose verdicts were written last is kept
and the others are named in a warning. Folders that are not (yet) scored run folders are
skipped with a warning.

Models that did not finish are listed with their reason, in every format but CSV: from the
``sweep.json`` of a sweep's parent folder (``ifharness run --models …``, see
:func:`write_sweep`) when the arguments name one, else from run folders whose run.json says
``failed`` or ``interrupted``. When a run's ``samples.jsonl`` rows carry a ``family`` (the
``quick`` task: one failure family per prompt), the HTML adds a model × failure-family heat
map of prompt-level strict pass rates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, density, stats
from .compare import md_table
from .errors import DataError, IfharnessError
from .files import atomic_write_text
from .htmlkit import bar_chart, ci_text, esc, heat_map, line_chart, page, pct, table
from .metrics import base_metrics, get_metric, headline_names, is_loose, metrics
from .rundir import RUN_JSON, RunData, RunFolder, expand_run_args, load_run
from .scoring import summarize

FORMATS = ("md", "csv", "html", "json")

#: The sweep's record, in the sweep's parent folder (``--out`` of ``run --models``).
SWEEP_JSON = "sweep.json"
SWEEP_SCHEMA = 1
#: Sweep statuses besides a run folder's own: the model was not tried (the sweep stopped).
NOT_RUN = "not run"


def metric_doc() -> dict[str, str]:
    """Every metric of the table with its one-line definition."""
    return {m.name: m.description for m in metrics()}


def columns() -> list[str]:
    """CSV/JSON columns: one per base metric of the table between the headline and counts."""
    return [
        "rank",
        "model",
        "task",
        "metric",
        "score",
        "ci_low",
        "ci_high",
        "se",
        *(b.name for b in base_metrics()),
        "n_prompts",
        "samples_per_prompt",
        "truncation_rate",
        "missing",
        "unscorable",
        "dataset_hash",
        "profile",
        "preset",
        "sampling",
        "chat_template_hash",
        "ifharness_version",
        "run",
    ]


def sampling_text(sampling: dict[str, Any] | None) -> str:
    if not sampling:
        return ""
    return ", ".join(
        f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}"
        for k, v in sorted(sampling.items())
    )


def run_row(run: RunData, metric: str | None, n_resamples: int, seed: int) -> dict[str, Any]:
    m = summarize(run.verdicts, run.finish_reasons(), n_resamples=n_resamples, seed=seed)
    name = metric or run.headline_metric(headline_names())
    ci = (m.get("ci") or {}).get(name) or [None, None]
    trunc = run.truncation_rate()
    return {
        "model": run.model,
        "task": run.task,
        "metric": name,
        "score": m[name],
        "ci_low": ci[0],
        "ci_high": ci[1],
        "se": m.get(f"{name}_stderr"),
        **{b.name: m[b.name] for b in base_metrics()},
        "n_prompts": m["n_prompts"],
        "samples_per_prompt": (m.get("samples") or {}).get("per_prompt", 1),
        "truncation_rate": trunc,
        "missing": m["missing_responses"],
        "unscorable": m["unscorable_instructions"],
        "dataset_hash": run.dataset_hash,
        "profile": run.profile,
        "preset": run.info.preset_label,
        "sampling": sampling_text(run.sampling),
        "chat_template_hash": run.chat_template_hash,
        "ifharness_version": run.info.versions.get("ifharness"),
        "run": str(run.path),
        "_mtime": (run.path / "verdicts.jsonl").stat().st_mtime,
        "_per_family": m["per_family"],
        "_per_constraint": m["per_constraint"],
        "_density": density.for_run(run),  # None unless a density set
        "_failure_families": failure_families(run),  # None unless rows carry a family
    }


def failure_families(run: RunData) -> dict[str, dict[str, Any]] | None:
    """Prompt-level strict pass rate per failure family (``samples.jsonl`` ``meta.family``),
    in the task's order: ``{family: {"acc": rate, "n": answers}}``; None when no row has a
    family. An answer passes when every instruction of it is followed (an unscorable
    instruction, like a missing answer, does not pass), as ``prompt_level_strict_acc``."""
    try:
        samples = run.folder.read_samples()
    except DataError:
        return None
    family_of = {
        key: str(fam)
        for key, row in samples.items()
        if (fam := (row.get("meta") or {}).get("family"))
    }
    if not family_of:
        return None
    counts: dict[str, list[int]] = {f: [0, 0] for f in dict.fromkeys(family_of.values())}
    for v in run.verdicts:
        fam = family_of.get(str(v["key"]))
        if fam is None:
            continue
        counts[fam][1] += 1
        counts[fam][0] += int(
            not v.get("missing") and bool(v["strict"]) and all(x is True for x in v["strict"])
        )
    return {f: {"acc": (p / n if n else None), "n": n} for f, (p, n) in counts.items()}


# ----------------------------------------------------------------------------- sweeps


def write_sweep(parent: str | Path, record: dict[str, Any]) -> Path:
    """``PARENT/sweep.json``: what ``ifharness run --models`` tried and how each model ended.

    The file belongs to the sweep's parent folder, not to a run folder (``rundir``): the
    parent holds one run folder per model and is not one itself, and a model that failed
    before its folder was scored has no run of its own to say so. Keys: ``kind: "sweep"``,
    ``schema_version``, ``task``, ``backend``, ``base_url`` (None for local backends),
    ``started``, ``finished`` (None while it runs) and ``models``: one ``{"model",
    "status", "folder", "error"}`` per model in sweep order, ``status`` a run status
    (``complete``, ``incomplete``, ``failed``, ``interrupted``) or ``"not run"``,
    ``folder`` relative to the parent (None when not tried), ``error`` the reason it did
    not complete (None when it did). No API key is ever in it. Rewritten atomically after
    each model, so a killed sweep leaves a whole file that says where it stopped."""
    path = Path(parent) / SWEEP_JSON
    atomic_write_text(
        path,
        json.dumps({"kind": "sweep", "schema_version": SWEEP_SCHEMA, **record}, indent=2) + "\n",
    )
    return path


def read_sweep(parent: str | Path) -> dict[str, Any] | None:
    """``PARENT/sweep.json`` when there is one; DataError naming the file when it is bad."""
    path = Path(parent) / SWEEP_JSON
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e}); run the sweep again") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, list) or doc.get("kind") != "sweep":
        raise DataError(f"{path}: not a sweep record (expected kind 'sweep' and a models list)")
    for i, m in enumerate(models):
        if not isinstance(m, dict) or not isinstance(m.get("model"), str) or "status" not in m:
            raise DataError(f"{path}: models[{i}] needs a 'model' name and a 'status'")
    return doc


def without_failed(
    rows: list[dict[str, Any]], failed: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows whose folder no sweep records as ``failed``: a model skipped after its first
    request left a scored one-prompt folder, which is not a score of the model."""
    gone = {
        Path(f["folder"]).resolve() for f in failed if f["status"] == "failed" and f.get("folder")
    }
    return [r for r in rows if Path(r["run"]).resolve() not in gone]


def failures(args: Sequence[str]) -> list[dict[str, Any]]:
    """Models that did not complete, with why: ``{"model", "status", "error", "folder"}``.

    From the ``sweep.json`` of every folder the arguments name (or that holds a named run
    folder); then any named run folder that no sweep covers and whose run.json says
    ``failed`` or ``interrupted``. An ``incomplete`` run is scored (it has a row) and is
    listed too, since some of its answers are missing."""
    try:
        runs = expand_run_args(args)
    except DataError:
        runs = []
    parents: list[Path] = []
    for p in [*(Path(a) for a in args if not (set(a) & set("*?["))), *(r.parent for r in runs)]:
        if p.is_dir() and not (p / RUN_JSON).exists() and p.resolve() not in parents:
            parents.append(p.resolve())
    out: list[dict[str, Any]] = []
    covered: set[Path] = set()
    for parent in parents:
        doc = read_sweep(parent)
        if doc is None:
            continue
        for m in doc["models"]:
            folder = parent / m["folder"] if m.get("folder") else None
            if folder is not None:
                covered.add(folder.resolve())
            if m["status"] != "complete":
                out.append(
                    {
                        "model": m["model"],
                        "status": m["status"],
                        "error": m.get("error"),
                        "folder": str(folder) if folder else None,
                    }
                )
    for r in runs:
        if r.resolve() in covered:
            continue
        try:
            info = RunFolder(r).read_run()
        except DataError:
            continue
        if info is not None and info.status in ("failed", "interrupted"):
            name = info.model_name or r.name
            out.append(
                {"model": name, "status": info.status, "error": info.error, "folder": str(r)}
            )
    return out


def collect(
    args: Sequence[str],
    metric: str | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    warn=print,
) -> list[dict[str, Any]]:
    """Rows (dicts, best first within each task) for the run folders ``args`` name."""
    if metric is not None:
        try:
            stats.check_metric(metric)
        except ValueError as e:
            raise IfharnessError(str(e)) from None
    rows: list[dict[str, Any]] = []
    for path in expand_run_args(args):
        try:
            run = load_run(path)
        except DataError as e:
            warn(f"warning: skipped {path}: {e}")
            continue
        rows.append(run_row(run, metric, n_resamples, seed))
    if not rows:
        raise DataError("none of the given folders is a scored run folder")
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["_mtime"]):
        key = (r["model"], r["task"])
        if key in kept:
            warn(
                f"warning: {r['model']} on {r['task']}: using {r['run']}, newer than "
                f"{kept[key]['run']}"
            )
        kept[key] = r
    out = sorted(kept.values(), key=lambda r: (str(r["task"]), -(r["score"] or -1), r["model"]))
    task_rank: dict[str, int] = {}
    for r in out:
        task_rank[r["task"]] = task_rank.get(r["task"], 0) + 1
        r["rank"] = task_rank[r["task"]]
    return out


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = columns()
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    df = frame(rows)
    bases = base_metrics()
    body = []
    for _, r in df.iterrows():
        body.append(
            [
                r["rank"],
                r["model"],
                r["task"],
                r["metric"],
                pct(r["score"]),
                ci_text([r["ci_low"], r["ci_high"]]) if pd.notna(r["ci_low"]) else "",
                *(pct(r[b.name]) for b in bases),
                r["n_prompts"],
                "" if pd.isna(r["truncation_rate"]) else pct(r["truncation_rate"], 1),
                str(r["dataset_hash"] or "")[:12],
                r["profile"] or "",
                r["preset"] or "",
                r["sampling"] or "",
            ]
        )
    header = (
        "#",
        "model",
        "task",
        "metric",
        "score %",
        "95% CI",
        *(b.header for b in bases),
        "prompts",
        "truncated %",
        "dataset",
        "profile",
        "preset",
        "sampling",
    )
    used = sorted(set(df["metric"]))
    notes = "\n".join(f"- `{m}`: {get_metric(m).description}" for m in used)
    return (
        md_table(header, body) + "\n\nScores in %, 95% percentile bootstrap intervals "
        f"resampling prompts. Headline metric per row:\n{notes}\n"
    )


def failures_markdown(failed: Sequence[dict[str, Any]]) -> str:
    """The models that did not complete, as a markdown table ('' when none)."""
    if not failed:
        return ""
    body = [[f["model"], f["status"], f.get("error") or ""] for f in failed]
    return "\nModels that did not complete:\n\n" + md_table(("model", "status", "why"), body) + "\n"


def to_json(rows: list[dict[str, Any]], failed: Sequence[dict[str, Any]] = ()) -> str:
    out = []
    for r in rows:
        d = {c: r.get(c) for c in columns()}
        d["per_family"], d["per_constraint"] = r["_per_family"], r["_per_constraint"]
        if r.get("_density"):
            d["density"] = r["_density"]
        if r.get("_failure_families"):
            d["failure_families"] = r["_failure_families"]
        out.append(d)
    doc = {
        "generated_by": f"ifharness {__version__}",
        "metric_definitions": metric_doc(),
        "interval": "95% percentile bootstrap, resampling prompts",
        "rows": out,
        "failed": list(failed),
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _task_section(task: str, rows: list[dict[str, Any]]) -> str:
    mode = "loose" if all(is_loose(r["metric"]) for r in rows) else "strict"
    bases = base_metrics()
    trs = []
    for r in rows:
        trs.append(
            [
                r["rank"],
                r["model"],
                r["metric"],
                (pct(r["score"]), r["score"] or 0),
                ci_text([r["ci_low"], r["ci_high"]]) if r["ci_low"] is not None else "",
                *[(pct(r[b.name]), r[b.name] or 0) for b in bases],
                r["n_prompts"],
                (
                    "" if r["truncation_rate"] is None else pct(r["truncation_rate"], 1),
                    r["truncation_rate"] or 0,
                ),
                str(r["dataset_hash"] or "")[:12],
                r["profile"],
                r["preset"] or "",
                r["sampling"],
                str(r["chat_template_hash"] or "")[:12],
                r["run"],
            ]
        )
    header = (
        "#",
        "model",
        "metric",
        "score %",
        "95% CI",
        *(b.header for b in bases),
        "prompts",
        "truncated %",
        "dataset",
        "profile",
        "preset",
        "sampling",
        "chat template",
        "run",
    )
    nb = len(bases)
    numeric = (0, 3, *range(5, 5 + nb), 5 + nb, 6 + nb)  # rank, score, metrics, prompts, trunc.
    families = sorted({f for r in rows for f in r["_per_family"]})
    constraints = sorted({c for r in rows for c in r["_per_constraint"]})

    def val(group: dict[str, Any], gid: str):
        g = group.get(gid)
        return None if g is None else (g[f"{mode}_acc"], g.get(f"{mode}_ci"), g["n"])

    bars = bar_chart(
        families,
        [(r["model"], [val(r["_per_family"], f) for f in families]) for r in rows],
        f"{task}: {mode} accuracy per family (%), 95% intervals",
    )
    heat = heat_map(
        constraints,
        [r["model"] for r in rows],
        [[val(r["_per_constraint"], c) for r in rows] for c in constraints],
        f"{task}: {mode} accuracy per constraint (%)",
    )
    curves = _density_chart(task, rows) + _failure_family_map(task, rows)
    hashes = {r["dataset_hash"] for r in rows}
    warn = (
        ""
        if len(hashes) <= 1
        else '<p class="fail">Rows of this task were scored on different data '
        "(dataset hashes differ): they are not comparable.</p>"
    )
    return (
        f"<h2>{esc(task)}</h2>{warn}"
        f'<div class="wrap">{table(header, trs, numeric=numeric)}</div>'
        f"{curves}"
        f'<div class="plots">{bars}</div><div class="plots">{heat}</div>'
    )


def _density_chart(task: str, rows: list[dict[str, Any]]) -> str:
    """Accuracy against the number of keywords, one line per model, for density runs."""
    runs = [r for r in rows if r.get("_density")]
    if not runs:
        return ""
    series = [(str(r["model"]), density.curve(r["_density"])) for r in runs]
    levels = sorted({x for _, pts in series for x, _, _ in pts})
    chart = line_chart(
        series,
        f"{task}: instruction-level accuracy (%) by number of keywords, 95% Wilson intervals",
        "keywords in the prompt (log scale)",
        log_x=True,
        x_ticks=levels,
        kind="density",
    )
    return f'<div class="plots">{chart}</div>'


def _failure_family_map(task: str, rows: list[dict[str, Any]]) -> str:
    """Model × failure family heat map (prompt-level strict, %) for runs whose prompts name a
    family (the ``quick`` task); '' otherwise. One row per model, one column per family."""
    runs = [r for r in rows if r.get("_failure_families")]
    if not runs:
        return ""
    families = list(dict.fromkeys(f for r in runs for f in r["_failure_families"]))

    def cell(r: dict[str, Any], f: str):
        g = r["_failure_families"].get(f)
        return None if g is None or g["acc"] is None else (g["acc"], None, g["n"])

    chart = heat_map(
        [str(r["model"]) for r in runs],
        families,
        [[cell(r, f) for f in families] for r in runs],
        f"{task}: prompt-level strict pass rate (%) per failure family",
        kind="failure-families",
    )
    return (
        f'<h3 id="failure-families">{esc(task)}: failure families</h3>'
        '<p class="small muted">Each cell: the share of the family\'s prompts whose every '
        "instruction the model followed (prompt-level strict). Grey: no prompt of that family "
        f'in the run.</p><div class="plots wrap">{chart}</div>'
    )


def _failed_section(failed: Sequence[dict[str, Any]]) -> str:
    if not failed:
        return ""
    body = [
        [
            f["model"],
            (f["status"], f["status"], "fail"),
            f.get("error") or "",
            f.get("folder") or "",
        ]
        for f in failed
    ]
    return (
        '<h2 id="failed-models">Models that did not complete</h2><p class="small muted">'
        "From the sweep's sweep.json, or the run folder's run.json. A failed model has no row "
        "below; an incomplete one is scored with its missing answers as not followed.</p>"
        f'<div class="wrap">{table(("model", "status", "why", "run folder"), body)}</div>'
    )


def to_html(rows: list[dict[str, Any]], failed: Sequence[dict[str, Any]] = ()) -> str:
    tasks: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        tasks.setdefault(str(r["task"]), []).append(r)
    used = sorted({r["metric"] for r in rows})
    defs = "".join(
        f"<li><code>{esc(m)}</code>: {esc(get_metric(m).description)}</li>" for m in used
    )
    body = (
        f'<h1>ifharness leaderboard</h1><p class="muted">{len(rows)} runs, '
        f"{len(tasks)} task(s). Click a column header to sort. Scores in %, 95% percentile "
        f"bootstrap intervals resampling prompts; per family and constraint, Wilson score "
        f'intervals.</p><ul class="small">{defs}</ul>'
        + _failed_section(failed)  # first: with hundreds of models, who failed is news
        + "".join(_task_section(t, rs) for t, rs in tasks.items())
        + f'<p class="small muted">generated by ifharness {esc(__version__)}</p>'
    )
    return page("ifharness leaderboard", body)


def render(rows: list[dict[str, Any]], fmt: str, failed: Sequence[dict[str, Any]] = ()) -> str:
    """The table in ``fmt``; ``failed`` (:func:`failures`) is listed in all but CSV."""
    if fmt == "md":
        return (to_markdown(rows) if rows else "") + failures_markdown(failed)
    if fmt == "csv":
        return frame(rows).to_csv(index=False)
    if fmt == "json":
        return to_json(rows, failed)
    if fmt == "html":
        return to_html(rows, failed)
    raise IfharnessError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def leaderboard_main(args: Any) -> int:
    """The ``ifharness leaderboard`` command."""
    fmt = args.format
    if fmt is None:
        suffix = Path(args.out).suffix.lstrip(".").lower() if args.out else ""
        fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
        fmt = fmt if fmt in FORMATS else "md"
    rows = collect(
        args.runs,
        args.metric,
        args.n_resamples,
        args.seed,
        warn=lambda m: print(m, file=sys.stderr),
    )
    failed = failures(args.runs)
    rows = without_failed(rows, failed)
    if not rows:
        print("warning: no model completed; only the failures are listed", file=sys.stderr)
    text = render(rows, fmt, failed)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out} ({len(rows)} rows)")
    else:
        sys.stdout.write(text)
    return 0
