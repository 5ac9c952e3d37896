"""The reward of one answer: constraints parsed and bound once, the answer checked, a score.

Decisions (the reward face of DESIGN.md; it never touches a run folder):

* **Constraints forms** (:func:`parse_constraints`): our list ``[{"id", "kwargs"}]`` (or
  ``(id, kwargs)`` pairs), a dict ``{"instruction_id" | "instruction_id_list": [...],
  "kwargs": [...]}``, the label string RL datasets store (``str([dict])`` or
  ``str([json.dumps(dict)])``: read with ``json.loads`` or ``ast.literal_eval``, never
  ``eval``; of a list of such dicts the first is used, as open-instruct does), or a JSON
  string of any of these. A bad form raises :class:`ConstraintsError` naming the problem.
* **Binding** is the loader's: ``get(id, suite).bind(kwargs, rng, profile)`` with one
  ``random.Random(0)`` per constraints list, drawn in instruction order, so a reward equals
  what ``ifharness score`` decides for the same answer. Bound lists are cached (LRU keyed by
  the label string, or by the canonical JSON of other forms): GRPO sends G answers per label.
* **Reasoning** is removed first with a parser of :mod:`ifharness.reasoning` (``"none"``: no
  stripping) under the ``empty`` policy: a ``<think>`` that never closes leaves an empty
  answer (score 0, ``unterminated_reasoning`` and ``empty_answer`` set).
* **Score**: ``reduce="fraction"`` is the fraction of constraints followed,
  ``reduce="all"`` 1.0 when every one is followed, else 0.0. An unscorable verdict (the
  checker raised, a resource is missing; ``followed=None`` with the reason) counts as *not
  followed* here (``ifharness score`` leaves it out of its denominators instead; a reward has
  to be a number). Strict mode computes no loose variant.
* **Budget**: an answer longer than ``max_chars`` (counted after the reasoning is removed) is
  not checked: the result is flagged ``over_budget`` with ``over_budget_score`` and every
  verdict unscorable with the budget reason. ``timeout_s`` here is a *soft* bound: a
  ``SIGALRM`` timer that interrupts a check between Python bytecodes, armed only on the main
  thread when nobody else handles ``SIGALRM``; a check stuck inside one C call (a regex) runs
  on. :mod:`ifharness.reward.pool` adds the hard bound (the worker is killed).
"""

from __future__ import annotations

import ast
import functools
import json
import math
import random
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ifharness import reasoning as reasoning_parsers
from ifharness.verifiers import KwargsError, Text, UnknownConstraintError, get, get_profile

ConstraintsLike = str | Mapping[str, Any] | Sequence[Any]

MODES = ("strict", "loose")
REDUCES = ("fraction", "all")
#: Answers longer than this (after the reasoning is removed) are not checked by default.
DEFAULT_MAX_CHARS = 200_000
ID_KEYS = ("instruction_id", "instruction_id_list")


class ConstraintsError(ValueError):
    """Constraints that cannot be read or bound; the message names what is wrong."""


@dataclass(frozen=True)
class ConstraintVerdict:
    id: str
    followed: bool | None  # None = unscorable
    reason: str | None = None  # why unscorable (checker error, missing resource, budget)


@dataclass(frozen=True)
class RewardResult:
    score: float
    verdicts: tuple[ConstraintVerdict, ...]
    over_budget: bool = False
    budget_reason: str | None = None
    empty_answer: bool = False
    unterminated_reasoning: bool = False

    @property
    def followed_all(self) -> bool:
        return not self.over_budget and all(v.followed is True for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "followed_all": self.followed_all,
            "verdicts": [
                {"id": v.id, "followed": v.followed, "reason": v.reason} for v in self.verdicts
            ],
            "over_budget": self.over_budget,
            "budget_reason": self.budget_reason,
            "empty_answer": self.empty_answer,
            "unterminated_reasoning": self.unterminated_reasoning,
        }


# ---------------------------------------------------------------------------------- parsing


def _literal(text: str) -> Any:
    s = text.strip()
    if not s:
        raise ConstraintsError("constraints string is empty")
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ConstraintsError(
            f"constraints string is neither JSON nor a Python literal ({type(e).__name__}: "
            f"{e}): {s[:80]!r}"
        ) from None


def _is_pair(x: Any) -> bool:
    return (
        isinstance(x, (list, tuple))
        and len(x) == 2
        and isinstance(x[0], str)
        and (x[1] is None or isinstance(x[1], Mapping))
    )


