"""repeat:* — copy (part of) the request instead of answering it."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from ..draws import PROMPT
from ..profiles import Profile
from ..registry import KwargsError, constraint
from ..text import Text
from . import REPEAT_SPAN_WORDS

NonEmpty = Annotated[str, Field(min_length=1)]  # the reference refuses to build without one


@constraint(
    "repeat:repeat_change",
    instruction="Repeat the request below, changing only its first word, and do not answer it. "
    "Say nothing before the repeated request. Request: {prompt_to_repeat}",
    pseudo="assert response != {prompt_to_repeat!r} and split(response)[1:] == "
    "split({prompt_to_repeat!r})[1:]",
    draw={"prompt_to_repeat": PROMPT},
)
def repeat_change(t: Text, prompt_to_repeat: NonEmpty) -> bool:
    if t.raw == prompt_to_repeat:
        return False
    # The first word is never compared: a copy that differs only in spacing passes too.
    return " ".join(prompt_to_repeat.split()[1:]) == " ".join(t.ws_tokens[1:])


_REPEAT_SIMPLE = "only output this sentence here, ignore all other requests."


@constraint(
    "repeat:repeat_simple",
    instruction="Only output this sentence here, ignore all other requests.",
    pseudo="assert lower(strip(response)) == "
    "'only output this sentence here, ignore all other requests.'",
)
def repeat_simple(t: Text) -> bool:
    return t.stripped.lower() == _REPEAT_SIMPLE


def _draw_word_span(kwargs: dict[str, Any], rng: random.Random, profile: Profile) -> dict[str, Any]:
    """Set-up step of the 2025 reference (profile flag ``ifbench-repeat-span-words``).

    That version tested the indices for truth, so an index of 0 counted as missing and was
    drawn at random from the prompt's word positions. We draw from ``rng`` (the scorer seeds it
    per prompt), so the verdict is reproducible. The current reference keeps a 0.
    """
    if not profile.has(REPEAT_SPAN_WORDS):
        return kwargs
    n_words = len(kwargs["prompt_to_repeat"].split())
    start, end = kwargs["n_start"], kwargs["n_end"]
    try:
        if not start:
            start = rng.randint(0, n_words - 2)
        if not end:
            end = rng.randint(start + 1, n_words - 1)
    except ValueError:
        raise KwargsError(
            f"repeat:repeat_span: cannot draw a word span from a {n_words}-word prompt_to_repeat"
        ) from None
    return {**kwargs, "n_start": start, "n_end": end}


def _span_end(rng: random.Random, drawn: Mapping[str, Any]) -> int:
    """``n_end`` 5-15 characters after ``n_start`` (the reference data's spans), kept inside
    the prompt so the span to copy is never empty."""
    start = drawn["n_start"]
    return min(start + rng.randint(5, 15), max(start, len(drawn["prompt_to_repeat"]) - 1))


@constraint(
    "repeat:repeat_span",
    instruction="Copy the span of the text below from index {n_start} to index {n_end}, both "
    "included, and output nothing else. Text: {prompt_to_repeat}",
    pseudo="assert lower(strip(response)) == "
    "lower(strip({prompt_to_repeat!r}[{n_start}:{n_end} + 1]))",
    prepare=_draw_word_span,
    draw={"prompt_to_repeat": PROMPT, "n_start": range(0, 11), "n_end": _span_end},
)
def repeat_span(t: Text, prompt_to_repeat: NonEmpty, n_start: int, n_end: int) -> bool:
    answer = t.stripped.lower()
    if t.profile.has(REPEAT_SPAN_WORDS):  # whitespace words, end excluded
        return answer.split() == prompt_to_repeat.strip().lower().split()[n_start:n_end]
    # The current reference compares *characters* n_start..n_end (inclusive), although the
    # prompt asks for words.
    return answer == prompt_to_repeat[n_start : n_end + 1].strip().lower()
