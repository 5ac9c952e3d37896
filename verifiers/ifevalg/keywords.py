"""keywords:* (new ids) — keyword counts and positions, adjacent initials, palindromes.

Keywords are counted as the reference does: the keyword *is* the regex pattern,
case-insensitive, no escaping, no word boundaries (``art`` is found in ``Start``). Exceptions:
``exclude_word_harder`` (a literal, case-sensitive, space-delimited test) and
``keyword_specific_position`` (an exact token). IFEval's keyword ids are registered in this
suite by ``ifeval_ids``.
"""

from __future__ import annotations

import random
from typing import Any

from ..draws import Word
from ..profiles import Profile
from ..registry import KwargsError, ReferenceCrash, constraint
from ..relations import Relation, holds
from ..text import Text
from . import _util
from ._util import count_matches, draw_keywords, first_if_list

RELATIONS: tuple[Relation, ...] = ("less than", "at least")


@constraint(
    "keywords:no_adjacent_consecutive",
    instruction="No two adjacent words can start with consecutive letters of the alphabet.",
    pseudo="w = split(response); assert not any(ord(lower(b[0])) == ord(lower(a[0])) + 1 "
    "for a, b in pairs(w))",
)
def no_adjacent_consecutive(t: Text) -> bool:
    # Any characters, not only letters ("1 2" fails), ascending only ("apple Big" fails).
    words = t.ws_tokens
    for a, b in zip(words, words[1:]):
        first, second = a[0].lower(), b[0].lower()
        if len(first) != 1 or len(second) != 1:  # "İ".lower() is two code points
            return False
        if ord(second) == ord(first) + 1:
            return False
    return True


def _keyword_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy keyword is drawn from the keyword list; it is stripped."""
    return {**kwargs, "keyword": (kwargs["keyword"] or draw_keywords(rng)[0]).strip()}


@constraint(
    "keywords:word_once",
    instruction="Include keyword {keyword} in your response.",
    pseudo="assert len(findall({keyword!r}, response, IGNORECASE)) == 1",
    prepare=_keyword_setup,
    draw={"keyword": Word()},
)
def word_once(t: Text, keyword: str = "") -> bool:
    # Exactly one match, although the instruction only says "include".
    return count_matches(keyword, t.raw, "keywords:word_once") == 1


def _numbers_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up, in order: a falsy keyword is drawn from the keyword list; a missing
    or negative ``frequency`` from 1..3 (0 is kept); a missing ``relation`` by ``choice``."""
    keyword = (kwargs["keyword"] or draw_keywords(rng)[0]).strip()
    frequency = kwargs["frequency"]
    if frequency is None or frequency < 0:
        frequency = rng.randint(1, 3)
    relation = kwargs["relation"] or rng.choice(RELATIONS)
    return {"keyword": keyword, "frequency": frequency, "relation": relation}


@constraint(
    "keywords:word_count_different_numbers",
    instruction="In your response, the word {keyword} should appear {frequency} times.",
    pseudo="assert count(findall({keyword!r}, response, IGNORECASE)) {op} {frequency}",
    prepare=_numbers_setup,
    draw={"keyword": Word(), "frequency": range(1, 4), "relation": RELATIONS},
)
def word_count_different_numbers(
    t: Text, keyword: str = "", frequency: int | None = None, relation: Relation | None = None
) -> bool:
    # The relation is hidden from the model (the instruction shows none): keywords:frequency.
    n = count_matches(keyword, t.raw, "keywords:word_count_different_numbers")
    return holds(relation or "less than", n, frequency or 0)


def _exclude_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy keyword is a ``choice`` over the whitespace tokens of the
    ``instruction`` (the prompt), punctuation attached; with neither, the reference raises."""
    keyword = kwargs["keyword"]
    if not keyword:
        tokens = (kwargs["instruction"] or "").split()
        if not tokens:
            raise KwargsError(
                "keywords:exclude_word_harder: give `keyword` (or `instruction`, the prompt "
                "text a keyword is drawn from); the reference raises AttributeError without them"
            )
        keyword = rng.choice(tokens)
    return {"keyword": keyword.strip(), "instruction": None}  # only the keyword is recorded


@constraint(
    "keywords:exclude_word_harder",
    instruction="Do not include keyword {keyword} in the response.",
    pseudo="assert ' ' + {keyword!r} + ' ' not in response",
    prepare=_exclude_setup,
    draw={"keyword": Word()},
)
def exclude_word_harder(t: Text, keyword: str = "", instruction: str | None = None) -> bool:
    # A literal, case-sensitive test with one space each side: the word at the very start or
    # end, before punctuation or a newline, or capitalised, is not detected.
    return f" {keyword} " not in t.raw


@constraint(
    "keywords:palindrome",
    instruction="Include a palindrome in your response.",
    pseudo="assert any(w == w[::-1] for w in split(response))",
)
def palindrome(t: Text) -> bool:
    # Exact (case and punctuation count), so any one-character token qualifies.
    return any(w == w[::-1] for w in t.ws_tokens)


def _position_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up, in order: keyword (a list takes its first element; falsy: drawn;
    stripped), then a falsy ``n`` from 1..20, then a falsy ``m`` from 1..30."""
    keyword = (first_if_list(kwargs["keyword"]) or draw_keywords(rng)[0]).strip()
    n = kwargs["n"] or rng.randint(1, 20)
    m = kwargs["m"] or rng.randint(1, 30)
    return {"keyword": keyword, "n": n, "m": m}


@constraint(
    "keywords:keyword_specific_position",
    instruction="Include keyword {keyword} in the {n}-th sentence, as the {m}-th word of that "
    "sentence.",
    pseudo="assert word_tokenize(rule_sentences(response)[{n} - 1])[{m} - 1] == {keyword!r}",
    prepare=_position_setup,
    draw={"keyword": Word(), "n": range(1, 11), "m": range(2, 16)},
)
def keyword_specific_position(
    t: Text, keyword: str | list[str] = "", n: int = 0, m: int = 0
) -> bool:
    sentences = t.rule_sentences
    if len(sentences) < n:
        return False
    try:
        tokens = _util.word_tokens(sentences[n - 1])
        if len(tokens) < m:
            return False
        return tokens[m - 1] == first_if_list(keyword)  # exact: case and punctuation count
    except IndexError:  # only a zero or negative index given in the data gets here
        raise ReferenceCrash(
            f"keywords:keyword_specific_position: n={n}, m={m} index outside the answer's "
            "sentences or words; the reference raises IndexError"
        ) from None


@constraint(
    "keywords:start_end",
    instruction="Start and end your response with the same word (do not write anything after the "
    "last word, not even punctuation).",
    pseudo="w = word_tokenize(response); assert len(w) >= 2 and lower(w[0]) == lower(w[-1])",
)
def start_end(t: Text) -> bool:
    # NLTK tokens: a final period is a token of its own, so "Hi there hi." fails.
    tokens = t.word_tokens
    return len(tokens) >= 2 and tokens[0].lower() == tokens[-1].lower()
