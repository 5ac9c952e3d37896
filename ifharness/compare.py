"""Paired comparison of two runs of one task on the same prompts.

The two runs are paired sample by sample: row ``(key, sample)`` of A with the same row of B.
Runs of different tasks, or of the same task on different data (``dataset_hash``), are
refused, except two runs of one generated set (the same ``set_id`` in ``run.json``'s
``generated``) under different renderings (prose, pseudo-code, JSON): their samples share keys
and constraints, only the wording differs, so they pair key by key and the output names both
renderings. Runs of two different generated sets are refused with both set ids. Rows present
in only one run are left out and counted; a partial candidate run (``--limit``) is compared on
the prompts it has.

For each metric: both values, ``delta = B - A``, a paired bootstrap interval for the delta
(the same resampled prompts for both runs) and a two-sided p-value: the exact McNemar test on
discordant prompts for the prompt-level (one pass/fail per row) metrics of the metric table
in one-sample runs (the exact test for paired pass/fail), the paired bootstrap's otherwise.
Per constraint: accuracy on the paired instructions, the delta, exact McNemar on discordant
instructions and Benjamini-Hochberg q-values across constraints. The per-constraint table is
exploratory: it is never gated.

Which test produced each p is named (``test``: ``mcnemar_exact`` or ``paired_bootstrap``). A
bootstrap p cannot go below ``2/(B+1)`` with ``B`` resamples; at that floor it is printed as
``<bound`` (JSON: ``p_is_bound``, ``p_resolution``). The exact McNemar p is exact.

Flips (``flips``): for each prompt-level metric, the paired rows (prompts, in one-sample runs)
that only A passed and that only B passed, the discordant pairs McNemar counts.

Equivalence (``margin``, ``--equivalence-margin``): two one-sided tests (TOST) on the paired
bootstrap of the delta (``stats.one_sided_bootstrap``), for every metric:
``p_lower`` tests H0 ``delta <= -m`` (non-inferiority: B is no worse than A by more than m),
``p_upper`` tests H0 ``delta >= +m``; equivalence is shown at ``alpha`` when both are below it.
The bootstrap is used for every metric, prompt-level ones too: the exact McNemar test has no
form for a non-zero margin.

Either run may be an lm-eval ``--log_samples`` file of an ``ifharness_*`` task instead of a
run folder (:func:`load_input`): it is re-scored in memory, nothing is written.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import stats
from .errors import DataError
from .metrics import BaseMetric, Mode, base_metrics, get_metric, metric_names
from .rundir import RunData, RunFolder, RunInfo, VerdictRow, load_run, row_id


def load_input(path: str | Path) -> RunData:
    """A run folder, or an lm-eval ``--log_samples`` JSONL file of an ``ifharness_*`` task.

    A file is re-scored in memory (``lmeval.rescore.rescore``, the path ``score --from-lmeval``
    takes) and wrapped as the :class:`RunData` a run folder would give: the same verdicts, the
    same ``run.json`` fields (``source: "lm-eval"``), the answers as completions. Nothing is
    written; the run is named by the file. Not an ifharness samples file: ``DataError``.
    """
    p = Path(path)
    if not p.is_file():
        return load_run(p)
    from .files import sha256_file
    from .lmeval import TASK_PREFIX
    from .lmeval.rescore import rescore
    from .results import completion_rows, task_record

    result = rescore(p)
    info = RunInfo(
        kind="score",
        **task_record(result.task),
        source="lm-eval",
        lmeval={
            "samples": {"path": str(p), "sha256": sha256_file(p)},
            "task": f"{TASK_PREFIX}{result.task.name}",
        },
    )
    completions = {row_id(r): r for r in completion_rows(result.task, result.joined)}
    return RunData(RunFolder(p), info, result.verdicts, result.metrics, completions)


def generated_set(a: RunData, b: RunData) -> dict[str, Any] | None:
    """The generated set both runs come from, when they do: ``set_id`` and each run's
    rendering (``ifharness generate`` gives the renderings of one set the same ``set_id`` and
    the same sample keys, so their rows pair even though the prompts, hence ``dataset_hash``
    and often the task name, differ). None unless both runs record the same ``set_id``.

    Two generated runs of *different* sets whose task or data also differ are refused here,
    with the set ids in the message, rather than with the generic data mismatch.
    """
    ga, gb = a.info.generated or {}, b.info.generated or {}
    sa, sb = ga.get("set_id"), gb.get("set_id")
    if sa and sb and sa == sb:
        return {
            "set_id": sa,
            "a_rendering": ga.get("rendering"),
            "b_rendering": gb.get("rendering"),
            "family": ga.get("family"),
        }
    if sa and sb and (a.task != b.task or a.dataset_hash != b.dataset_hash):
        raise DataError(
            f"cannot compare runs of different generated sets: {a.path} is set {sa} "
            f"({ga.get('rendering')}), {b.path} is set {sb} ({gb.get('rendering')}); "
            "renderings pair only within one set: generate them with one command "
            "(`ifharness generate ... --rendering all`) or with the same arguments and seed"
        )
    return None


def rendering_label(gen: dict[str, Any] | None) -> str | None:
    """``prose vs pseudocode, set 1a2b…``: what a cross-rendering comparison compares."""
    if not gen:
        return None
    return f"{gen['a_rendering']} vs {gen['b_rendering']}, set {gen['set_id']}"


def pair_rows(a: RunData, b: RunData) -> tuple[list[VerdictRow], list[VerdictRow], dict[str, Any]]:
    """Rows of A and B in the same order, on the (key, sample) pairs both runs hold.

    Runs of one generated set (:func:`generated_set`) pair by key across renderings; any other
    pair must be of the same task on the same data.
    """
    gen = generated_set(a, b)
    if gen is None:
        _same_task_and_data(a, b)
    by_b = {row_id(r): r for r in b.verdicts}
    return _pair_verdicts(a, b, by_b, gen)


def _same_task_and_data(a: RunData, b: RunData) -> None:
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


def _pair_verdicts(
    a: RunData, b: RunData, by_b: dict[tuple[str, int], VerdictRow], gen: dict[str, Any] | None
) -> tuple[list[VerdictRow], list[VerdictRow], dict[str, Any]]:
    rows_a: list[VerdictRow] = []
    rows_b: list[VerdictRow] = []
    for r in a.verdicts:
        other = by_b.get(row_id(r))
        if other is None:
            continue
        if other["instruction_id_list"] != r["instruction_id_list"]:
            same = f"set {gen['set_id']}" if gen else "data"
            raise DataError(
                f"key {r['key']}: the runs list different instructions "
                f"({a.path}, {b.path}); were they scored on the same {same}?"
            )
        rows_a.append(r)
        rows_b.append(other)
    if not rows_a:
        raise DataError(f"{a.path} and {b.path} share no (key, sample) rows to compare")
    info: dict[str, Any] = {
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
    if gen is not None:
        info["generated"] = gen
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
    margin: float | None = None,
) -> dict[str, Any]:
    """Everything ``compare`` prints and ``gate`` decides on, as one JSON-able dict
    (``metrics``: names from the metric table, default all; ``margin``: the equivalence
    margin, a fraction, for the TOST columns)."""
    metrics = metric_names() if metrics is None else metrics
    for m in metrics:
        stats.check_metric(m)
    if margin is not None and not 0 <= margin < 1:
        raise ValueError(f"--equivalence-margin {margin}: give a fraction in [0, 1)")
    rows_a, rows_b, info = pair_rows(a, b)
    ta, tb = stats.build_table(rows_a), stats.build_table(rows_b)
    level = 1 - alpha
    boot = stats.paired_bootstrap(ta, tb, metrics, n_resamples, seed, level, margin)
    result_metrics = {}
    for m in metrics:
        row = dict(boot[m])
        row["p_bootstrap"] = row.pop("p")
        row["test"], row["p"] = "paired_bootstrap", row["p_bootstrap"]
        row.setdefault("p_is_bound", False)
        row.setdefault("p_resolution", None)
        entry = get_metric(m)
        if isinstance(entry, BaseMetric) and entry.bernoulli:
            row["mcnemar"] = mcnemar(entry, rows_a, rows_b)
            if info["samples_per_prompt"] == 1:
                row["test"], row["p"] = "mcnemar_exact", row["mcnemar"]["p"]
                row["p_is_bound"], row["p_resolution"] = False, None
        if margin is not None:
            row["tost"] = tost_verdict(row.get("tost"), margin, alpha)
        result_metrics[m] = row
    return {
        "a": describe(a),
        "b": describe(b),
        "task": a.task if a.task == b.task else f"{a.task} vs {b.task}",
        "dataset_hash": a.dataset_hash,
        # the generated set both runs render (set_id, each rendering), None for other pairs
        "generated": info.get("generated"),
        "paired": {k: v for k, v in info.items() if k not in ("notes", "generated")},
        "notes": info["notes"],
        "alpha": alpha,
        "interval": {
            "level": level,
            "method": "paired percentile bootstrap, resampling prompts",
            "n_resamples": n_resamples,
            "seed": seed,
        },
        "metrics": result_metrics,
        "flips": flips(rows_a, rows_b),
        "equivalence": None
        if margin is None
        else {
            "margin": margin,
            "alpha": alpha,
            "method": "TOST on the paired percentile bootstrap of delta: p_lower = "
            "(#{d <= -m} + 1)/(B + 1), p_upper = (#{d >= m} + 1)/(B + 1)",
        },
        "constraint_mode": mode,
        "constraints": constraint_deltas(rows_a, rows_b, mode),
    }


def tost_verdict(t: dict[str, Any] | None, margin: float, alpha: float) -> dict[str, Any]:
    """The one-sided p-values of ``stats.one_sided_bootstrap`` (or none, with fewer than two
    prompts) plus what they show at ``alpha``: ``noninferior`` (``p_lower < alpha``) and
    ``equivalent`` (both below alpha)."""
    t = dict(t or {"margin": margin, "p_lower": None, "p_upper": None, "p_tost": None})
    lo, hi = t.get("p_lower"), t.get("p_upper")
    t["noninferior"] = lo is not None and lo < alpha
    t["equivalent"] = lo is not None and hi is not None and max(lo, hi) < alpha
    return t


def flips(rows_a: Sequence[VerdictRow], rows_b: Sequence[VerdictRow]) -> dict[str, Any]:
    """Per prompt-level (Bernoulli) metric: rows passed only by A, only by B, rows compared."""
    out = {}
    for entry in base_metrics():
        if entry.bernoulli:
            m = mcnemar(entry, rows_a, rows_b)
            out[entry.name] = {"a_only": m["a_only"], "b_only": m["b_only"], "pairs": m["pairs"]}
    return out


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


def pvalue(p: float | None, bound: bool = False) -> str:
    """``0.0312``; ``<0.0001`` for a tiny exact p; ``<0.002`` for a bootstrap p at its
    resolution floor (``bound``: the value itself, ``2/(B+1)`` or ``1/(B+1)``, rounded *up* to
    two significant digits, so the printed bound is never below the true one)."""
    if p is None:
        return "n/a"
    if bound:
        e = math.floor(math.log10(p)) - 1
        return f"<{math.ceil(p / 10.0**e - 1e-9) * 10.0**e:.{max(0, -e)}f}".rstrip("0").rstrip(".")
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def p_text(row: dict[str, Any]) -> str:
    """A result row's ``p`` as printed, honouring ``p_is_bound``."""
    return pvalue(row.get("p"), bool(row.get("p_is_bound")))


