"""keywords:* — words that must or must not appear, and letter counts."""

from __future__ import annotations

import functools
import random
import re
import string
from collections import Counter
from typing import Any

from ..draws import RELATIONS, Word, Words, given
from ..profiles import LETTER_SYMBOLS_LITERAL, Profile
from ..registry import constraint
from ..relations import Relation, holds
from ..text import Text


@functools.lru_cache(maxsize=8192)
def _compiled(pattern: str) -> re.Pattern[str]:
    """``re.compile(pattern, re.IGNORECASE)``, kept: a dataset has more keyword patterns than
    ``re``'s own cache holds (512), which then compiles them again on every answer."""
    return re.compile(pattern, flags=re.IGNORECASE)


@constraint(
    "keywords:existence",
    instruction="Include the keywords {keywords} in the response.",
    pseudo="assert all(search(k, response, IGNORECASE) for k in {keywords})",
    draw={"keywords": Words((1, 3))},
)
def existence(t: Text, keywords: list[str]) -> bool:
    # Keywords are regex patterns in the reference: no escaping, no word boundaries.
    return all(_compiled(k).search(t.raw) for k in keywords)


@constraint(
    "keywords:frequency",
    instruction="In your response, the word {keyword} should appear {relation} {frequency} times.",
    pseudo="assert count(findall({keyword!r}, response, IGNORECASE)) {op} {frequency}",
    draw={
        "keyword": Word(),
        "relation": RELATIONS,
        "frequency": given("relation", {"less than": range(2, 6), "at least": range(2, 6)}),
    },
)
def frequency(t: Text, keyword: str, frequency: int, relation: Relation) -> bool:
    return holds(relation, len(_compiled(keyword.strip()).findall(t.raw)), frequency)


@constraint(
    "keywords:forbidden_words",
    instruction="Do not include keywords {forbidden_words} in the response.",
    pseudo="assert not any(search(r'\\b' + w + r'\\b', response, IGNORECASE) for w in "
    "{forbidden_words})",
    draw={"forbidden_words": Words((1, 3))},
)
def forbidden_words(t: Text, forbidden_words: list[str]) -> bool:
    return not any(_compiled(r"\b" + w + r"\b").search(t.raw) for w in forbidden_words)


def _choose_letter(kwargs: dict[str, Any], rng: random.Random, profile: Profile) -> dict[str, Any]:
    """The reference's set-up step for ``letter``.

    The reference replaces an empty, multi-character or non a–z letter by
    ``random.choice(string.ascii_letters)``. We draw from ``rng``, which the scorer seeds
    with 0 for every prompt, as the reference verdicts in ``shared/data`` were produced
    (Python's ``random`` seeded to 0 before each prompt's pass); strict and loose therefore
    use the same letter. Profile flag ``letter-symbols-literal`` counts a one-character
    symbol (``#``, ``!``) literally instead.
    """
    letter = kwargs["letter"]
    valid = len(letter) == 1 and "a" <= letter.lower() <= "z"
    if valid or (profile.has(LETTER_SYMBOLS_LITERAL) and len(letter.strip()) == 1):
        letter = letter.strip()
    else:
        letter = rng.choice(string.ascii_letters)
    return {**kwargs, "letter": letter.lower()}


@constraint(
    "keywords:letter_frequency",
    instruction="In your response, the letter {letter} should appear {let_relation} "
    "{let_frequency} times.",
    pseudo="assert lower(response).count({letter!r}) {op} {let_frequency}",
    prepare=_choose_letter,
    # "At least" of frequent letters only: a "less than" bound on any letter fights every length
    # and keyword constraint, and a rare letter can sit in a drawn keyword.
    draw={
        "letter": list("etaoinsrhl"),
        "let_relation": ["at least"],
        "let_frequency": range(5, 16),
    },
)
def letter_frequency(t: Text, letter: str, let_frequency: int, let_relation: Relation) -> bool:
    return holds(let_relation, Counter(t.lower)[letter], let_frequency)
