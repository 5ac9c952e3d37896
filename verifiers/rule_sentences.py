"""The rule-based sentence splitter of IFEval's utility module (``split_into_sentences``).

IFEval ships it but no registered IFEval checker uses it; five IFEvalG checkers do
(``sentence_hyphens``, ``first_word_sent``, ``last_word_sent``, ``counting_composition``,
``keyword_specific_position``), and so did IFBench until December 2025 (its ``ifbench-2025``
profile). It needs no data files, so it is never unavailable. The rules
and their order are ``shared/specs/ifevalg.md`` §4 "Shared text tools"; the order matters,
because each rule sees the markers the earlier ones inserted.

The splitter works by inserting two literal markers: ``<prd>`` for a dot that does not end a
sentence and ``<stop>`` for a sentence end. The same strings written in a text act as markers
too (``<stop>`` splits there, ``<prd>`` comes out as a dot): that is the reference's
behaviour, so it is kept.

Use :attr:`ifharness.verifiers.Text.rule_sentences` for a response (computed once per text);
call :func:`split_into_sentences` for any other string (``sentence_hyphens`` splits a
rewritten copy of the response).
"""

from __future__ import annotations

import functools
import re

PRD = "<prd>"
STOP = "<stop>"

_LETTER = "([A-Za-z])"
# Words that start a new sentence after an acronym or a company suffix. Some carry a trailing
# \s inside the group; the replacement puts the group back, so nothing is lost.
_STARTERS = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s"
    r"|However\s|That\s|This\s|Wherever)"
)
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"

# (pattern, replacement) in the reference's order. Titles and web suffixes have no word
# boundary: "some.meaning" is protected by the ".me" rule.
_PROTECT_EARLY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(Mr|St|Mrs|Ms|Dr)[.]"), r"\1" + PRD),
    (re.compile(r"[.](com|net|org|io|gov|edu|me)"), PRD + r"\1"),
    (re.compile(r"([0-9])[.]([0-9])"), r"\1" + PRD + r"\2"),
)
_DOT_RUN = re.compile(r"\.{2,}")  # every dot of the run protected; the run as a whole ends one
_PROTECT_LATE: tuple[tuple[re.Pattern[str], str], ...] = (
    # an initial: a single letter after whitespace, then dot and space ("J. Smith")
    (re.compile(r"\s" + _LETTER + r"[.] "), " " + r"\1" + PRD + " "),
    # a dotted capital acronym before a sentence starter *ends* the sentence
    (re.compile(r"([A-Z][.][A-Z][.](?:[A-Z][.])?) " + _STARTERS), r"\1" + STOP + r" \2"),
    (re.compile(_LETTER + "[.]" + _LETTER + "[.]" + _LETTER + "[.]"), rf"\1{PRD}\2{PRD}\3{PRD}"),
    (re.compile(_LETTER + "[.]" + _LETTER + "[.]"), rf"\1{PRD}\2{PRD}"),
    # "Inc. They …": the sentence ends and the suffix's dot is dropped
    (re.compile(" " + _SUFFIXES + "[.] " + _STARTERS), r" \1" + STOP + r" \2"),
    (re.compile(" " + _SUFFIXES + "[.]"), r" \1" + PRD),
    (re.compile(" " + _LETTER + "[.]"), r" \1" + PRD),
)
# Sentence punctuation moves outside a closing quote, so the quote stays in its sentence.
_QUOTE_SWAPS = ((".\u201d", "\u201d."), ('."', '".'), ('!"', '"!'), ('?"', '"?'))


@functools.lru_cache(maxsize=256)
def split_tuple(text: str) -> tuple[str, ...]:
    s = (" " + text + "  ").replace("\n", " ")
    for pattern, repl in _PROTECT_EARLY:
        s = pattern.sub(repl, s)
    s = _DOT_RUN.sub(lambda m: PRD * len(m.group(0)) + STOP, s)
    s = s.replace("Ph.D.", f"Ph{PRD}D{PRD}")
    for pattern, repl in _PROTECT_LATE:
        s = pattern.sub(repl, s)
    for before, after in _QUOTE_SWAPS:
        s = s.replace(before, after)
    for mark in ".?!":
        s = s.replace(mark, mark + STOP)
    pieces = [p.strip() for p in s.replace(PRD, ".").split(STOP)]
    if pieces and not pieces[-1]:
        pieces.pop()
    return tuple(pieces)


def split_into_sentences(text: str) -> list[str]:
    """The reference's sentences of ``text``: stripped pieces, each ending in its ``.?!``.

    Text without a terminal mark is one sentence; a blank text has none. Punctuation-only
    pieces are kept (``"Wow!! Ok."`` gives ``Wow!``, ``!``, ``Ok.``), and the returned text
    can differ from the input (quote swaps, a dropped ``Inc.`` dot).
    """
    return list(split_tuple(text))
