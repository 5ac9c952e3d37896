"""Answers to score, and how they are joined to a task's prompts.

Join rule (DESIGN: by ``key`` when available, else by exact prompt text): a response row with
a ``key`` that names a sample is joined by key; otherwise by the exact prompt string, then
by the stripped prompt (the IFBench reference's fallback). On duplicates the last row wins,
as in the reference, and the duplicate is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .files import read_jsonl
from .schema import Sample


@dataclass
class Answer:
    text: str
    reasoning: str | None = None
    finish_reason: str | None = None


@dataclass
class Joined:
    answers: dict[str, Answer]  # by str(sample key)
    missing: list[Any] = field(default_factory=list)  # sample keys with no answer
    unmatched: int = 0  # response rows that named no sample
    duplicates: list[str] = field(default_factory=list)


def read_responses(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a response JSONL: each needs ``response`` (a string) and ``key`` or ``prompt``.

    ``reasoning`` (optional, a string or null) is the model's trace, kept apart from the
    answer: what a ``check: reasoning`` or ``check: both`` task checks. A row without it has
    no trace (such a task counts it in ``missing_trace`` and fails its trace verdicts)."""
    rows = []
    for line, row in read_jsonl(path, what="response file"):
        text = row.get("response")
        if not isinstance(text, str):
            got = "missing" if "response" not in row else f"a {type(text).__name__}"
            raise DataError(f"{path}:{line}: field 'response' must be a string, got {got}")
        trace = row.get("reasoning")
        if trace is not None and not isinstance(trace, str):
            raise DataError(
                f"{path}:{line}: field 'reasoning' must be a string or null (the model's "
                f"reasoning trace), got a {type(trace).__name__}"
            )
        if "key" not in row and not isinstance(row.get("prompt"), str):
            raise DataError(f"{path}:{line}: needs a 'key' or a 'prompt' to join on")
        rows.append((line, row))
    return rows


def join(samples: list[Sample], rows: Iterable[tuple[int | None, Mapping[str, Any]]]) -> Joined:
    by_key = {str(s.key): s for s in samples}
    by_prompt: dict[str, str] = {}
    by_stripped: dict[str, str] = {}
    for s in samples:
        by_prompt.setdefault(s.prompt, str(s.key))
        by_stripped.setdefault(s.prompt.strip(), str(s.key))
    out = Joined(answers={})
    where: dict[str, Any] = {}
    for line, row in rows:
        k = str(row["key"]) if "key" in row and str(row["key"]) in by_key else None
        if k is None and isinstance(row.get("prompt"), str):
            p = row["prompt"]
            k = by_prompt.get(p) or by_stripped.get(p.strip())
        if k is None:
            out.unmatched += 1
            continue
        if k in out.answers:
            out.duplicates.append(f"key {k}: lines {where[k]} and {line} (the later one is used)")
        where[k] = line
        out.answers[k] = Answer(row["response"], row.get("reasoning"), row.get("finish_reason"))
    out.missing = [s.key for s in samples if str(s.key) not in out.answers]
    return out


def coerce(samples: list[Sample], responses: Any) -> Joined:
    """Accept what Python callers have: a path, a ``{key: text}`` mapping, or rows."""
    if isinstance(responses, (str, Path)):
        return join(samples, read_responses(responses))
    if isinstance(responses, Mapping):
        rows = [(None, {"key": k, "response": v}) for k, v in responses.items()]
        return join(samples, rows)
    rows = []
    for i, r in enumerate(responses):
        if isinstance(r, str):
            r = {"key": samples[i].key, "response": r}
        rows.append((None, r))
    return join(samples, rows)