def _pairs(value: Any, depth: int = 0) -> list[tuple[str, Any]]:
    """(id, raw kwargs) of any accepted form."""
    if depth > 3:
        raise ConstraintsError("constraints nested too deeply (a string inside a string …)")
    if isinstance(value, str):
        return _pairs(_literal(value), depth + 1)
    if isinstance(value, Mapping):
        key = next((k for k in ID_KEYS if k in value), None)
        if key is None:
            if "id" in value:
                return _pairs([value], depth)
            raise ConstraintsError(
                "a constraints dict needs 'instruction_id' (or 'instruction_id_list') and "
                f"'kwargs'; got keys {sorted(map(str, value))}"
            )
        ids, kwargs = value[key], value.get("kwargs")
        if isinstance(ids, str):
            ids = [ids]
        if isinstance(kwargs, Mapping):
            kwargs = [kwargs]
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
            raise ConstraintsError(f"{key!r} must be a list of constraint ids, got {ids!r:.80}")
        if kwargs is None:
            kwargs = [{} for _ in ids]
        if not isinstance(kwargs, (list, tuple)) or len(kwargs) != len(ids):
            raise ConstraintsError(
                f"'kwargs' must be a list with one object per instruction ({len(ids)} ids), "
                f"got {kwargs!r:.80}"
            )
        return list(zip(ids, kwargs))
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConstraintsError("no constraints: the list is empty")
        first = value[0]
        if isinstance(first, str) or (
            isinstance(first, Mapping) and any(k in first for k in ID_KEYS)
        ):
            return _pairs(first, depth + 1)  # an RL label: the first element (open-instruct)
        out = []
        for n, item in enumerate(value):
            if _is_pair(item):
                out.append((item[0], item[1]))
            elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
                extra = set(item) - {"id", "kwargs"}
                if extra:
                    raise ConstraintsError(
                        f"constraint {n} ({item['id']}): unexpected keys {sorted(extra)}; "
                        "expected 'id' and 'kwargs'"
                    )
                out.append((item["id"], item.get("kwargs")))
            else:
                raise ConstraintsError(
                    f"constraint {n} must be {{'id': ..., 'kwargs': {{...}}}} or "
                    f"(id, kwargs), got {item!r:.80}"
                )
        return out
    raise ConstraintsError(
        f"constraints must be a list, a dict or a string, got {type(value).__name__}"
    )


Resolved = tuple[tuple[str, Callable[..., object], dict[str, Any]], ...]


