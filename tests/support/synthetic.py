"""Seeded synthetic run folders for the stats, gate, report and leaderboard tests.

Each prompt carries 1-3 constraints and a latent difficulty; an instruction is followed with
a probability that depends on the prompt, so instructions of one prompt are correlated, as
they are in real runs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CONSTRAINTS = [
    "punctuation:no_comma",
    "length_constraints:number_words",
    "change_case:english_lowercase",
    "detectable_format:title",
    "keywords:existence",
    "startend:quotation",
    "detectable_format:json_format",
    "keywords:frequency",
]


def make_rows(n: int = 541, seed: int = 0, samples: int = 1) -> list[dict[str, Any]]:
    """Verdict rows (strict and loose) for ``n`` prompts, ``samples`` rows each when > 1."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ids = rng.sample(CONSTRAINTS, rng.choice([1, 1, 2, 2, 3]))
        ease = rng.betavariate(6, 1.3)  # mean pass rate per instruction about 0.82
        for s in range(samples):
            strict = [rng.random() < ease for _ in ids]
            loose = [v or rng.random() < 0.3 for v in strict]
            row = {"key": 1000 + i, "instruction_id_list": ids, "strict": strict, "loose": loose}
            if samples > 1:
                row["sample"] = s
            row["_ease"] = ease
            rows.append(row)
    return rows


def noisy_copy(rows: list[dict[str, Any]], seed: int, rate: float = 0.06) -> list[dict[str, Any]]:
    """Same model, new draws: each instruction is re-drawn from its own pass rate with
    probability ``rate`` (no change in expectation)."""
    rng = random.Random(seed)
    out = []
    for r in rows:
        strict, loose = list(r["strict"]), list(r["loose"])
        for j in range(len(strict)):
            if rng.random() < rate:
                strict[j] = rng.random() < r["_ease"]
                loose[j] = strict[j] or rng.random() < 0.3
        out.append({**r, "strict": strict, "loose": loose})
    return out


def plant_drop(rows: list[dict[str, Any]], points: float, seed: int) -> list[dict[str, Any]]:
    """Fail ``points`` percent of all prompts that passed (strict and loose): a real drop."""
    rng = random.Random(seed)
    out = [dict(r, strict=list(r["strict"]), loose=list(r["loose"])) for r in rows]
    passing = [i for i, r in enumerate(out) if all(r["strict"])]
    for i in rng.sample(passing, round(len(out) * points / 100)):
        j = rng.randrange(len(out[i]["strict"]))
        out[i]["strict"][j] = out[i]["loose"][j] = False
    return out


def clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def write_run(
    path: Path,
    rows: list[dict[str, Any]],
    task: str = "synthetic",
    dataset_hash: str = "f" * 64,
    model: str | None = None,
    completions: list[dict[str, Any]] | None = None,
    **run_fields: Any,
) -> Path:
    """A run folder written through its owner (``ifharness.rundir``), as the stages write it."""
    from ifharness.rundir import RunFolder, RunInfo

    folder = RunFolder(path)
    path.mkdir(parents=True, exist_ok=True)
    keys = {str(r["key"]) for r in rows}
    info = RunInfo(
        kind="run" if completions else "score",
        task=task,
        suite="ifeval",
        data=f"{task}:{task}.jsonl",
        dataset_hash=dataset_hash,
        n_samples=len(keys),
        metric=run_fields.pop("metric", "prompt_level_strict_acc"),
        profile={"name": "reference", "flags": []},
        versions={"ifharness": "0.1.0"},
        model={"name": model} if model else None,
        **run_fields,
    )
    folder.write_run(info)
    (path / "verdicts.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in clean(rows)), encoding="utf-8"
    )
    if completions is not None:
        folder.write_completions(
            [
                {"sample": 0, "reasoning": None, "finish_reason": None, "n_tokens": None, **c}
                for c in completions
            ]
        )
    return path
