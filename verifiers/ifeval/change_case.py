"""change_case:* — capital letters and English case."""

from __future__ import annotations

from ..draws import RELATIONS, given
from ..registry import constraint
from ..relations import Relation, holds
from ..text import Text


@constraint(
    "change_case:capital_word_frequency",
    instruction="In your response, words with all capital letters should appear {capital_relation} "
    "{capital_frequency} times.",
    pseudo="assert count(w for w in word_tokenize(response) if w.isupper()) {op} "
    "{capital_frequency}",
    draw={
        "capital_relation": RELATIONS,
        "capital_frequency": given(
            "capital_relation", {"less than": range(3, 11), "at least": range(2, 9)}
        ),
    },
)
def capital_word_frequency(t: Text, capital_frequency: int, capital_relation: Relation) -> bool:
    return holds(capital_relation, sum(1 for w in t.word_tokens if w.isupper()), capital_frequency)


@constraint(
    "change_case:english_capital",
    instruction="Your entire response should be in English, and in all capital letters.",
    pseudo="assert response.isupper() and langdetect(response) == 'en'",
)
def english_capital(t: Text) -> bool:
    # langdetect is asked only when the case test passes; "no features" counts as followed.
    return t.raw.isupper() and t.language in (None, "en")


@constraint(
    "change_case:english_lowercase",
    instruction="Your entire response should be in English, and in all lowercase letters. No "
    "capital letters are allowed.",
    pseudo="assert response.islower() and langdetect(response) == 'en'",
)
def english_lowercase(t: Text) -> bool:
    return t.raw.islower() and t.language in (None, "en")
