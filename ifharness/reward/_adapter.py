"""What the trainer adapters share: their settings and one lazily started pool per setting.

Every adapter (:mod:`.trl`, :mod:`.verl`, :mod:`.openrlhf`, :mod:`.open_instruct`) is a thin
map from a framework's call to :func:`ifharness.reward.reward_batch`. The pool behind it is
started on the first call (not at import, not when a trainer pickles the reward function),
shared by every adapter with the same ``(workers, timeout_s, max_chars)``, and closed at
interpreter exit; a forked child forgets its parent's pools and starts its own.

Called off the main thread (OpenRLHF's ``asyncio.to_thread``, verl's and open-instruct's
``run_in_executor``), even a one-answer batch goes to the pool: there the soft ``SIGALRM``
bound of in-process scoring cannot be armed, and only a worker can be killed when a check
hangs. On the main thread small batches are scored in-process, as the pool decides.

Absolute imports only: verl and OpenRLHF load the adapter modules from a file path.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ifharness.reward import (
    DEFAULT_MAX_CHARS,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WORKERS,
    ConstraintsLike,
    RewardPool,
    RewardResult,
    reward_batch,
)
from ifharness.reward.core import check_options, check_timeout

PoolKey = tuple[int, "float | None", "int | None", bool]

_POOLS: dict[PoolKey, RewardPool] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """How an adapter scores: :func:`ifharness.reward.reward_batch`'s options, checked once."""

    suite: str | None = None
    mode: str = "strict"
    reduce: str = "fraction"
    reasoning: str = "think"
    workers: int | None = None  # None: ifharness.reward.DEFAULT_WORKERS; 0: in this process
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    max_chars: int | None = DEFAULT_MAX_CHARS
    over_budget_score: float = 0.0
    profile: str = "reference"

    def __post_init__(self) -> None:
        check_options(self.mode, self.reduce, self.reasoning)
        check_timeout(self.timeout_s)
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: in this process), got {self.workers!r}")

    def updated(self, **changes: Any) -> Settings:
        """A copy with the given options changed (None values are left as they are)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    @property
    def n_workers(self) -> int:
        return DEFAULT_WORKERS if self.workers is None else self.workers


def shared_pool(settings: Settings) -> RewardPool:
    """The pool for these settings, started on first use and kept until exit."""
    inline = threading.current_thread() is threading.main_thread()
    key: PoolKey = (settings.n_workers, settings.timeout_s, settings.max_chars, inline)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool.closed:
            workers, timeout_s, max_chars, _ = key
            extra: dict[str, Any] = {} if inline else {"inline_below": 0}
            pool = _POOLS[key] = RewardPool(
                workers=workers, timeout_s=timeout_s, max_chars=max_chars, **extra
            )
        return pool


def close_pools() -> None:
    """Close every adapter pool (registered with :mod:`atexit`; safe to call twice)."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _forget_in_child() -> None:  # the parent's worker processes are not the child's
    global _LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()


atexit.register(close_pools)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def score(
    responses: Sequence[str], constraints: Sequence[ConstraintsLike], settings: Settings
) -> list[RewardResult]:
    """One :func:`reward_batch` call over the shared pool; one constraints value per response."""
    if not responses:
        return []
    return reward_batch(
        list(responses),
        list(constraints),
        suite=settings.suite,
        mode=settings.mode,
        reduce=settings.reduce,
        workers=settings.n_workers,
        timeout_s=settings.timeout_s,
        max_chars=settings.max_chars,
        over_budget_score=settings.over_budget_score,
        reasoning=settings.reasoning,
        profile=settings.profile,
        pool=shared_pool(settings),
    )


def summary(result: RewardResult) -> dict[str, Any]:
    """Flat, per-sample numbers every trainer can log (same keys for every sample)."""
    followed = sum(1 for v in result.verdicts if v.followed is True)
    return {
        "score": float(result.score),
        "followed_all": float(result.followed_all),
        "num_constraints": len(result.verdicts),
        "num_followed": followed,
        "over_budget": float(result.over_budget),
        "empty_answer": float(result.empty_answer),
        "unterminated_reasoning": float(result.unterminated_reasoning),
    }
