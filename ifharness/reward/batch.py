"""One batch of rewards: its constraints resolved per response, its options checked, and
(:class:`Batch`) its results as they come back from the pool's workers.

Split from :mod:`.pool` so that the pool module is the pool: workers, the dispatcher thread
that feeds them, and the budget. Both the pool and the in-process path start here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .core import (
    ID_KEYS,
    ConstraintsError,
    ConstraintsLike,
    Resolved,
    RewardResult,
    SoftTimer,
    check_options,
    check_timeout,
    constraints_key,
    resolve,
    score_answer,
)

# (suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s)
Options = tuple[str | None, str, str, str, "int | None", float, str, "float | None"]


def per_response(responses: Sequence[str], constraints: Any) -> list[ConstraintsLike]:
    """One constraints value per response: ``constraints`` itself when it is a single value
    (a string, a dict, a list of ``{"id"}`` dicts or ``(id, kwargs)`` pairs), else its items."""
    if is_single(constraints):
        return [constraints] * len(responses)
    if len(constraints) != len(responses):
        raise ConstraintsError(
            f"{len(responses)} responses but {len(constraints)} constraints: give one per "
            "response, or a single one for all"
        )
    return list(constraints)


def is_single(constraints: Any) -> bool:
    if not isinstance(constraints, (list, tuple)) or not constraints:
        return True
    first = constraints[0]
    if isinstance(first, dict):
        return "id" in first and not any(k in first for k in ID_KEYS)
    return (
        isinstance(first, (list, tuple))
        and len(first) == 2
        and isinstance(first[0], str)
        and (first[1] is None or isinstance(first[1], dict))
    )


def prepare(
    responses: Sequence[str], constraints: Any, suite: str | None, profile: str
) -> tuple[list[str], list[Resolved]]:
    keys, resolved = [], []
    for n, c in enumerate(per_response(responses, constraints)):
        if not isinstance(responses[n], str):
            raise TypeError(f"response {n} must be a str, got {type(responses[n]).__name__}")
        try:
            key = constraints_key(c)
            resolved.append(resolve(key, suite, profile))
        except ConstraintsError as e:
            raise ConstraintsError(f"response {n}: {e}") from None
        keys.append(key)
    return keys, resolved


def options(
    suite: str | None,
    mode: str,
    reduce: str,
    reasoning: str,
    max_chars: int | None,
    over_budget_score: float,
    profile: str,
    timeout_s: float | None,
) -> Options:
    """The options of one batch, checked (what every worker receives with each chunk)."""
    check_options(mode, reduce, reasoning)
    check_timeout(timeout_s)
    return (suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s)


def score_inline(texts: Sequence[str], resolved: Sequence[Resolved], opts: Options) -> list:
    suite, mode, reduce, reasoning, max_chars, obs, profile, timeout_s = opts
    timer = SoftTimer(timeout_s) if timeout_s else None
    return [
        score_answer(text, res, mode, reduce, reasoning, max_chars, obs, profile, timer)
        for text, res in zip(texts, resolved)
    ]


@dataclass(eq=False)
class Batch:
    """One ``reward_batch`` call in flight: its inputs, its results so far, who waits."""

    responses: Sequence[str]
    keys: list[str]
    resolved: list[Resolved]
    opts: Options
    results: list[RewardResult | None]
    remaining: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def settle(self, i: int, result: RewardResult) -> None:
        if self.results[i] is None:
            self.results[i] = result
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.done.set()