def tost_cells(t: dict[str, Any] | None) -> list[str]:
    """``p(Δ ≤ −m)``, ``p(Δ ≥ +m)`` and the verdict, as printed."""
    if not t:
        return ["n/a", "n/a", "n/a"]
    verdict = (
        "equivalent"
        if t.get("equivalent")
        else ("non-inferior" if t.get("noninferior") else "not shown")
    )
    return [
        pvalue(t.get("p_lower"), bool(t.get("p_lower_is_bound"))),
        pvalue(t.get("p_upper"), bool(t.get("p_upper_is_bound"))),
        verdict,
    ]


def flip_lines(result: dict[str, Any], a: str = "A", b: str = "B") -> list[str]:
    """One line per prompt-level metric: how many paired rows only A / only B passed."""
    unit = "prompts" if result["paired"].get("samples_per_prompt", 1) == 1 else "rows"
    return [
        f"{name}: {f['a_only']} {unit} passed only by {a}, {f['b_only']} only by {b} "
        f"(of {f['pairs']} paired)"
        for name, f in (result.get("flips") or {}).items()
    ]


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
    tost = result.get("equivalence") is not None
    for name, r in result["metrics"].items():
        rows.append(
            [
                name,
                pct(r["a"]),
                pct(r["b"]),
                pct(r["delta"], True),
                interval(r["ci"]),
                p_text(r),
                r["test"],
                *(tost_cells(r.get("tost")) if tost else []),
            ]
        )
    return rows


