"""Paired comparison of two runs of one task on the same prompts.

The two runs are paired sample by sample: row ``(key, sample)`` of A with the same row of B.
Runs of different tasks, or of the same task on different data (``dataset_hash``), are
refused. Rows present in only one run are left out and counted; a partial candidate run
(``--limit``) is compared on the prompts it has.

For each metric: both values, ``delta = B - A``, a paired bootstrap interval for the delta
(the same resampled prompts for both runs) and a two-sided p-value: the exact McNemar test on
discordant prompts for the prompt-level (one pass/fail per row) metrics of the metric table
in one-sample runs (the exact test for paired pass/fail), the paired bootstrap's otherwise.
Per constraint: accuracy on the paired instructions, the delta, exact McNemar on discordant
instructions and Benjamini-Hochberg q-values across constraints. The per-constraint table is
exploratory: it is never gated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from . import stats
from .errors import DataError
from .metrics import BaseMetric, Mode, get_metric, metric_names
from .rundir import RunData, VerdictRow, row_id


def pair_rows(a: RunData, b: RunData) -> tuple[list[VerdictRow], list[VerdictRow], dict[str, Any]]:
    """Rows of A and B in the same order, on the (key, sample) pairs both runs hold."""
    if a.task != b.task:
        raise DataError(
            f"cannot compare runs of different tasks: {a.path} is task {a.task!r}, "
            f"{b.path} is task {b.task!r}"
        )
    if a.dataset_hash != b.dataset_hash:
        raise DataError(
            f"cannot compare runs on different data: dataset_hash {str(a.dataset_hash)[:12]} "
            f"({a.path}) != {str(b.dataset_hash)[:12]} ({b.path}); score both runs on the same "
            "data file"
        )
    by_b = {row_id(r): r for r in b.verdicts}
    rows_a: list[VerdictRow] = []
    rows_b: list[VerdictRow] = []
    for r in a.verdicts:
        other = by_b.get(row_id(r))
        if other is None:
            continue
        if other["instruction_id_list"] != r["instruction_id_list"]:
            raise DataError(
                f"key {r['key']}: the runs list different instructions "
                f"({a.path}, {b.path}); were they scored on the same data?"
            )
        rows_a.append(r)
        rows_b.append(other)
    if not rows_a:
        raise DataError(f"{a.path} and {b.path} share no (key, sample) rows to compare")
    info = {
        "rows": len(rows_a),
        "prompts": len({row_id(r)[0] for r in rows_a}),
        "only_a": len(a.verdicts) - len(rows_a),
        "only_b": len(by_b) - len(rows_b),
        "samples_per_prompt": max(row_id(r)[1] for r in rows_a) + 1,
    }
    notes = []
    if info["only_a"] or info["only_b"]:
        notes.append(
            f"paired on {info['rows']} rows; {info['only_a']} only in A and "
            f"{info['only_b']} only in B were left out"
        )
    if a.profile != b.profile:
        notes.append(
            f"scoring profiles differ ({a.profile} vs {b.profile}): part of any "
            "difference may come from the scorer, not the model"
        )
    return rows_a, rows_b, {**info, "notes": notes}


def constraint_deltas(
    rows_a: Sequence[VerdictRow], rows_b: Sequence[VerdictRow], mode: Mode = "strict"
) -> list[dict[str, Any]]:
    """Per constraint: paired accuracy, delta, exact McNemar p and BH q, sorted by p."""
    pairs: dict[str, list[tuple[bool | None, bool | None]]] = defaultdict(list)
    for ra, rb in zip(rows_a, rows_b):
        for cid, x, y in zip(ra["instruction_id_list"], ra[mode], rb[mode]):
            pairs[cid].append((x, y))
    out: list[dict[str, Any]] = []
    pvalues: list[float | None] = []
    for cid, ps in sorted(pairs.items()):
        known = [(x, y) for x, y in ps if x is not None and y is not None]
        b, c, n = stats.discordant(known)
        acc_a = acc_b = delta = p = None
        if n:
            acc_a = sum(bool(x) for x, _ in known) / n
            acc_b = sum(bool(y) for _, y in known) / n
            delta = acc_b - acc_a
            p = stats.mcnemar_exact(b, c)
        pvalues.append(p)
        out.append(
            {
                "constraint": cid,
                "n": n,
                "a": acc_a,
                "b": acc_b,
                "delta": delta,
                "a_only": b,
                "b_only": c,
                "p": p,
            }
        )
    for row, q in zip(out, stats.benjamini_hochberg(pvalues)):
        row["q"] = q
    out.sort(key=lambda r: (1.0 if r["p"] is None else r["p"], r["constraint"]))
    return out


def mcnemar(
    metric: BaseMetric, rows_a: Sequence[VerdictRow], rows_b: Sequence[VerdictRow]
) -> dict[str, Any]:
    """Exact McNemar on the rows where one run passed ``metric`` and the other did not."""
    pb, pc, n = stats.discordant(
        (metric.row_pass(x[metric.mode]), metric.row_pass(y[metric.mode]))
        for x, y in zip(rows_a, rows_b)
    )
    return {"a_only": pb, "b_only": pc, "pairs": n, "p": stats.mcnemar_exact(pb, pc)}


def compare_runs(
    a: RunData,
    b: RunData,
    metrics: Sequence[str] | None = None,
    mode: Mode = "strict",
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Everything ``compare`` prints and ``gate`` decides on, as one JSON-able dict
    (``metrics``: names from the metric table, default all)."""
    metrics = metric_names() if metrics is None else metrics
    for m in metrics:
        stats.check_metric(m)
    rows_a, rows_b, info = pair_rows(a, b)
    ta, tb = stats.build_table(rows_a), stats.build_table(rows_b)
    level = 1 - alpha
    boot = stats.paired_bootstrap(ta, tb, metrics, n_resamples, seed, level)
    result_metrics = {}
    for m in metrics:
        row = dict(boot[m])
        row["p_bootstrap"] = row.pop("p")
        row["test"], row["p"] = "paired_bootstrap", row["p_bootstrap"]
        entry = get_metric(m)
        if isinstance(entry, BaseMetric) and entry.bernoulli:
            row["mcnemar"] = mcnemar(entry, rows_a, rows_b)
            if info["samples_per_prompt"] == 1:
                row["test"], row["p"] = "mcnemar_exact", row["mcnemar"]["p"]
        result_metrics[m] = row
    return {
        "a": describe(a),
        "b": describe(b),
        "task": a.task,
        "dataset_hash": a.dataset_hash,
        "paired": {k: v for k, v in info.items() if k != "notes"},
        "notes": info["notes"],
        "alpha": alpha,
        "interval": {
            "level": level,
            "method": "paired percentile bootstrap, resampling prompts",
            "n_resamples": n_resamples,
            "seed": seed,
        },
        "metrics": result_metrics,
        "constraint_mode": mode,
        "constraints": constraint_deltas(rows_a, rows_b, mode),
    }


