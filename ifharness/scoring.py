"""Verdicts and metrics: the scorer.

``judge`` decides every instruction of one answer, strict and loose, with the reference's
rules (shared/specs/ifeval.md §4–5): a blank answer follows nothing; loose tries the
reference's variants in order and stops at the first pass. Because verifiers are
deterministic, loose reuses the strict verdict for variant 1 (the answer itself) instead of
checking it twice. A checker that raises yields ``None`` (unscorable) with the exception text;
it never stops a run.

``summarize`` turns verdict rows into the numbers: every metric of the one table
(``ifharness.metrics``: lm-eval's four names and the compositions), standard errors
(instruction level clustered by prompt), per-constraint and per-family accuracy.
Unscorable instructions are left out of every denominator and counted; a prompt with any
unscorable instruction is left out of the prompt-level denominators.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import NotRequired, TypedDict

from ifharness.verifiers import Profile, Text, get

from . import stats
from .loader import Task
from .metrics import base_metrics, composite_metrics
from .responses import Joined, coerce
from .rundir import RunFolder, VerdictRow

Bound = list[tuple[str, dict[str, Any]]]  # (constraint id, bound kwargs) per instruction
MODES = stats.MODES


class Judgement(TypedDict):
    """What :func:`judge` decides for one answer: a :class:`~ifharness.rundir.VerdictRow`
    without the key and the instruction ids (the same keys, in the same order)."""

    strict: list[bool | None]
    loose: list[bool | None]
    missing: NotRequired[bool]
    unscorable: NotRequired[dict[str, str]]


def _run(
    func: Callable[..., object], t: Text, kwargs: dict[str, Any]
) -> tuple[bool | None, str | None]:
    try:
        return bool(func(t, **kwargs)), None
    except Exception as e:  # noqa: BLE001 - a verifier must never stop a run
        return None, f"{type(e).__name__}: {e}"


def judge(
    instructions: Bound, answer: str | None, profile: Profile, suite: str | None = None
) -> Judgement:
    """Strict and loose verdicts (lists in instruction order) for one answer.

    Ids are looked up in ``suite`` (the task's); without one, a bare id must belong to
    exactly one suite."""
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
        func = get(cid, suite).func
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
    row: Judgement = {"strict": strict, "loose": loose}
    if errors:
        row["unscorable"] = errors
    return row


Chunk = tuple[list[tuple[Bound, str | None]], Profile, str | None]


def _judge_chunk(args: Chunk) -> list[Judgement]:
    items, profile, suite = args
    return [judge(b, a, profile, suite) for b, a in items]


def judge_all(
    bound: Sequence[Bound],
    answers: Sequence[str | None],
    profile: Profile,
    processes: int = 1,
    suite: str | None = None,
) -> list[Judgement]:
    items = list(zip(bound, answers))
    if processes <= 1 or len(items) < 2 * processes:
        return _judge_chunk((items, profile, suite))
    size = math.ceil(len(items) / (processes * 4))
    chunks = [(items[i : i + size], profile, suite) for i in range(0, len(items), size)]
    with ProcessPoolExecutor(processes) as pool:
        return [row for part in pool.map(_judge_chunk, chunks) for row in part]


def verdict_rows(task: Task, joined: Joined, processes: int = 1) -> list[VerdictRow]:
    bound = [[(i.id, i.kwargs) for i in s.instructions] for s in task.samples]
    answers = [
        joined.answers[str(s.key)].text if str(s.key) in joined.answers else None
        for s in task.samples
    ]
    judged = judge_all(bound, answers, task.profile, processes, task.spec.suite)
    return [
        {"key": s.key, "instruction_id_list": s.instruction_ids, **j}
        for s, j in zip(task.samples, judged)
    ]


def summarize(
    rows: Sequence[VerdictRow],
    finish_reasons: Sequence[str | None] = (),
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Metrics of verdict rows (one per prompt, or one per (prompt, sample) with ``sample``).

    With several samples per prompt every count is over rows, each accuracy is the mean over
    samples, standard errors are clustered by prompt, ``n_prompts`` counts distinct prompts
    and ``samples`` holds per-sample-index metrics and their variance. The
    per-constraint/per-family ``*_ci`` are Wilson score intervals on the counts
    (``stats.group_intervals``; ``ci["per_constraint_method"]`` says so) and ``ci`` holds
    seeded percentile-bootstrap intervals resampling prompts (``n_resamples=0`` leaves
    both out).
    """
    table = stats.build_table(rows)
    metrics = _base_metrics(table, one_row_per_prompt=len(table.keys) == len(rows))
    per_constraint = _constraint_counts(rows)
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
    _add_intervals(metrics, rows, table, n_resamples, seed, level)
    return metrics


def _base_metrics(table: stats.Table, one_row_per_prompt: bool) -> dict[str, Any]:
    """Every base metric of the table (``ifharness.metrics``), its standard error and its
    counts. Grouped by mode, each group as values, then standard errors, then counts: the key
    order metrics.json has always had."""
    out: dict[str, Any] = {}
    for mode in MODES:
        group = [b for b in base_metrics() if b.mode == mode]
        counts = {
            b.name: (int(table.num[b.name].sum()), int(table.den[b.name].sum())) for b in group
        }
        for b in group:
            successes, trials = counts[b.name]
            out[b.name] = successes / trials if trials else None
        for b in group:
            clusters = stats.clusters(table, b.name)
            out[f"{b.name}_stderr"] = stats.stderr_of(b.stderr, clusters, one_row_per_prompt)
        for b in group:
            out[f"{b.counts_key}_followed"], out[f"{b.counts_key}_scored"] = counts[b.name]
    return out


def _constraint_counts(rows: Sequence[VerdictRow]) -> dict[str, dict[str, int]]:
    """Per constraint id: ``<mode>_n``, ``<mode>_followed`` and ``<mode>_unscorable``."""
    per_constraint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for mode in MODES:
        for row in rows:
            for cid, v in zip(row["instruction_id_list"], row[mode]):
                counts = per_constraint[cid]
                if v is None:
                    counts[f"{mode}_unscorable"] += 1
                else:
                    counts[f"{mode}_n"] += 1
                    counts[f"{mode}_followed"] += v
    return per_constraint


def _add_intervals(
    metrics: dict[str, Any],
    rows: Sequence[VerdictRow],
    table: stats.Table,
    n_resamples: int,
    seed: int,
    level: float,
) -> None:
    """Repeated-sample statistics, composite metrics and bootstrap intervals (stats.py)."""
    if len(table.keys) < len(rows):  # n>1 samples per prompt: prompts are the clusters
        metrics["n_rows"] = len(rows)
        metrics["n_prompts"] = len(table.keys)
        metrics["samples"] = stats.sample_summary(rows)
    for c in composite_metrics():
        values = [metrics[p] for p in c.parts]
        metrics[c.name] = None if None in values else c.combine(values)
    if n_resamples < 1:
        return
    cis = stats.bootstrap_intervals(table, n_resamples, seed, level)
    metrics["ci"] = {
        "method": "percentile bootstrap, resampling prompts",
        "level": level,
        "n_resamples": n_resamples,
        "seed": seed,
        **cis["metrics"],
        "per_constraint_method": stats.GROUP_INTERVAL_METHOD,
    }
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
    verdicts: list[VerdictRow]
    metrics: dict[str, Any]
    joined: Joined

    def write(self, out: str | Path | RunFolder) -> None:
        """``verdicts.jsonl`` and ``metrics.json`` into a run folder (through its owner)."""
        folder = out if isinstance(out, RunFolder) else RunFolder(out)
        # The one place `score` and `run` write metrics: a generated density set (family
        # "density") adds its per-level accuracy, primacy curve and error taxonomy here.
        from . import density

        if density.is_density_task(self.task):
            self.metrics["density"] = density.for_result(self, folder)
        folder.write_scores(self.verdicts, self.metrics)


def score(
    task: Task,
    responses: Any,
    processes: int = 1,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
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
