"""sentence:* — how sentences grow from one to the next, and where a keyword sits."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated

from pydantic import Field

from ..draws import Word
from ..registry import ReferenceCrash, constraint
from ..text import Text
from . import SENTENCE_KEYWORD_SUBSTRING
from ._util import P, delete_p, sentences


def _alliteration_score(sentence: str) -> int:
    """Words that sit in runs of two or more neighbours sharing a first character, summed
    over the sentence's runs (a run of k words adds k)."""
    words = [w.lstrip(P + " ") for w in sentence.lower().split()]
    words = [w for w in words if w]
    score, in_run = 0, False
    for a, b in pairwise(words):
        if a[0] == b[0]:
            score += 1 if in_run else 2
            in_run = True
        else:
            in_run = False
    return score


@constraint(
    "sentence:alliteration_increment",
    instruction="Each sentence must contain a longer stretch of alliterating words than the "
    "sentence before it.",
    pseudo="a = [alliterating_words(s) for s in sentences(response)]; "
    "assert all(x < y for x, y in pairs([-1] + a))",
)
def alliteration_increment(t: Text) -> bool:
    previous = -1
    for sentence in sentences(t):
        score = _alliteration_score(sentence)
        if score <= previous:
            return False
        previous = score
    return True


@constraint(
    "sentence:increment",
    instruction="Each sentence must have exactly {small_n} more words than the sentence before it.",
    pseudo="c = [len(split(delete_p(s))) for s in sentences(response)]; "
    "assert all(b == a + {small_n} for a, b in pairs(c))",
    draw={"small_n": range(1, 6)},
)
def increment(t: Text, small_n: int) -> bool:
    sents = sentences(t)
    if not sents:  # unreachable for a non-blank answer; the reference indexes [0] regardless
        raise ReferenceCrash("sentence:increment: the answer has no sentence (IFBench raises here)")
    counts = [len(delete_p(s).split()) for s in sents]
    return all(b == a + small_n for a, b in pairwise(counts))


@constraint(
    "sentence:keyword",
    instruction="The word {word} must appear in sentence number {N} of your answer.",
    pseudo="s = sentences(response); assert len(s) >= {N} and "
    "search(r'\\b' + {word!r} + r'\\b', s[{N} - 1], IGNORECASE)",
    draw={"word": Word(), "N": range(2, 11)},
)
def keyword(
    t: Text, word: Annotated[str, Field(min_length=1)], N: Annotated[int, Field(ge=0)]
) -> bool:
    sents = sentences(t)
    if len(sents) < N:
        return False
    sentence = sents[N - 1]  # N == 0 picks the last sentence, as in the reference
    if t.profile.has(SENTENCE_KEYWORD_SUBSTRING):
        return word.lower() in sentence.lower()
    return re.search(r"\b" + re.escape(word) + r"\b", sentence, re.IGNORECASE) is not None