def describe(run: RunData) -> dict[str, Any]:
    return {
        "path": str(run.path),
        "model": run.model,
        "profile": run.profile,
        "sampling": run.sampling,
        "chat_template_hash": run.chat_template_hash,
    }


# ---------------------------------------------------------------- rendering


def pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def interval(ci: Sequence[float] | None) -> str:
    return "n/a" if not ci else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"


def pvalue(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(map(cell, header)) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def metrics_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, r in result["metrics"].items():
        rows.append(
            [
                name,
                pct(r["a"]),
                pct(r["b"]),
                pct(r["delta"], True),
                interval(r["ci"]),
                pvalue(r["p"]),
                r["test"],
            ]
        )
    return rows


METRIC_HEADER = ("metric", "A %", "B %", "Δ pt", "CI (pt)", "p", "test")
CONSTRAINT_HEADER = ("constraint", "n", "A %", "B %", "Δ pt", "A only", "B only", "p", "q (BH)")


def constraint_rows(result: dict[str, Any], limit: int | None = None) -> list[list[str]]:
    rows = result["constraints"][:limit] if limit else result["constraints"]
    return [
        [
            r["constraint"],
            r["n"],
            pct(r["a"]),
            pct(r["b"]),
            pct(r["delta"], True),
            r["a_only"],
            r["b_only"],
            pvalue(r["p"]),
            pvalue(r["q"]),
        ]
        for r in rows
    ]


def to_markdown(result: dict[str, Any], limit: int | None = 15) -> str:
    p = result["paired"]
    level = round(100 * result["interval"]["level"])
    parts = [
        (
            f"**A** `{result['a']['model']}` ({result['a']['path']}) vs **B** "
            f"`{result['b']['model']}` ({result['b']['path']}) on task `{result['task']}`, "
            f"{p['prompts']} prompts paired ({p['rows']} rows). Δ = B − A in points; "
            f"{level}% paired bootstrap intervals."
        ),
        "",
        md_table(METRIC_HEADER, metrics_rows(result)),
        "",
        (
            f"<details><summary>Per-constraint deltas ({result['constraint_mode']}, exploratory; "
            "exact McNemar, Benjamini-Hochberg q)</summary>"
        ),
        "",
        md_table(CONSTRAINT_HEADER, constraint_rows(result, limit)),
        "",
        "</details>",
    ]
    if limit and len(result["constraints"]) > limit:
        parts.insert(
            -2, f"\n{len(result['constraints']) - limit} more constraint(s) in the JSON verdict."
        )
    for note in result["notes"]:
        parts.append(f"\n> note: {note}")
    return "\n".join(parts) + "\n"


def to_text(result: dict[str, Any]) -> str:
    def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        return [
            "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *rows]
        ]

    p = result["paired"]
    lines = [
        f"A: {result['a']['model']} ({result['a']['path']})",
        f"B: {result['b']['model']} ({result['b']['path']})",
        (
            f"task {result['task']}: {p['prompts']} prompts, {p['rows']} paired rows; "
            f"delta = B - A in points, {round(100 * result['interval']['level'])}% paired "
            "bootstrap intervals"
        ),
        "",
    ]
    lines += table(METRIC_HEADER, metrics_rows(result))
    lines += ["", f"per constraint ({result['constraint_mode']}; exploratory, BH-adjusted q):"]
    lines += table(CONSTRAINT_HEADER, constraint_rows(result))
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)
