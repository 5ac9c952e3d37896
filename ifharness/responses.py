"""Answers to score, and how they are joined to a task's prompts.

Join rule (DESIGN: by ``key`` when available, else by exact prompt text): a response row with
a ``key`` that names a sample is joined by key; otherwise by the exact prompt string, then
by the stripped prompt (the IFBench reference's fallback). On duplicates the last row wins,
as in the reference, and the duplicate is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .files import read_jsonl, read_jsonl_offsets
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
    return [(line, _checked(path, line, row)) for line, row in read_jsonl(path, "response file")]


def _checked(path: str | Path, line: int, row: dict[str, Any]) -> dict[str, Any]:
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
    return row


@dataclass
class AnswerIndex:
    """Where the answer of each prompt (and sample) lies in a response file: the byte offset
    of its line, found in one pass that keeps no answer text. The streaming scorer reads
    the answers back chunk by chunk (:meth:`read`), so a million answers are never in memory
    at once. The join is :func:`join`'s (by key, else exact then stripped prompt; the later
    of two rows wins and is reported); ``joined`` holds its report with no answers in it.

    ``offsets[slot, i]`` is sample ``i``'s line (-1: none), one slot per distinct
    ``str(key)``; ``slot[j]`` is sample ``j``'s slot.
    """

    path: Path
    offsets: np.ndarray
    slot: np.ndarray
    joined: Joined

    def read(self, positions: Sequence[int], sample: int = 0) -> list[Answer | None]:
        """The answers (sample ``sample``) of the task's samples at ``positions``."""
        return read_at(self.path, self.offsets[self.slot[np.asarray(positions, np.int_)], sample])


class Misread(Exception):
    """A line read back is not the row its index meant (:func:`read_at`'s ``accept``)."""


def read_at(
    path: Path,
    where: np.ndarray,
    accept: Callable[[int, dict[str, Any]], bool] | None = None,
) -> list[Answer | None]:
    """The answers on the lines starting at byte offsets ``where`` (-1: none) of a file that
    :func:`index_answers` indexed (so every line there is a checked row). ``accept(i, row)``
    says whether the row read for position ``i`` is the one meant (else :class:`Misread`)."""
    out: list[Answer | None] = [None] * len(where)
    with path.open("rb") as f:
        for at in np.argsort(where, kind="stable").tolist():  # read in file order
            offset = int(where[at])
            if offset < 0:
                continue
            f.seek(offset)
            row = json.loads(f.readline().decode("utf-8"))
            if accept is not None and not accept(at, row):
                raise Misread(f"{path} at byte {offset}")
            out[at] = Answer(row["response"], row.get("reasoning"), row.get("finish_reason"))
    return out


def index_answers(
    samples: Sequence[Sample], path: str | Path, n: int = 1, by_sample: bool = False
) -> AnswerIndex:
    """Index a response file (or ``completions.jsonl``) for :class:`AnswerIndex`.

    ``by_sample``: rows are joined per sample index (their ``sample``, 0 when absent; rows
    outside ``0..n-1`` are ignored), as ``ifharness run`` scores ``n > 1`` samples. Without
    it every row is an answer of sample 0, as :func:`join` takes them."""
    path = Path(path)
    slot_of: dict[str, int] = {}
    slot = np.zeros(len(samples), dtype=np.int_)
    for j, s in enumerate(samples):
        slot[j] = slot_of.setdefault(str(s.key), len(slot_of))
    offsets = np.full((len(slot_of), n), -1, dtype=np.int64)
    lines = np.zeros((len(slot_of), n), dtype=np.int64)
    by_prompt: dict[str, str] | None = None
    by_stripped: dict[str, str] = {}
    out = Joined(answers={})
    for line, offset, row in read_jsonl_offsets(path, "response file"):
        _checked(path, line, row)
        i = int(row.get("sample", 0) or 0) if by_sample else 0
        if not 0 <= i < n:
            continue
        k = str(row["key"]) if "key" in row and str(row["key"]) in slot_of else None
        if k is None and isinstance(row.get("prompt"), str):
            if by_prompt is None:  # built on first need: most files join by key
                by_prompt = {}
                for s in samples:
                    by_prompt.setdefault(s.prompt, str(s.key))
                    by_stripped.setdefault(s.prompt.strip(), str(s.key))
            p = row["prompt"]
            k = by_prompt.get(p) or by_stripped.get(p.strip())
        if k is None:
            out.unmatched += 1
            continue
        at = slot_of[k]
        if offsets[at, i] >= 0:
            out.duplicates.append(
                f"key {k}: lines {int(lines[at, i])} and {line} (the later one is used)"
            )
        offsets[at, i], lines[at, i] = offset, line
    out.missing = [s.key for s, at in zip(samples, slot.tolist()) if offsets[at, 0] < 0]
    return AnswerIndex(path, offsets, slot, out)


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
