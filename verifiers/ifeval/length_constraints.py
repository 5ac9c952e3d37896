"""length_constraints:* — counts of words, sentences and paragraphs."""

from __future__ import annotations

import random
import re
from typing import Any

from ..draws import RELATIONS, Word, given
from ..profiles import Profile
from ..registry import constraint
from ..relations import Relation, holds
from ..text import Text
from . import multiif_counts

_DIVIDER = re.compile(r"\s?\*\*\*\s?")
_FIRST_WORD_STOP = frozenset(".,?!'\"")


@constraint(
    "length_constraints:number_sentences",
    instruction="Your response should contain {relation} {num_sentences} sentences.",
    pseudo="assert len(punkt_sentences(response)) {op} {num_sentences}",
    draw={
        "relation": RELATIONS,
        "num_sentences": given("relation", {"less than": range(8, 21), "at least": range(2, 9)}),
    },
)
def number_sentences(t: Text, num_sentences: int, relation: Relation) -> bool:
    if t.profile.has(multiif_counts.MULTIIF_COUNTS):  # the multiif profile: by language
        return holds(relation, multiif_counts.sentence_count(t.raw), num_sentences)
    return holds(relation, len(t.sentences), num_sentences)


@constraint(
    "length_constraints:number_paragraphs",
    instruction="There should be {num_paragraphs} paragraphs. Paragraphs are separated with the "
    "markdown divider: ***",
    pseudo="assert len(split(r'\\s?\\*\\*\\*\\s?', response)) == {num_paragraphs}",
    draw={"num_paragraphs": range(2, 6)},
)
def number_paragraphs(t: Text, num_paragraphs: int) -> bool:
    pieces = _DIVIDER.split(t.raw)
    count = len(pieces)
    for i, piece in enumerate(pieces):
        if not piece.strip():
            if i in (0, len(pieces) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


@constraint(
    "length_constraints:number_words",
    instruction="Answer with {relation} {num_words} words.",
    pseudo="assert len(findall(r'\\w+', response)) {op} {num_words}",
    # Ranges that fit any drawn sentence count: at least ~10 words a sentence either way.
    draw={
        "relation": RELATIONS,
        "num_words": given(
            "relation", {"less than": range(100, 401, 10), "at least": range(50, 251, 10)}
        ),
    },
)
def number_words(t: Text, num_words: int, relation: Relation) -> bool:
    if t.profile.has(multiif_counts.MULTIIF_COUNTS):  # the multiif profile: by language
        return holds(relation, multiif_counts.word_count(t.raw), num_words)
    return holds(relation, len(t.words), num_words)


def _choose_paragraph(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: an ``nth_paragraph`` missing or out of 1..num_paragraphs is drawn
    from 1..num_paragraphs+1 (the top value can never pass); ``first_word`` is lower-cased."""
    nth, total = kwargs["nth_paragraph"], kwargs["num_paragraphs"]
    if nth is None or nth <= 0 or nth > total:
        nth = rng.randint(1, total + 1)
    return {**kwargs, "nth_paragraph": nth, "first_word": kwargs["first_word"].lower()}


@constraint(
    "length_constraints:nth_paragraph_first_word",
    instruction="There should be {num_paragraphs} paragraphs. Paragraphs and only paragraphs are "
    "separated with each other by two new lines as if it was '\\n\\n' in python. "
    "Paragraph {nth_paragraph} must start with word {first_word}.",
    pseudo="p = split('\\n\\n', response); assert count_nonblank(p) == {num_paragraphs} and "
    "first_word(p[{nth_paragraph} - 1]) == {first_word!r}",
    prepare=_choose_paragraph,
    draw={
        "num_paragraphs": range(2, 6),
        "nth_paragraph": lambda rng, drawn: rng.randint(1, drawn["num_paragraphs"]),
        "first_word": Word(),
    },
)
def nth_paragraph_first_word(
    t: Text, num_paragraphs: int, first_word: str, nth_paragraph: int | None = None
) -> bool:
    if nth_paragraph is None:  # _choose_paragraph sets it when the kwargs are bound
        raise TypeError("nth_paragraph is unset: bind the kwargs first (Constraint.bind)")
    pieces = t.raw.split("\n\n")
    count = sum(1 for p in pieces if p.strip())
    if nth_paragraph > count:  # the index goes into the raw split, blank pieces included
        return False
    paragraph = pieces[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    found = []
    for ch in word:
        if ch in _FIRST_WORD_STOP:
            break
        found.append(ch.lower())
    return count == num_paragraphs and "".join(found) == first_word
