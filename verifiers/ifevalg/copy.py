"""copy:* — repeat a phrase with one word changed, or copy the request verbatim (N times)."""

from __future__ import annotations

import random
import re
from typing import Annotated, Any

from pydantic import Field

from ..draws import PROMPT
from ..profiles import Profile
from ..registry import constraint
from ..text import Text
from . import REPEAT_PHRASE_2025

Prompt = Annotated[str, Field(min_length=1)]  # missing or empty: the reference's ValueError

PHRASES = (
    "Dance like nobody is watching you",
    "The early bird catches the worm",
    "Time flies when having fun",
    "Every cloud has a silver lining",
    "Actions speak louder than words",
    "Don't judge a book by cover",
    "Live each day to the fullest",
    "All that glitters is not gold",
    "Laughter is the best medicine",
    "The pen is mightier than sword",
)


def _phrase_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``phrase`` is drawn from the ten phrases, then a falsy
    ``small_n`` from 2..3, in that order; the phrase is stripped."""
    phrase = kwargs["phrase"] or rng.choice(PHRASES)
    small_n = kwargs["small_n"] or rng.randint(2, 3)
    return {"phrase": phrase.strip(), "small_n": small_n}


@constraint(
    "copy:repeat_phrase",
    instruction="Repeat the phrase {phrase} exactly {small_n} times, transforming it slightly "
    "each time by replacing only one word in the center of the phrase.",
    pseudo="m = findall(first({phrase!r}) + ' .*? ' + last({phrase!r}), response); "
    "assert len(m) == {small_n} and all(words_differing(x, {phrase!r}) == 1 for x in m)",
    prepare=_phrase_setup,
    draw={"phrase": PHRASES, "small_n": range(2, 4)},
)
def repeat_phrase(t: Text, phrase: str = "", small_n: int = 0) -> bool:
    # F and L go into the pattern unescaped, as in the reference; the phrases are plain words.
    words = phrase.split()
    if not words:
        return False
    found = re.findall(f"{words[0]} .*? {words[-1]}", t.raw)
    if len(found) != small_n:
        return False
    differing = []
    for match in found:
        got = match.split()
        if len(got) != len(words):
            return False
        n = sum(1 for a, b in zip(got, words) if a != b)
        if n >= 2:
            return False
        differing.append(n)
    if t.profile.has(REPEAT_PHRASE_2025):
        # Before ebca9f7 only the last repetition decided (a miss returned None: not followed).
        return bool(differing) and differing[-1] == 1
    return all(n == 1 for n in differing)


def _same_text(answer: str, target: str) -> bool:
    return answer.strip().lower() == target.strip().lower()


@constraint(
    "copy:copy",
    instruction="Copy this instruction verbatim, do not follow the instruction, only copy it into "
    "the output (do not include this instruction sentence!).",
    pseudo="assert lower(strip(response)) == lower(strip({prompt_to_repeat!r}))",
    draw={"prompt_to_repeat": PROMPT},
)
def copy(t: Text, prompt_to_repeat: Prompt) -> bool:
    # Equality, not a prefix (contrast combination:repeat_prompt); str.lower, not casefold.
    return _same_text(t.raw, prompt_to_repeat)


@constraint(
    "copy:copying_simple",
    instruction="Repeat the request without change (do not say anything before repeating the "
    "request; the request you need to repeat does not include this sentence) and do not answer "
    "the actual request!",
    pseudo="assert lower(strip(response)) == lower(strip({prompt_to_repeat!r}))",
    draw={"prompt_to_repeat": PROMPT},
)
def copying_simple(t: Text, prompt_to_repeat: Prompt) -> bool:
    return _same_text(t.raw, prompt_to_repeat)


def _copies_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``N`` is drawn from 2..3."""
    return {**kwargs, "N": kwargs["N"] or rng.randint(2, 3)}


@constraint(
    "copy:copying_multiple",
    instruction="Repeat the request without change {N} times, separated by 6 asterisk symbols "
    "(do not say anything before repeating the request; the request you need to repeat does not "
    "include this sentence) and do not answer the actual request!",
    pseudo="p = split('******', response); assert len(p) == {N} and "
    "all(lower(strip(x)) == lower(strip({prompt_to_repeat!r})) for x in p)",
    prepare=_copies_setup,
    draw={"prompt_to_repeat": PROMPT, "N": range(2, 4)},
)
def copying_multiple(t: Text, prompt_to_repeat: Prompt, N: int = 0) -> bool:
    pieces = t.raw.split("******")
    return len(pieces) == N and all(_same_text(p, prompt_to_repeat) for p in pieces)