METRIC_HEADER = ("metric", "A %", "B %", "Δ pt", "CI (pt)", "p", "test")
TOST_HEADER = ("p (Δ ≤ −m)", "p (Δ ≥ +m)", "TOST")


def metric_header(result: dict[str, Any]) -> tuple[str, ...]:
    return METRIC_HEADER + (TOST_HEADER if result.get("equivalence") is not None else ())


def equivalence_line(result: dict[str, Any]) -> str | None:
    eq = result.get("equivalence")
    if eq is None:
        return None
    return (
        f"TOST with margin m = {100 * eq['margin']:.2f} pt at alpha {eq['alpha']}: one-sided "
        "paired-bootstrap p-values; non-inferior when p (Δ ≤ −m) < alpha, equivalent when "
        "both are."
    )


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


def _summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"flips, {x}" for x in flip_lines(result)]
    eq = equivalence_line(result)
    return lines + ([eq] if eq else [])


def _set_suffix(result: dict[str, Any]) -> str:
    """`` (prose vs pseudocode, set …)`` for runs of one generated set, else nothing."""
    label = rendering_label(result.get("generated"))
    return f" ({label})" if label else ""


def to_markdown(result: dict[str, Any], limit: int | None = 15) -> str:
    p = result["paired"]
    level = round(100 * result["interval"]["level"])
    parts = [
        (
            f"**A** `{result['a']['model']}` ({result['a']['path']}) vs **B** "
            f"`{result['b']['model']}` ({result['b']['path']}) on task `{result['task']}`"
            f"{_set_suffix(result)}, {p['prompts']} prompts paired ({p['rows']} rows). "
            "Δ = B − A in points; "
            f"{level}% paired bootstrap intervals."
        ),
        "",
        md_table(metric_header(result), metrics_rows(result)),
        "",
        *[f"{line}  " for line in _summary_lines(result)],
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
            f"task {result['task']}{_set_suffix(result)}: {p['prompts']} prompts, "
            f"{p['rows']} paired rows; "
            f"delta = B - A in points, {round(100 * result['interval']['level'])}% paired "
            "bootstrap intervals"
        ),
        "",
    ]
    lines += table(metric_header(result), metrics_rows(result))
    lines += ["", *_summary_lines(result)]
    lines += ["", f"per constraint ({result['constraint_mode']}; exploratory, BH-adjusted q):"]
    lines += table(CONSTRAINT_HEADER, constraint_rows(result))
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)
