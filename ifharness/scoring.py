"""Verdicts and metrics: the scorer.

``judge`` decides every instruction of one answer, strict and loose, with the reference's
rules (shared/specs/ifeval.md §4–5): a blank answer follows nothing; loose tries the
reference's variants in order and stops at the first pass. Because verifiers are
deterministic, loose reuses the strict verdict for variant 1 (the answer itself) instead of
checking it twice. A checker that raises yields ``None`` (unscorable) with the exception text;
it never stops a run.

``summarize`` turns verdict rows into the numbers: lm-eval's four metric names, standard
errors (instruction level clustered by prompt), per-constraint and per-family accuracy.
Unscorable instructions are left out of every denominator and counted; a prompt with any
unscorable instruction is left out of the prompt-level denominators.
"""

from __future__ import annotations

import math
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ifharness.verifiers import Profile, Text, get

from . import stats
from .files import atomic_write_json, atomic_write_jsonl
from .responses import Joined, coerce
from .loader import Task

Bound = list[tuple[str, dict[str, Any]]]  # (constraint id, bound kwargs) per instruction
MODES = stats.MODES


def _run(func, t: Text, kwargs: dict[str, Any]) -> tuple[bool | None, str | None]:
    try:
        return bool(func(t, **kwargs)), None
    except Exception as e:  # noqa: BLE001 - a verifier must never stop a run
        return None, f"{type(e).__name__}: {e}"


def judge(instructions: Bound, answer: str | None, profile: Profile) -> dict[str, Any]:
    """Strict and loose verdicts (lists in instruction order) for one answer."""
    n = len(instructions)
    if answer is None:
        return {"strict": [False] * n, "loose": [False] * n, "missing": True}
    t = Text(answer, profile)
    strict: list[bool | None] = []
    loose: list[bool | None] = []
    errors: dict[str, str] = {}
    for index, (cid, kwargs) in enumerate(instructions):
        if t.is_blank:
            strict.append(False)
            loose.append(False)
            continue
        func = get(cid).func
        verdict, error = _run(func, t, kwargs)
        strict.append(verdict)
        if verdict:
            loose.append(True)
            continue
        loose_verdict: bool | None = None if error else False
        for variant in t.loose_variants:
            v, e = _run(func, variant, kwargs)
            if v:
                loose_verdict = True
                break
            if e:
                error, loose_verdict = error or e, None
        loose.append(loose_verdict)
        if error and (verdict is None or loose_verdict is None):
            errors[str(index)] = error
    row: dict[str, Any] = {"strict": strict, "loose": loose}
    if errors:
        row["unscorable"] = errors
    return row


def _judge_chunk(args: tuple[list[tuple[Bound, str | None]], Profile]) -> list[dict[str, Any]]:
    items, profile = args
    return [judge(b, a, profile) for b, a in items]


def judge_all(
    bound: Sequence[Bound], answers: Sequence[str | None], profile: Profile, processes: int = 1
) -> list[dict[str, Any]]:
    items = list(zip(bound, answers))
    if processes <= 1 or len(items) < 2 * processes:
        return _judge_chunk((items, profile))
    size = math.ceil(len(items) / (processes * 4))
    chunks = [(items[i:i + size], profile) for i in range(0, len(items), size)]
    with ProcessPoolExecutor(processes) as pool:
        return [row for part in pool.map(_judge_chunk, chunks) for row in part]


def verdict_rows(task: Task, joined: Joined, processes: int = 1) -> list[dict[str, Any]]:
    bound = [[(i.id, i.kwargs) for i in s.instructions] for s in task.samples]
    answers = [
        joined.answers[str(s.key)].text if str(s.key) in joined.answers else None
        for s in task.samples
    ]
    judged = judge_all(bound, answers, task.profile, processes)
    return [
        {"key": s.key, "instruction_id_list": s.instruction_ids, **j}
        for s, j in zip(task.samples, judged)
    ]


