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

from .files import atomic_write_json, atomic_write_jsonl
from .responses import Joined, coerce
from .loader import Task

Bound = list[tuple[str, dict[str, Any]]]  # (constraint id, bound kwargs) per instruction
MODES = ("strict", "loose")


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


def _stderr_mean(passed: int, n: int) -> float | None:
    if n < 2:
        return None
    p = passed / n
    return math.sqrt(p * (1 - p) / (n - 1))


def _stderr_clustered(clusters: list[tuple[int, int]]) -> float | None:
    """SE of a ratio of sums (followed / instructions) with prompts as clusters."""
    g = len(clusters)
    total = sum(m for _, m in clusters)
    if g < 2 or total == 0:
        return None
    p = sum(y for y, _ in clusters) / total
    s = sum((y - p * m) ** 2 for y, m in clusters)
    return math.sqrt(g / (g - 1) * s) / total


def summarize(rows: list[dict[str, Any]], finish_reasons: Sequence[str | None] = ()) -> dict[str, Any]:
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
        metrics[f"prompt_level_{mode}_acc_stderr"] = _stderr_mean(prompts_passed, prompts_scored)
        metrics[f"inst_level_{mode}_acc_stderr"] = _stderr_clustered(clusters)
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
    return metrics


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


def score(task: Task, responses: Any, processes: int = 1) -> ScoreResult:
    """Score ``responses`` (a JSONL path, ``{key: text}``, or rows) against ``task``.

    A prompt with no answer is scored as not followed and listed in ``metrics["missing"]``.
    """
    joined = coerce(task.samples, responses)
    rows = verdict_rows(task, joined, processes)
    finish = [
        joined.answers[str(s.key)].finish_reason if str(s.key) in joined.answers else None
        for s in task.samples
    ]
    metrics = summarize(rows, finish)
    metrics["missing"] = joined.missing
    return ScoreResult(task, rows, metrics, joined)
