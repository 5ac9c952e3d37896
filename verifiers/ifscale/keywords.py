"""``keywords:include_exact``: the answer must hold one keyword as the exact word.

Two inclusion rules (see the package docstring): rule (b), the default, searches
``\\b<keyword>\\b`` in the lower-cased answer, as IFScale's published numbers do; rule (a),
profile ``ifscale-token``, needs a whitespace token equal to the keyword once emphasis and edge
punctuation are stripped, as IFScale's runner does.

:func:`classify_miss` sorts a keyword the answer did not include into *omitted* (nothing like
it is there) or *modified* (it is there, but only in a changed form), for the density metrics'
error taxonomy.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import Field

from ..draws import Word
from ..registry import constraint
from ..text import Text
from . import TOKEN_RULE

# Rule (a)'s clean-up, in IFScale's runner order: emphasis pairs (bold before italics, so
# ``**x**`` is not read as two italic spans), then lower-case, whitespace split, edge strip.
_EMPHASIS = (
    re.compile(r"\*\*(.+?)\*\*"),
    re.compile(r"__(.+?)__"),
    re.compile(r"\*(.+?)\*"),
    re.compile(r"_(.+?)_"),
)
_EDGE = '.,!?()[]{}":;*_'


@functools.lru_cache(maxsize=8)
def tokens(raw: str) -> frozenset[str]:
    """Rule (a)'s tokens of an answer. Cached: a density prompt checks hundreds of keywords
    against the same answer, and the split is the costly part."""
    text = raw
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    return frozenset(t.strip(_EDGE) for t in text.lower().split())


@functools.lru_cache(maxsize=8192)
def _word_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(r"\b" + re.escape(keyword.lower()) + r"\b")


def included_by_word_boundary(keyword: str, raw: str) -> bool:
    """Rule (b): ``\\b<keyword>\\b`` in the lower-cased text."""
    return _word_pattern(keyword).search(raw.lower()) is not None


def included_by_token(keyword: str, raw: str) -> bool:
    """Rule (a): some cleaned whitespace token equals the keyword (``*`` = any characters)."""
    kw = keyword.lower()
    toks = tokens(raw)
    if "*" not in kw:
        return kw in toks
    pattern = re.compile(".*".join(re.escape(part) for part in kw.split("*")))
    return any(pattern.fullmatch(t) for t in toks)


def included(keyword: str, t: Text) -> bool:
    """Whether ``t`` includes ``keyword`` under the rule its profile selects."""
    if t.profile.has(TOKEN_RULE):
        return included_by_token(keyword, t.raw)
    return included_by_word_boundary(keyword, t.raw)


@constraint(
    "keywords:include_exact",
    instruction="Include the exact word: '{keyword}'.",
    pseudo="assert contains_exact_word(response, {keyword!r})",
    draw={"keyword": Word()},
)
def include_exact(t: Text, keyword: Annotated[str, Field(min_length=1)]) -> bool:
    return included(keyword, t)


# ------------------------------------------------------------------ the error taxonomy

#: The kinds of modified form :func:`classify_miss` names, most specific first.
MODIFIED_FORMS = ("hyphenated", "possessive", "punctuation", "inflected")


def prefix(keyword: str) -> str:
    """IFScale's stem for "modified": the first ``max(3, floor(0.8 * len))`` characters."""
    return keyword[: max(3, int(0.8 * len(keyword)))]


_WORDS = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")


def classify_miss(keyword: str, raw: str) -> tuple[str, str | None]:
    """``("omitted", None)`` or ``("modified", form)`` for a keyword the answer missed.

    ``form`` is the first of these that holds (checked on the lower-cased answer):

    * ``hyphenated``: the keyword is part of a hyphenated compound ("customer-driven") or
      split by hyphens ("custo-mer"); only rule (a) misses these;
    * ``possessive``: "customer's", "customer’s"; only rule (a) misses these;
    * ``punctuation``: the keyword stands as a word but with other characters attached that
      rule (a) does not strip ("'customer'", "customer/client");
    * ``inflected``: IFScale's rule, a word that starts with the keyword's :func:`prefix` and
      is not the keyword ("customers", "analyzed" for "analyze"). Like IFScale's, the rule is
      generous ("bullet" counts for "bulk"); it is kept so that omission/modification shares
      compare with IFScale's published ones.

    Case is not a form: both inclusion rules fold case, so "Customer" is never a miss.
    """
    kw = keyword.lower()
    low = raw.lower()
    words = _WORDS.findall(low)
    for w in words:
        if "-" in w and (kw in w.split("-") or w.replace("-", "") == kw):
            return "modified", "hyphenated"
    for w in words:
        if w in (f"{kw}'s", f"{kw}’s"):
            return "modified", "possessive"
    if included_by_word_boundary(kw, low):
        return "modified", "punctuation"
    stem = prefix(kw)
    if re.search(r"\b" + re.escape(stem) + r"[a-z]*\b", low):
        return "modified", "inflected"
    return "omitted", None
