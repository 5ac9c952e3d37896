"""first_word:* — the first word of every sentence, or of the whole response."""

from __future__ import annotations

import random
from typing import Any

from ..draws import Word
from ..profiles import Profile
from ..registry import ReferenceCrash, constraint
from ..text import Text
from ._util import draw_keywords, first_if_list


def _first_word_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a list takes its first element (since 9502f16); a falsy word is drawn
    from the keyword list; the word is stripped."""
    word = first_if_list(kwargs["first_word"]) or draw_keywords(rng)[0]
    return {"first_word": word.strip()}


@constraint(
    "first_word:first_word_sent",
    instruction="The first word of each sentence should be the word {first_word}.",
    pseudo="assert all(lower(split(s)[0]) == lower({first_word!r}) "
    "for s in rule_sentences(response))",
    prepare=_first_word_setup,
    draw={"first_word": Word()},
)
def first_word_sent(t: Text, first_word: str | list[str] = "") -> bool:
    want = first_if_list(first_word).lower()  # a str once bound; a list only if called unbound
    for sentence in t.rule_sentences:
        tokens = sentence.split()
        if not tokens:
            # Only a literal "<stop><stop>" in the text gives an empty piece; the reference
            # then indexes an empty list and raises.
            raise ReferenceCrash(
                "first_word:first_word_sent: the rule-based splitter produced an empty "
                "sentence (a literal <stop> marker in the answer); the reference raises "
                "IndexError here"
            )
        if tokens[0].lower() != want:  # punctuation stays attached: "So," is not "so"
            return False
    return True


def _answer_word_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy word is drawn from the keyword list; the word is stripped."""
    return {"first_word": (kwargs["first_word"] or draw_keywords(rng)[0]).strip()}


@constraint(
    "first_word:first_word_answer",
    instruction="The first word of your response should be the word {first_word}.",
    pseudo="assert lower(split(response)[0]) == lower({first_word!r})",
    prepare=_answer_word_setup,
    draw={"first_word": Word()},
)
def first_word_answer(t: Text, first_word: str = "") -> bool:
    tokens = t.ws_tokens
    return bool(tokens) and tokens[0].lower() == first_word.lower()
