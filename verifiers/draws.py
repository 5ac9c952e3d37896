"""How ``ifharness generate`` picks a constraint's kwargs: the ``draw=`` of ``@constraint``.

A generated sample needs kwargs that are valid (they pass ``Constraint.bind``) and sensible for
an open-ended writing task (a 50–400 word answer, not a 10,000 word one). The ranges live on the
decorator, next to the signature they fill, so adding a constraint states its generator ranges
in one place and a test can check every registered constraint draws valid kwargs.

Each value of a ``draw`` mapping is evaluated in declaration order:

* a ``list`` / ``tuple`` / ``range``: ``rng.choice`` of it;
* ``Words(n)``: a list of ``n`` distinct common English words (``n`` an int or an inclusive
  ``(lo, hi)`` range); ``Word()``: one such word, as a ``str``;
* ``PROMPT``: the base task's text (for ``prompt_to_repeat`` and the like);
* a callable ``f(rng, drawn)``: for a kwarg that depends on those drawn before it (``drawn`` is
  the dict so far), e.g. ``nth_paragraph`` at most ``num_paragraphs``; :func:`given` builds the
  common one, a bound chosen by the relation drawn before it;
* any other value is used as it is (a constant).

Kwargs the mapping does not name keep their defaults.

Words come from ``common_words.txt`` (plain lower-case English words, one per line, written for
this project). No word there is a substring of another, so a word required by one constraint can
never hide inside a word forbidden by another. Within one sample the words already drawn and the
words of the base task are not drawn again (``DrawContext.used``): a sample never asks to include
and to avoid the same word, nor forbids a word its own task states.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, get_args

from .relations import Relation

if TYPE_CHECKING:
    from .registry import Constraint

WORDS_FILE = "common_words.txt"

Draw = Callable[[random.Random, Mapping[str, Any]], Any]

#: The count relations, for ``draw={"relation": RELATIONS, ...}``.
RELATIONS: tuple[str, ...] = get_args(Relation)


@dataclass(frozen=True)
class Words:
    """``n`` distinct common English words (a list); ``n`` an int or an inclusive ``(lo, hi)``."""

    n: int | tuple[int, int] = 1

    def count(self, rng: random.Random) -> int:
        if isinstance(self.n, tuple):
            lo, hi = self.n
            return rng.randint(lo, hi)
        return self.n


@dataclass(frozen=True)
class Word:
    """One common English word (a ``str``)."""


class _Prompt:
    """Sentinel: the base task's text."""

    _instance: _Prompt | None = None

    def __new__(cls) -> _Prompt:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PROMPT"


PROMPT = _Prompt()


@dataclass
class DrawContext:
    """What a draw may depend on beyond its own spec: the sample's base task.

    ``used`` collects the words drawn so far in the sample (seeded with the task's own words),
    so two constraints of one sample never draw the same word.
    """

    prompt: str = ""
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.used |= set(re.findall(r"[a-z]+", self.prompt.lower()))


@cache
def common_words() -> tuple[str, ...]:
    """The shipped word list, in file order (the order is part of what a seed reproduces)."""
    text = resources.files(__package__).joinpath(WORDS_FILE).read_text(encoding="utf-8")
    words = tuple(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))
    return words


def _pick_words(rng: random.Random, k: int, ctx: DrawContext) -> list[str]:
    pool = [w for w in common_words() if w not in ctx.used]
    if k > len(pool):
        raise ValueError(
            f"{WORDS_FILE}: asked for {k} words but only {len(pool)} are left unused in this "
            "sample; lower the Words(n) of the constraint"
        )
    picked = rng.sample(pool, k)
    ctx.used.update(picked)
    return picked


def draw_value(spec: Any, rng: random.Random, drawn: Mapping[str, Any], ctx: DrawContext) -> Any:
    """One kwarg's value from its spec (see the module docstring for the forms)."""
    if isinstance(spec, Words):
        return _pick_words(rng, spec.count(rng), ctx)
    if isinstance(spec, Word):
        return _pick_words(rng, 1, ctx)[0]
    if spec is PROMPT:
        return ctx.prompt
    if isinstance(spec, (list, tuple, range)):
        if len(spec) == 0:
            raise ValueError("an empty list of choices in a draw= spec")
        return copy.deepcopy(rng.choice(spec))  # a list-valued choice is not shared by samples
    if callable(spec):
        return spec(rng, dict(drawn))
    return spec


def given(on: str, table: Mapping[Any, Any]) -> Draw:
    """A draw that depends on the kwarg ``on`` drawn before it: ``table[drawn[on]]``, itself a
    spec (usually a list or range), e.g. ``given("relation", {"less than": range(100, 401),
    "at least": range(50, 251)})`` keeps "less than" bounds reachable and "at least" modest."""

    def pick(rng: random.Random, drawn: Mapping[str, Any]) -> Any:
        if on not in drawn:
            raise KeyError(f"given({on!r}, ...): {on!r} must be drawn before this kwarg")
        return draw_value(table[drawn[on]], rng, drawn, DrawContext())

    return pick


def draw_kwargs(
    constraint: Constraint,
    rng: random.Random,
    context: DrawContext | str | None = None,
) -> dict[str, Any]:
    """Kwargs for ``constraint`` drawn from its ``draw`` spec, in declaration order.

    ``context`` is a :class:`DrawContext` (or just the base task's text). A constraint without a
    ``draw`` gets ``{}`` (its defaults), which fits only constraints whose kwargs all have
    defaults; the composer refuses any other, naming it.
    """
    ctx = context if isinstance(context, DrawContext) else DrawContext(prompt=context or "")
    drawn: dict[str, Any] = {}
    for name, spec in (constraint.draw or {}).items():
        drawn[name] = draw_value(spec, rng, drawn, ctx)
    return drawn


__all__ = [
    "PROMPT",
    "RELATIONS",
    "Draw",
    "DrawContext",
    "Word",
    "Words",
    "common_words",
    "draw_kwargs",
    "draw_value",
    "given",
]