def constraints_key(constraints: ConstraintsLike) -> str:
    """The cache key of a constraints value: a string as it is, else its canonical JSON."""
    if isinstance(constraints, str):
        return constraints
    try:
        return json.dumps(constraints, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ConstraintsError(f"constraints are not JSON-like data: {e}") from None


@functools.lru_cache(maxsize=4096)
def _resolve_key(key: str, suite: str | None, profile: str) -> Resolved:
    pairs = _pairs(key)
    if not pairs:
        raise ConstraintsError("no constraints: the list is empty")
    prof = get_profile(profile)
    rng = random.Random(0)  # the reference's seed, drawn from in instruction order
    out = []
    for n, (cid, kw) in enumerate(pairs):
        if kw is not None and not isinstance(kw, Mapping):
            raise ConstraintsError(f"instruction {n} ({cid}): kwargs must be an object")
        try:
            c = get(cid, suite)
            out.append((cid, c.func, c.bind(kw, rng, prof)))
        except (KwargsError, UnknownConstraintError) as e:
            raise ConstraintsError(f"instruction {n}: {e}") from None
    return tuple(out)


def resolve(
    constraints: ConstraintsLike, suite: str | None = None, profile: str = "reference"
) -> Resolved:
    """Bound constraints ``(id, checker, kwargs)``, cached; kwargs must not be mutated."""
    try:
        get_profile(profile)
    except ValueError as e:
        raise ConstraintsError(str(e)) from None
    return _resolve_key(constraints_key(constraints), suite, profile)


def parse_constraints(
    constraints: ConstraintsLike, suite: str | None = None, *, profile: str = "reference"
) -> list[tuple[str, dict[str, Any]]]:
    """``(id, bound kwargs)`` per instruction, bound as ``ifharness score`` binds them."""
    return [(cid, dict(kw)) for cid, _, kw in resolve(constraints, suite, profile)]


# ---------------------------------------------------------------------------------- scoring


class CheckTimeout(BaseException):
    """Raised by the SIGALRM soft bound inside a check (a BaseException: checkers catch
    ``Exception`` and must not swallow it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise CheckTimeout


class SoftTimer:
    """Arms ``signal.setitimer`` around one answer's checks, where it can: on the main
    thread, and only if ``SIGALRM`` is unhandled (``SIG_DFL``) or already ours."""

    def __init__(self, timeout_s: float | None):
        self.timeout_s = timeout_s
        self.armed = False
        if timeout_s and threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGALRM)
            if current in (signal.SIG_DFL, _on_alarm):
                signal.signal(signal.SIGALRM, _on_alarm)
                self.armed = True

    def start(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, self.timeout_s)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)


_VERDICTS: dict[tuple[str, bool], ConstraintVerdict] = {}


def _verdict(cid: str, followed: bool) -> ConstraintVerdict:
    """Interned verdicts without a reason (immutable; pickled once per chunk)."""
    v = _VERDICTS.get((cid, followed))
    if v is None:
        v = _VERDICTS[cid, followed] = ConstraintVerdict(cid, followed)
    return v


@functools.lru_cache(maxsize=64)
def _parser(name: str) -> Any:
    return reasoning_parsers.with_unterminated(reasoning_parsers.get(name), "empty")


def check_options(mode: str, reduce: str, reasoning: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if reduce not in REDUCES:
        raise ValueError(f"reduce must be one of {', '.join(REDUCES)}, got {reduce!r}")
    _parser(reasoning)  # raises IfharnessError naming the known parsers


def over_budget_result(
    resolved: Resolved, reason: str, score: float, unterminated: bool = False
) -> RewardResult:
    verdicts = tuple(ConstraintVerdict(cid, None, reason) for cid, _, _ in resolved)
    return RewardResult(score, verdicts, True, reason, False, unterminated)


def timeout_reason(timeout_s: float | None) -> str:
    return f"check took longer than timeout_s={timeout_s:g}"


def score_answer(
    response: str,
    resolved: Resolved,
    mode: str,
    reduce: str,
    reasoning: str,
    max_chars: int | None,
    over_budget_score: float,
    profile: str,
    timer: SoftTimer | None = None,
) -> RewardResult:
    """The reward of one response (options already checked). The hot path of every face."""
    split = _parser(reasoning).split(response)
    answer, unterminated = split.answer, split.unterminated
    if max_chars is not None and len(answer) > max_chars:
        reason = f"answer has {len(answer)} chars, max_chars is {max_chars}"
        return over_budget_result(resolved, reason, over_budget_score, unterminated)
    t = Text(answer, get_profile(profile))
    if t.is_blank:
        verdicts = tuple(_verdict(cid, False) for cid, _, _ in resolved)
        return RewardResult(0.0, verdicts, False, None, True, unterminated)
    if timer is not None:
        timer.start()
    try:
        verdicts = _check_all(t, resolved, mode == "loose")
    except CheckTimeout:
        reason = timeout_reason(timer.timeout_s if timer else None)
        return over_budget_result(resolved, reason, over_budget_score, unterminated)
    finally:
        if timer is not None:
            timer.stop()
    followed = sum(1 for v in verdicts if v.followed is True)
    if reduce == "all":
        score = 1.0 if followed == len(verdicts) else 0.0
    else:
        score = followed / len(verdicts)
    return RewardResult(score, verdicts, False, None, False, unterminated)


def _check_all(t: Text, resolved: Resolved, loose: bool) -> tuple[ConstraintVerdict, ...]:
    out = []
    for cid, func, kwargs in resolved:
        try:
            ok = bool(func(t, **kwargs))
            error = None
        except Exception as e:  # noqa: BLE001 - a checker must never stop a reward
            ok, error = False, f"{type(e).__name__}: {e}"
        if ok or not loose:
            out.append(_verdict(cid, ok) if error is None else ConstraintVerdict(cid, None, error))
            continue
        # Loose, as ifharness.scoring.judge: the variants in order, first pass wins; an
        # error anywhere makes a failed loose verdict unscorable.
        loose_ok = False
        for variant in t.loose_variants:
            try:
                if func(variant, **kwargs):
                    loose_ok = True
                    break
            except Exception as e:  # noqa: BLE001
                error = error or f"{type(e).__name__}: {e}"
        if loose_ok:
            out.append(_verdict(cid, True))
        elif error is not None:
            out.append(ConstraintVerdict(cid, None, error))
        else:
            out.append(_verdict(cid, False))
    return tuple(out)


def reward(
    response: str,
    constraints: ConstraintsLike,
    *,
    suite: str | None = None,
    mode: str = "strict",
    reduce: str = "fraction",
    reasoning: str = "think",
    max_chars: int | None = DEFAULT_MAX_CHARS,
    over_budget_score: float = 0.0,
    profile: str = "reference",
    timeout_s: float | None = None,
) -> RewardResult:
    """The reward of one response for its constraints, in this process (see the module
    docstring for the forms, the binding, the score and the budgets)."""
    check_options(mode, reduce, reasoning)
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    resolved = resolve(constraints, suite, profile)
    timer = SoftTimer(timeout_s) if timeout_s else None
    return score_answer(
        response, resolved, mode, reduce, reasoning, max_chars, over_budget_score, profile, timer
    )


def check_timeout(timeout_s: float | None) -> None:
    if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a positive number or None, got {timeout_s!r}")
