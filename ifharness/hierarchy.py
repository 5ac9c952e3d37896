"""Hierarchy metrics: does the model follow the system message, and when the user contradicts it?

A hierarchy task (``generated.family == "hierarchy"``, written by ``ifharness generate
hierarchy``) holds each composed sample three times, sharing a ``pair`` id: ``system``
(constraints in the system message), ``user`` (in the user message, no system message) and
``conflict`` (in the system message, contradicted by the user). Every row is scored against
the system constraints only. :func:`compute` turns the verdict rows into:

* per placement, under the names a reader looks for: "follows system" (``system``), "follows
  user" (``user``), "follows when they conflict" (``conflict``): prompt- and
  instruction-level accuracy, strict and loose, their mean (``mean4``, IHEval's score), and a
  95% Wilson interval on the prompt-level strict accuracy;
* paired per sample, for (system, conflict), (user, conflict) and (user, system): on the pairs
  where both rows are scored, the accuracy difference b - a and the exact McNemar test on the
  discordant pairs (``ifharness.stats.mcnemar_exact``), prompt-level strict and loose. The
  conflict - user difference is IHEval's "drop" (conflict minus reference);
* per constraint, instruction-level strict accuracy in each placement: which constraints the
  user's contradiction overrides most.

With several samples per prompt a pair is (pair id, sample index). ``ifharness score`` and
``run`` store the block under ``hierarchy`` in ``metrics.json`` (``ScoreResult.write``); the
report recomputes it from the run folder (``samples.jsonl`` keeps ``placement`` and ``pair``
in each row's ``meta``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import stats
from .rundir import row_id
from .scoring import summarize

if TYPE_CHECKING:
    from .loader import Task, TaskFile
    from .rundir import RunData, VerdictRow
    from .scoring import ScoreResult

FAMILY = "hierarchy"
PLACEMENTS = ("system", "user", "conflict")
LABELS = {
    "system": "follows system",
    "user": "follows user",
    "conflict": "follows when they conflict",
}
#: (a, b): the paired comparisons reported, each as b - a.
COMPARISONS = (("system", "conflict"), ("user", "conflict"), ("user", "system"))
METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)
PAIRED_METHOD = (
    "per pair of rows of one sample, both scored: accuracy of b minus accuracy of a, and the "
    "two-sided exact McNemar p-value on the discordant pairs (prompt level)"
)


@dataclass(frozen=True)
class Item:
    """One scored row: its placement, the pair it belongs to, and its verdict row."""

    placement: str
    pair: str
    sample: int
    row: VerdictRow


def _family(generated: Any) -> str | None:
    if generated is None:
        return None
    if isinstance(generated, Mapping):
        return generated.get("family")
    return getattr(generated, "family", None)


def is_hierarchy_task(task: Task | TaskFile) -> bool:
    return _family(getattr(task.spec, "generated", None)) == FAMILY


def is_hierarchy_run(run: RunData) -> bool:
    if _family(getattr(run.info, "generated", None)) == FAMILY:
        return True
    return bool((run.metrics or {}).get(FAMILY))


def _placement(key: str, meta: Mapping[str, Any]) -> tuple[str | None, str]:
    """(placement, pair) from the row's meta, else from the key's ``-<placement>`` suffix."""
    placement, pair = meta.get("placement"), meta.get("pair")
    if placement is None:
        stem, _, tail = key.rpartition("-")
        if tail in PLACEMENTS:
            placement, pair = tail, pair or stem
    return placement, str(pair if pair is not None else key)


def items_of(metas: Mapping[str, Mapping[str, Any]], verdicts: Sequence[VerdictRow]) -> list[Item]:
    """Items of the verdict rows whose sample has a placement (``metas``: meta by str(key))."""
    out = []
    for row in verdicts:
        key, idx = row_id(row)
        placement, pair = _placement(key, metas.get(key) or {})
        if placement in PLACEMENTS:
            out.append(Item(placement, pair, idx, row))
    return out


def _placement_block(rows: list[VerdictRow]) -> dict[str, Any]:
    if not rows:
        return {"n_prompts": 0, **dict.fromkeys(METRICS), "mean4": None, "ci": None}
    m = summarize(rows, n_resamples=0)
    passed, scored = m["prompts_strict_followed"], m["prompts_strict_scored"]
    return {
        "n_prompts": len(rows),
        "n_instructions": m["n_instructions"],
        **{name: m[name] for name in METRICS},
        "mean4": m.get("mean4"),
        "ci": stats.wilson_interval(passed, scored) if scored else None,
        "missing_responses": m["missing_responses"],
        "unscorable_instructions": m["unscorable_instructions"],
    }


def _prompt_pass(verdicts: Sequence[bool | None]) -> bool | None:
    if any(v is None for v in verdicts):
        return None
    return all(verdicts)


def _paired(items: Sequence[Item], a: str, b: str) -> dict[str, Any]:
    by: dict[tuple[str, int], dict[str, VerdictRow]] = {}
    for it in items:
        by.setdefault((it.pair, it.sample), {})[it.placement] = it.row
    out: dict[str, Any] = {"a": a, "b": b, "label": f"{LABELS[b]} vs {LABELS[a]}"}
    for mode in ("strict", "loose"):
        pairs = [
            (_prompt_pass(rows[a][mode]), _prompt_pass(rows[b][mode]))
            for rows in by.values()
            if a in rows and b in rows
        ]
        a_only, b_only, n = stats.discordant(pairs)
        out[mode] = {
            "pairs": n,
            "a_only": a_only,
            "b_only": b_only,
            "delta": (b_only - a_only) / n if n else None,
            "p": stats.mcnemar_exact(a_only, b_only),
        }
    return out


def _per_constraint(items: Sequence[Item]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, list[int]]] = {}
    for it in items:
        for cid, v in zip(it.row["instruction_id_list"], it.row["strict"]):
            if v is None:
                continue
            c = counts.setdefault(cid, {p: [0, 0] for p in PLACEMENTS})[it.placement]
            c[0] += bool(v)
            c[1] += 1
    return {
        cid: {p: (ok / n if n else None) for p, (ok, n) in c.items()}
        | {"n": max(n for _, n in c.values())}
        for cid, c in sorted(counts.items())
    }


def compute(items: Sequence[Item]) -> dict[str, Any]:
    """The ``hierarchy`` block of metrics.json (see the module docstring)."""
    placements = {
        p: {"label": LABELS[p], **_placement_block([it.row for it in items if it.placement == p])}
        for p in PLACEMENTS
    }
    paired = [_paired(items, a, b) for a, b in COMPARISONS]
    return {
        "placements": placements,
        "paired": paired,
        "drop_conflict_minus_user": {
            m: (
                None
                if placements["conflict"][m] is None or placements["user"][m] is None
                else placements["conflict"][m] - placements["user"][m]
            )
            for m in (*METRICS, "mean4")
        },
        "n_pairs": len({it.pair for it in items}),
        "per_constraint": _per_constraint(items),
        "interval": "95% Wilson score interval on prompt-level strict accuracy",
        "paired_method": PAIRED_METHOD,
        "scored_against": "the system constraints only (the user's contradictions are not "
        "constraints)",
    }


def for_result(result: ScoreResult) -> dict[str, Any]:
    """The ``hierarchy`` block of a scored hierarchy task (the scorer's hook calls this)."""
    metas = {str(s.key): s.meta for s in result.task.samples}
    return compute(items_of(metas, result.verdicts))


def for_run(run: RunData) -> dict[str, Any] | None:
    """The block recomputed from a run folder; ``None`` unless it is a hierarchy run. A folder
    without ``samples.jsonl`` still works: the keys end in ``-<placement>``."""
    if not is_hierarchy_run(run):
        return None
    rows = run.folder.read_samples()
    metas = {k: r.get("meta") or {} for k, r in rows.items()}
    return compute(items_of(metas, run.verdicts))


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def html(block: Mapping[str, Any]) -> str:
    """The report section: a bar chart and a table of the three placements, the paired
    comparisons, and the per-constraint accuracies (``report.build_report`` inserts it)."""
    from .htmlkit import bar_chart, ci_text, esc, pct, table

    pl = block.get("placements") or {}
    names = [p for p in PLACEMENTS if p in pl]
    cats = [pl[p]["label"] for p in names]
    series = [
        (
            label,
            [
                (
                    pl[p].get(metric),
                    pl[p].get("ci") if metric == "prompt_level_strict_acc" else None,
                    pl[p].get("n_prompts"),
                )
                for p in names
            ],
        )
        for metric, label in (
            ("prompt_level_strict_acc", "prompt strict"),
            ("prompt_level_loose_acc", "prompt loose"),
            ("inst_level_strict_acc", "inst strict"),
            ("inst_level_loose_acc", "inst loose"),
        )
    ]
    chart = bar_chart(
        cats, series, "accuracy (%) by placement, scored on the system constraints only"
    )
    rows = [
        [
            pl[p]["label"],
            p,
            pl[p].get("n_prompts", 0),
            (pct(pl[p].get("prompt_level_strict_acc")), pl[p].get("prompt_level_strict_acc") or 0),
            ci_text(pl[p].get("ci")),
            pct(pl[p].get("inst_level_strict_acc")),
            pct(pl[p].get("prompt_level_loose_acc")),
            pct(pl[p].get("inst_level_loose_acc")),
            pct(pl[p].get("mean4")),
        ]
        for p in names
    ]
    head = (
        "setting",
        "placement",
        "prompts",
        "prompt strict %",
        "95% CI",
        "inst strict %",
        "prompt loose %",
        "inst loose %",
        "mean of four %",
    )
    paired_rows = [
        [
            c["label"],
            c["strict"]["pairs"],
            c["strict"]["b_only"],
            c["strict"]["a_only"],
            _signed(c["strict"]["delta"]),
            _p(c["strict"]["p"]),
            _signed(c["loose"]["delta"]),
            _p(c["loose"]["p"]),
        ]
        for c in block.get("paired") or []
    ]
    paired_head = (
        "comparison",
        "pairs",
        "only the first passes",
        "only the second passes",
        "strict Δ pp (first - second)",
        "McNemar p",
        "loose Δ pp",
        "McNemar p (loose)",
    )
    per = block.get("per_constraint") or {}
    constraint_rows = []
    for cid, c in per.items():
        s, k = c.get("system"), c.get("conflict")
        constraint_rows.append(
            [
                cid,
                c.get("n", 0),
                pct(s),
                pct(c.get("user")),
                pct(k),
                _signed(None if s is None or k is None else k - s),
            ]
        )
    drop = (block.get("drop_conflict_minus_user") or {}).get("mean4")
    paired = table(paired_head, paired_rows, numeric=(1, 2, 3, 4, 5, 6, 7))
    per_head = ("constraint", "n", "system %", "user %", "conflict %", "conflict - system pp")
    per_table = table(per_head, constraint_rows, numeric=(1, 2, 3, 4, 5))
    return (
        '<h2 id="hierarchy">Instruction hierarchy</h2>'
        f'<p class="small muted">{esc(block.get("n_pairs"))} samples, each placed three ways; '
        f"every placement is scored against {esc(block.get('scored_against'))}. "
        f"Drop when they conflict (conflict - user, mean of four): {esc(_signed(drop))} pp. "
        f"{esc(block.get('interval'))}.</p>"
        f'<div class="plots">{chart}</div>'
        f"{table(head, rows, numeric=(2, 3, 5, 6, 7, 8))}"
        f"<h3>Paired per sample</h3>{paired}"
        f'<p class="small muted">{esc(block.get("paired_method"))}.</p>'
        "<h3>Per constraint (instruction level, strict)</h3>"
        f"{per_table}"
    )
