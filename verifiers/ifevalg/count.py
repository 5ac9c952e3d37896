"""count:* — lower-case word totals, composed paragraphs, unique tokens, keyword counts."""

from __future__ import annotations

import random
import re
from typing import Any

from ..draws import Word
from ..profiles import Profile
from ..registry import ReferenceCrash, constraint
from ..rule_sentences import split_into_sentences
from ..text import Text
from . import _util
from ._util import count_matches, draw_keywords

_LOWER_WORD = re.compile(r"\b[a-z]+\b")
_DIVIDER = re.compile(r"\s?\*\*\*\s?")  # unspaced "***" only; "* * *" is not a divider


def _n_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``N`` (0 included) is drawn from 2..3."""
    return {"N": kwargs["N"] or rng.randint(2, 3)}


@constraint(
    "count:lowercase_counting",
    instruction="In your response, all lowercase words should appear at most {N} times.",
    pseudo="assert len(findall(r'\\b[a-z]+\\b', response)) <= {N}",
    prepare=_n_setup,
    draw={"N": range(2, 4)},
)
def lowercase_counting(t: Text, N: int = 0) -> bool:
    # A total over the whole text, not a per-word frequency; "don't" counts 2, "naïve" 0.
    return len(_LOWER_WORD.findall(t.raw)) <= N


def _composition_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``n_sent``, then a falsy ``n_words``, each from 2..3."""
    n_sent = kwargs["n_sent"] or rng.randint(2, 3)
    n_words = kwargs["n_words"] or rng.randint(2, 3)
    return {"n_sent": n_sent, "n_words": n_words}


@constraint(
    "count:counting_composition",
    instruction="Write 3 paragraphs, delimited by the markdown divider: * * *, with exactly "
    "{n_sent} sentences each, with exactly {n_words} words in each sentence.",
    pseudo="p = split(r'\\s?\\*\\*\\*\\s?', response); assert len(p) == 3 and all("
    "len(rule_sentences(x)) == {n_sent} and all(len(word_tokenize(s)) == {n_words} "
    "for s in rule_sentences(x)) for x in p)",
    prepare=_composition_setup,
    # n_words counts NLTK tokens, the final mark included (3..8 is 2..7 words); the reference's
    # own 2..3 would ask for one-word sentences.
    draw={"n_sent": range(2, 4), "n_words": range(3, 9)},
)
def counting_composition(t: Text, n_sent: int = 0, n_words: int = 0) -> bool:
    pieces = _DIVIDER.split(t.raw)
    count = len(pieces)
    for i, piece in enumerate(pieces):
        if not piece.strip():
            if i not in (0, len(pieces) - 1):
                return False
            count -= 1
        # Every piece is split, blank ones too: a blank edge piece has 0 sentences and fails,
        # so a leading or trailing "***" always fails.
        sentences = split_into_sentences(piece)
        if len(sentences) != n_sent:
            return False
        # NLTK tokens: punctuation counts, "Cats sleep." is three words.
        if any(len(_util.word_tokens(s)) != n_words for s in sentences):
            return False
    return count == 3


@constraint(
    "count:count_unique",
    instruction="Only use unique words in your response, no word should be repeated!",
    pseudo="w = word_tokenize(response); assert len(set(w)) == len(w)",
)
def count_unique(t: Text) -> bool:
    # Case-sensitive NLTK tokens, punctuation tokens included (two periods fail).
    tokens = t.word_tokens
    return len(set(tokens)) == len(tokens)


Keyword = str | list[str]  # list: the reference's own defaults (broken); see below


def _increment_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy keyword becomes the *list* the keyword generator returns
    (the reference's bug, kept: such an instruction is unscorable); a string is stripped."""
    out = {}
    for name in ("keyword1", "keyword2"):
        value = kwargs[name] or draw_keywords(rng)
        out[name] = value.strip() if isinstance(value, str) else value
    return out


@constraint(
    "count:count_increment_word",
    instruction="Include keyword {keyword1} once in your response, keyword {keyword2} twice in "
    "your response.",
    pseudo="assert count(findall({keyword1!r}, response, IGNORECASE)) == 1 and "
    "count(findall({keyword2!r}, response, IGNORECASE)) == 2",
    prepare=_increment_setup,
    draw={"keyword1": Word(), "keyword2": Word()},
)
def count_increment_word(t: Text, keyword1: Keyword = "", keyword2: Keyword = "") -> bool:
    if isinstance(keyword1, list) or isinstance(keyword2, list):
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in (("keyword1", keyword1), ("keyword2", keyword2))
            if isinstance(v, list)
        )
        raise ReferenceCrash(
            f"count:count_increment_word: {shown}: a list, the form the reference's own "
            "defaults produce, which the reference cannot score (AttributeError: 'list' object "
            "has no attribute 'strip' when it rebuilds the checker). Write each keyword as a "
            "plain string in the data to score this instruction."
        )
    cid = "count:count_increment_word"
    # Overlaps are not resolved: with "art" and "party", "party party" counts "art" twice.
    return count_matches(keyword1, t.raw, cid) == 1 and count_matches(keyword2, t.raw, cid) == 2
