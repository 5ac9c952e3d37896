"""``ifharness.reward``: instruction-following rewards for RL trainers.

The reward face of the harness (DESIGN.md): a response and its constraints in, a score out.
It never touches a run folder.

>>> from ifharness.reward import reward
>>> reward("no commas here", [{"id": "punctuation:no_comma", "kwargs": {}}]).score
1.0

* :func:`reward` scores one response in this process (:mod:`.core` documents the
  constraints forms, the binding, the score and the budgets).
* :func:`reward_batch` scores many over a persistent process pool (:class:`RewardPool`,
  :mod:`.pool`) with a time and size budget per answer; without ``pool=`` it uses one shared
  pool per worker count, started on first use and kept for the life of the process.
"""

from .core import (
    DEFAULT_MAX_CHARS,
    ConstraintsError,
    ConstraintsLike,
    ConstraintVerdict,
    RewardResult,
    parse_constraints,
    reward,
)
from .pool import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS, RewardPool, reward_batch

__all__ = [
    "DEFAULT_MAX_CHARS",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_WORKERS",
    "ConstraintVerdict",
    "ConstraintsError",
    "ConstraintsLike",
    "RewardPool",
    "RewardResult",
    "parse_constraints",
    "reward",
    "reward_batch",
]