def summarize(
    rows: list[dict[str, Any]], finish_reasons: Sequence[str | None] = (),
    n_resamples: int = stats.DEFAULT_RESAMPLES, seed: int = stats.DEFAULT_SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Metrics of verdict rows (one per prompt, or one per (prompt, sample) with ``sample``).

    With several samples per prompt every count is over rows, each accuracy is the mean over
    samples, standard errors are clustered by prompt, ``n_prompts`` counts distinct prompts
    and ``samples`` holds per-sample-index metrics and their variance. ``ci`` and the
    per-constraint/per-family ``*_ci`` are seeded percentile-bootstrap intervals resampling
    prompts (``n_resamples=0`` leaves them out).
    """
    metrics: dict[str, Any] = {}
    per_constraint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for mode in MODES:
        prompts_scored = prompts_passed = 0
        clusters: list[tuple[int, int]] = []
        for row in rows:
            verdicts = row[mode]
            known = [v for v in verdicts if v is not None]
            clusters.append((sum(known), len(known)))
            if len(known) == len(verdicts):
                prompts_scored += 1
                prompts_passed += all(known)
            for cid, v in zip(row["instruction_id_list"], verdicts):
                counts = per_constraint[cid]
                if v is None:
                    counts[f"{mode}_unscorable"] += 1
                else:
                    counts[f"{mode}_n"] += 1
                    counts[f"{mode}_followed"] += v
        followed = sum(y for y, _ in clusters)
        scored = sum(m for _, m in clusters)
        metrics[f"prompt_level_{mode}_acc"] = prompts_passed / prompts_scored if prompts_scored else None
        metrics[f"inst_level_{mode}_acc"] = followed / scored if scored else None
        metrics[f"prompt_level_{mode}_acc_stderr"] = stats.stderr_mean(prompts_passed, prompts_scored)
        metrics[f"inst_level_{mode}_acc_stderr"] = stats.stderr_clustered(clusters)
        metrics[f"prompts_{mode}_followed"] = prompts_passed
        metrics[f"prompts_{mode}_scored"] = prompts_scored
        metrics[f"instructions_{mode}_followed"] = followed
        metrics[f"instructions_{mode}_scored"] = scored
    metrics["n_prompts"] = len(rows)
    metrics["n_instructions"] = sum(len(r["instruction_id_list"]) for r in rows)
    metrics["missing_responses"] = sum(1 for r in rows if r.get("missing"))
    metrics["unscorable_instructions"] = sum(
        1 for r in rows for s, lo in zip(r["strict"], r["loose"]) if s is None or lo is None
    )
    reasons = [f for f in finish_reasons if f is not None]
    metrics["truncation_rate"] = (
        sum(f == "length" for f in reasons) / len(reasons) if reasons else None
    )
    metrics["per_constraint"] = {cid: _rates(c) for cid, c in sorted(per_constraint.items())}
    families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, c in per_constraint.items():
        for k, v in c.items():
            families[cid.split(":", 1)[0]][k] += v
    metrics["per_family"] = {f: _rates(c) for f, c in sorted(families.items())}
    _add_intervals(metrics, rows, n_resamples, seed, level)
    return metrics


def _add_intervals(
    metrics: dict[str, Any], rows: list[dict[str, Any]], n_resamples: int, seed: int, level: float
) -> None:
    """Composite metrics, repeated-sample statistics and bootstrap intervals (stats.py)."""
    table = stats.build_table(rows)
    if len(table.keys) < len(rows):  # n>1 samples per prompt: prompts are the clusters
        for mode in MODES:
            for lv in ("prompt", "inst"):
                clusters = list(zip(table.num[lv, mode].tolist(), table.den[lv, mode].tolist()))
                metrics[f"{lv}_level_{mode}_acc_stderr"] = stats.stderr_clustered(clusters)
        metrics["n_rows"] = len(rows)
        metrics["n_prompts"] = len(table.keys)
        metrics["samples"] = stats.sample_summary(rows)
    for name, parts in stats.COMPOSITE_METRICS.items():
        values = [metrics[p] for p in parts]
        metrics[name] = None if None in values else sum(values) / len(values)
    if n_resamples < 1:
        return
    cis = stats.bootstrap_intervals(table, n_resamples, seed, level)
    metrics["ci"] = {"method": "percentile bootstrap, resampling prompts", "level": level,
                     "n_resamples": n_resamples, "seed": seed, **cis["metrics"]}
    for kind, key in (("constraint", "per_constraint"), ("family", "per_family")):
        for gid, entry in metrics[key].items():
            for mode in MODES:
                entry[f"{mode}_ci"] = cis[kind].get(gid, {}).get(mode)


def _rates(c: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": c["strict_n"] + c["strict_unscorable"]}
    for mode in MODES:
        n = c[f"{mode}_n"]
        out[f"{mode}_acc"] = c[f"{mode}_followed"] / n if n else None
        out[f"{mode}_followed"] = c[f"{mode}_followed"]
    if c["strict_unscorable"] or c["loose_unscorable"]:
        out["unscorable"] = max(c["strict_unscorable"], c["loose_unscorable"])
    return out


@dataclass
class ScoreResult:
    task: Task
    verdicts: list[dict[str, Any]]
    metrics: dict[str, Any]
    joined: Joined

    def write(self, out: str | Path) -> None:
        out = Path(out)
        atomic_write_jsonl(out / "verdicts.jsonl", self.verdicts)
        atomic_write_json(out / "metrics.json", self.metrics)


def score(
    task: Task, responses: Any, processes: int = 1, n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> ScoreResult:
    """Score ``responses`` (a JSONL path, ``{key: text}``, or rows) against ``task``.

    A prompt with no answer is scored as not followed and listed in ``metrics["missing"]``.
    ``n_resamples=0`` skips the bootstrap intervals (the rest of the metrics are unchanged):
    what a reward loop that only needs verdicts and accuracies wants.
    """
    joined = coerce(task.samples, responses)
    rows = verdict_rows(task, joined, processes)
    finish = [
        joined.answers[str(s.key)].finish_reason if str(s.key) in joined.answers else None
        for s in task.samples
    ]
    metrics = summarize(rows, finish, n_resamples=n_resamples, seed=seed)
    metrics["missing"] = joined.missing
    return ScoreResult(task, rows, metrics, joined)
