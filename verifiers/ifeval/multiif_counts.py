"""The ``multiif`` profile: Multi-IF's language-aware word and sentence counts.

Multi-IF (facebookresearch/Multi-IF, ``ifeval.py``) scores the 25 IFEval ids with IFEval's
semantics except for ``length_constraints:number_words`` and ``number_sentences``, which
first detect the answer's language and then count the way that language is written
(``shared/specs/suites.md`` §2). Under the profile those two checkers call
:func:`word_count` / :func:`sentence_count` here; every other id, and every other profile,
is unchanged, so the ``ifeval`` suite's numbers stay IFEval's.

* Detection: langdetect on the answer, English where it finds nothing. The reference runs
  it unseeded (its result can change from run to run); ours is seeded (``nlp``), so the
  same answer always gets the same count.
* Thai: PyThaiNLP's tokenizers. Where PyThaiNLP is not installed a Thai answer's count is
  :class:`~ifharness.verifiers.ResourceUnavailable` (the instruction is unscorable and says
  why), never an English count passed off as Multi-IF's.
* Hindi sentences: pieces after ``।``, ``!`` or ``?`` followed by whitespace.
* Chinese and Japanese: sentences are runs of non-terminators, each with an optional
  terminator (ASCII and full-width ``! ? .``, ``。``), counted per line; words are one per
  ideograph, kana or hangul character, plus the whitespace tokens left once those and the
  punctuation are taken out, plus each emoji.
* Anything else: IFEval's counts (Punkt sentences, ``\\w+`` words).

Our readings where the description leaves room: a run of only whitespace is not a
sentence; an emoji is counted once (it is taken out before the leftover tokens are split).
"""

from __future__ import annotations

import re
from typing import Any

from ..nlp import detect_language, regex_words, sent_tokenize
from ..profiles import Profile, register_profile
from ..registry import ResourceUnavailable

#: profile flag: number_words / number_sentences count as Multi-IF does
MULTIIF_COUNTS = "multiif-language-counts"
#: profile flag: startend:quotation also takes Multi-IF's “…” and 「…」 as the wrapping quotes
MULTIIF_QUOTES = "multiif-quotes"

MULTIIF = register_profile(
    Profile(
        "multiif",
        "Reference IFEval semantics, with Multi-IF's language-aware word and sentence counts "
        "(zh/ja/hi/th; Thai needs pythainlp) and its curly and corner quotation marks.",
        frozenset({MULTIIF_COUNTS, MULTIIF_QUOTES}),
    )
)

_CJK_LANGS = ("zh", "zh-cn", "zh-tw", "ja")
_HINDI_SPLIT = re.compile(r"(?<=[।!?])\s+")
_CJK_SENTENCE = re.compile(r"[^!?.！？．。\n]+[!?.！？．。]?")
# CJK ideographs (with extension A and compatibility ideographs), kana, hangul
_CJK_CHAR = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"
)
# ASCII punctuation and the CJK / full-width punctuation blocks
_PUNCT = re.compile(
    "[!-/:-@\\[-`{-~\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
    "\u2018-\u201f\u2026\u00b7]"
)


def language(text: str) -> str:
    """The answer's language as langdetect names it; ``en`` when it cannot tell."""
    return detect_language(text) or "en"


def _thai(kind: str) -> Any:
    try:
        from pythainlp import tokenize
    except ImportError:
        raise ResourceUnavailable(
            f"Multi-IF counts Thai {kind} with PyThaiNLP, which is not installed: "
            "pip install pythainlp"
        ) from None
    return tokenize


def sentence_count(text: str) -> int:
    """Sentences of ``text`` as Multi-IF counts them (see the module docstring)."""
    lang = language(text)
    if lang == "th":
        tokenize = _thai("sentences")
        return sum(len(tokenize.sent_tokenize(line)) for line in text.split("\n") if line.strip())
    if lang == "hi":
        return sum(1 for piece in _HINDI_SPLIT.split(text) if piece.strip())
    if lang in _CJK_LANGS:
        return sum(
            1 for line in text.split("\n") for run in _CJK_SENTENCE.findall(line) if run.strip()
        )
    return len(sent_tokenize(text))


def word_count(text: str) -> int:
    """Words of ``text`` as Multi-IF counts them (see the module docstring)."""
    lang = language(text)
    if lang == "th":
        tokenize = _thai("words")
        return len(tokenize.word_tokenize(text))
    if lang in _CJK_LANGS:
        import emoji

        emojis = emoji.emoji_count(text)
        rest = emoji.replace_emoji(_PUNCT.sub(" ", text), replace=" ")
        cjk = len(_CJK_CHAR.findall(rest))
        return cjk + len(_CJK_CHAR.sub(" ", rest).split()) + emojis
    return len(regex_words(text))
