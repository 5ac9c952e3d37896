"""Density metrics: how keyword inclusion falls with the number of keywords in one prompt.

A density task (``generated.family == "density"``, written by ``ifharness generate density``)
has one sample per (level N, seed s) holding N ``keywords:include_exact`` instructions in the
order the prompt lists them. After scoring, :func:`compute` turns the verdicts and the answers
into, per level:

* instruction-level accuracy (followed / N, over the level's samples) with a 95% Wilson
  interval. A level's instructions are clustered in few answers, so n is divided by the Kish
  design effect over its samples (``ifharness.stats``), as the per-constraint intervals are;
  with one sample per level the instructions are all there is and n is N. Also the mean and
  standard deviation over seeds of the per-sample accuracy, IFScale's own summary;
* the primacy curve: accuracy by the keyword's position in the list, in deciles (position
  ``i`` of ``N`` falls in decile ``floor(10 i / N)``; with N < 10 some deciles are empty,
  ``null``), and IFScale's "recency ratio": miss rate of the last ``max(1, N // 3)`` keywords
  over that of the first as many, per sample (``null`` when N < 3 or the first bucket has no
  miss), averaged over seeds;
* the error taxonomy of the missed keywords: *omitted* (nothing like the keyword is in the
  answer; a missing answer omits everything) or *modified* (present only in a changed form:
  hyphenated, possessive, with punctuation attached, or inflected by IFScale's prefix rule;
  ``ifharness.verifiers.ifscale.keywords.classify_miss``), as counts, as shares of the
  errors, and the omitted:modified ratio;
* ``flagged``: how many answers IFScale would have rejected and regenerated (a bare list of
  words, under 20 words) or that copy the instruction lines back, so a reader can tell a
  pass by echo from a pass by writing.

Accuracy is strict (the answer as given; IFScale has no loose mode); the loose accuracy per
level is reported next to it. ``ifharness score`` and ``ifharness run`` store the result under
``density`` in ``metrics.json`` (``ScoreResult.write``); the report and the leaderboard
recompute it from the run folder (samples, verdicts, completions), as they do every number.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import stats
from .rundir import row_id

if TYPE_CHECKING:
    from .loader import Task, TaskFile
    from .rundir import RunData, RunFolder, VerdictRow
    from .scoring import ScoreResult

FAMILY = "density"
DECILES = 10
PRIMACY_METHOD = (
    "accuracy by keyword position in the prompt's list, position i of N in decile floor(10 i / N)"
)
RECENCY_METHOD = (
    "IFScale's recency ratio: miss rate of the last max(1, N // 3) keywords over that of the "
    "first as many, per sample, mean over seeds skipping undefined ones (N < 3, no early miss)"
)
TAXONOMY_METHOD = (
    "a missed keyword is 'modified' when the answer holds it hyphenated, possessive, with "
    "punctuation attached, or as a word starting with its first max(3, floor(0.8 len)) "
    "characters (IFScale's rule); otherwise 'omitted'"
)


@dataclass(frozen=True)
class Item:
    """One scored answer of a density sample: its level, keywords in order, verdicts, text."""

    key: str
    level: int
    keywords: list[str]
    strict: list[bool | None]
    loose: list[bool | None]
    answer: str | None


def _family(generated: Any) -> str | None:
    if generated is None:
        return None
    if isinstance(generated, Mapping):
        return generated.get("family")
    return getattr(generated, "family", None)


def is_density_task(task: Task | TaskFile) -> bool:
    """Whether ``task`` is a generated density set (its YAML's ``generated.family``)."""
    return _family(getattr(task.spec, "generated", None)) == FAMILY


def is_density_run(run: RunData) -> bool:
    """Whether a run folder holds a density set: run.json's ``generated`` says so, or (a
    folder whose run.json predates that field) its metrics.json has a ``density`` block."""
    if _family(getattr(run.info, "generated", None)) == FAMILY:
        return True
    return bool((run.metrics or {}).get(FAMILY))


def _keywords(instructions: Sequence[Any]) -> list[str]:
    out = []
    for i in instructions:
        kwargs = i.get("kwargs") if isinstance(i, Mapping) else i.kwargs
        out.append(str((kwargs or {}).get("keyword", "")))
    return out


def _level(sample: Any, n_instructions: int) -> int:
    """The row's ``level`` (``Sample.meta`` / a sample row's ``meta``, where the loader keeps a
    generated row's extra fields), else its number of instructions (the same thing in a set
    written by the generator)."""
    if isinstance(sample, Mapping):
        meta = sample.get("meta") or {}
        value = sample.get("level", meta.get("level"))
    else:
        meta = getattr(sample, "meta", None) or {}
        value = getattr(sample, "level", None) or meta.get("level")
    return int(value) if value is not None else n_instructions


def compute(items: Sequence[Item], rule: str = "word-boundary") -> dict[str, Any]:
    """The ``density`` block of metrics.json from scored items (see the module docstring)."""
    from ifharness.verifiers.ifscale.keywords import MODIFIED_FORMS, classify_miss

    by_level: dict[int, list[Item]] = {}
    for it in items:
        by_level.setdefault(it.level, []).append(it)
    levels = []
    for n in sorted(by_level):
        group = by_level[n]
        followed = np.array([sum(v is True for v in it.strict) for it in group], dtype=float)
        scored = np.array([sum(v is not None for v in it.strict) for it in group], dtype=float)
        total, ok = float(scored.sum()), float(followed.sum())
        acc = ok / total if total else None
        n_eff = total / stats.design_effect(followed, scored) if total else 0.0
        per_seed = [f / s for f, s in zip(followed, scored) if s]
        loose_ok = sum(sum(v is True for v in it.loose) for it in group)
        loose_n = sum(sum(v is not None for v in it.loose) for it in group)
        dec_ok, dec_n = [0] * DECILES, [0] * DECILES
        ratios = []
        errors = {"missed": 0, "omitted": 0, "modified": 0}
        forms = dict.fromkeys(MODIFIED_FORMS, 0)
        for it in group:
            size = len(it.strict)
            for i, v in enumerate(it.strict):
                if v is None:
                    continue
                d = min(DECILES - 1, DECILES * i // size)
                dec_n[d] += 1
                dec_ok[d] += bool(v)
                if not v:
                    errors["missed"] += 1
                    kind, form = (
                        ("omitted", None)
                        if it.answer is None
                        else classify_miss(it.keywords[i], it.answer)
                    )
                    errors[kind] += 1
                    if form is not None:
                        forms[form] += 1
            ratios.append(_recency_ratio(it.strict))
        defined = [r for r in ratios if r is not None]
        missed = errors["missed"]
        levels.append(
            {
                "level": n,
                "n_samples": len(group),
                "n_instructions": int(total),
                "followed": int(ok),
                "accuracy": acc,
                "ci": stats.wilson_interval(acc * n_eff, n_eff) if acc is not None else None,
                "seed_mean": statistics.fmean(per_seed) if per_seed else None,
                "seed_std": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                "loose_accuracy": loose_ok / loose_n if loose_n else None,
                "unscorable": sum(v is None for it in group for v in it.strict),
                "missing_answers": sum(it.answer is None for it in group),
                "flagged": _flags(group),
                "primacy": [
                    {
                        "decile": d,
                        "n": dec_n[d],
                        "followed": dec_ok[d],
                        "accuracy": dec_ok[d] / dec_n[d] if dec_n[d] else None,
                    }
                    for d in range(DECILES)
                ],
                "recency_ratio": statistics.fmean(defined) if defined else None,
                "errors": {
                    **errors,
                    "omitted_share": errors["omitted"] / missed if missed else 0.0,
                    "modified_share": errors["modified"] / missed if missed else 0.0,
                    "omitted_to_modified": (
                        errors["omitted"] / errors["modified"] if errors["modified"] else None
                    ),
                    "modified_forms": forms,
                },
            }
        )
    return {
        "rule": rule,
        "mode": "strict",
        "interval": "95% Wilson score interval, n divided by the Kish design effect over samples",
        "primacy_method": PRIMACY_METHOD,
        "recency_method": RECENCY_METHOD,
        "taxonomy_method": TAXONOMY_METHOD,
        "levels": levels,
    }


def _flags(group: Sequence[Item]) -> dict[str, int]:
    """Answers IFScale would have rejected and asked again for (it retries up to 10 times; a
    harness scoring fixed answers can only count them): a "cheating list" (at least 10
    comma-separated parts, all alphabetic), under 20 whitespace words; and answers that copy
    the instruction lines back (``Include the exact word``), where a pass is an echo."""
    out = {"keyword_list": 0, "under_20_words": 0, "echoed_instructions": 0}
    for it in group:
        if it.answer is None:
            continue
        parts = [p.strip() for p in it.answer.split(",")]
        out["keyword_list"] += len(parts) >= 10 and all(p.isalpha() for p in parts)
        out["under_20_words"] += len(it.answer.split()) < 20
        out["echoed_instructions"] += "include the exact word" in it.answer.lower()
    return out


def _recency_ratio(verdicts: Sequence[bool | None]) -> float | None:
    n = len(verdicts)
    if n < 3:
        return None
    b = max(1, n // 3)

    def miss_rate(part: Sequence[bool | None]) -> float | None:
        scored = [v for v in part if v is not None]
        return sum(not v for v in scored) / len(scored) if scored else None

    first, last = miss_rate(verdicts[:b]), miss_rate(verdicts[-b:])
    if not first or last is None:
        return None
    return last / first


def _rule(profile_flags: Sequence[str] | frozenset[str]) -> str:
    from ifharness.verifiers.ifscale import TOKEN_RULE

    return (
        "token (IFScale runner, rule a)"
        if TOKEN_RULE in profile_flags
        else ("word-boundary (IFScale analysis, rule b)")
    )


def items_of(
    samples: Sequence[tuple[str, Any, Sequence[Any]]],
    verdicts: Sequence[VerdictRow],
    answers: Mapping[tuple[str, int], str | None],
) -> list[Item]:
    """Items from ``(key, sample-or-row, instructions)`` triples, verdict rows and answers by
    (key, sample index)."""
    by_key = {k: (s, ins) for k, s, ins in samples}
    out = []
    for row in verdicts:
        key, idx = row_id(row)
        sample, instructions = by_key.get(key, (None, []))
        keywords = _keywords(instructions)
        out.append(
            Item(
                key=key,
                level=_level(sample or {}, len(row["strict"])),
                keywords=keywords,
                strict=list(row["strict"]),
                loose=list(row["loose"]),
                answer=None if row.get("missing") else answers.get((key, idx)),
            )
        )
    return out


def for_result(result: ScoreResult, folder: RunFolder | None = None) -> dict[str, Any]:
    """The ``density`` block of a scored density task (the scorer's hook calls this).

    Answers of sample 0 come from the result; with several samples per prompt the others are
    read from the folder's ``completions.jsonl``, already written when scores are."""
    task = result.task
    answers: dict[tuple[str, int], str | None] = {
        (str(k), 0): a.text for k, a in result.joined.answers.items()
    }
    if folder is not None and any(int(r.get("sample", 0)) for r in result.verdicts):
        for r in folder.read_completions():
            answers[row_id(r)] = r["response"]
    samples = [(str(s.key), s, s.instructions) for s in task.samples]
    return compute(items_of(samples, result.verdicts, answers), _rule(task.profile.flags))


def for_run(run: RunData) -> dict[str, Any] | None:
    """The ``density`` block recomputed from a run folder; ``None`` unless it is a density
    run or the folder lacks the samples (then the stored block, if any)."""
    if not is_density_run(run):
        return None
    rows = run.folder.read_samples()
    if not rows:
        return (run.metrics or {}).get(FAMILY)
    samples = [(k, r, r["instructions"]) for k, r in rows.items()]
    answers = {k: c["response"] for k, c in run.completions.items()}
    return compute(items_of(samples, run.verdicts, answers), _rule(run.info.profile.flags))


def curve(block: Mapping[str, Any] | None) -> list[tuple[int, float | None, Any]]:
    """``(level, accuracy, ci)`` points of a density block, for plots."""
    if not block:
        return []
    return [(lv["level"], lv["accuracy"], lv.get("ci")) for lv in block.get("levels", [])]
