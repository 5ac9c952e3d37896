"""One response, analysed lazily and once.

Ten constraints on one answer share one ``Text``: each analysis (words, sentences, Treebank
tokens, language, …) is computed on first use and cached on the object. Loose mode's
variants are ``Text`` objects too, built once per response.

A ``Text`` also carries the language it is written in (``language=``, stored as ``lang``;
English by default), which decides the sentence splitter: English uses Punkt exactly as
before, and a language pack can bring its own with :func:`register_sentence_splitter`.
This is the *expected* language; ``Text.language`` stays what langdetect detects.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from . import nlp, rule_sentences
from .profiles import REFERENCE, Profile

SentenceSplitter = Callable[[str], list[str]]

_SENTENCE_SPLITTERS: dict[str, SentenceSplitter] = {}  # English is nlp.sent_tokenize, inline


def register_sentence_splitter(language: str, split: SentenceSplitter) -> None:
    """Let ``Text(..., language=language)`` split sentences with ``split``."""
    if language == "en":
        raise ValueError("English sentences are Punkt's (reference semantics); not replaceable")
    _SENTENCE_SPLITTERS[language] = split


class Text:
    """A response plus its cached analyses. Verifiers read attributes; they never mutate."""

    def __init__(self, raw: str, profile: Profile = REFERENCE, language: str = "en"):
        if language != "en" and language not in _SENTENCE_SPLITTERS:
            raise ValueError(
                f"no sentence splitter for language {language!r}; a language pack registers "
                "one with ifharness.verifiers.register_sentence_splitter"
            )
        self.raw = raw
        self.profile = profile
        self.lang = language

    def __repr__(self) -> str:
        return f"Text({self.raw[:40]!r}{'…' if len(self.raw) > 40 else ''})"

    @cached_property
    def stripped(self) -> str:
        return self.raw.strip()

    @cached_property
    def lower(self) -> str:
        return self.raw.lower()

    @cached_property
    def is_blank(self) -> bool:
        return not self.stripped

    @cached_property
    def ws_tokens(self) -> list[str]:
        """Whitespace-separated tokens (``str.split()`` with no argument): IFBench's words."""
        return self.raw.split()

    @cached_property
    def words(self) -> list[str]:
        """Runs of ``\\w`` characters (IFEval's word count)."""
        return nlp.regex_words(self.raw)

    @cached_property
    def sentences(self) -> list[str]:
        """Punkt English sentences (NLTK's ``sent_tokenize``), or the language pack's."""
        if self.lang == "en":
            return nlp.sent_tokenize(self.raw)
        return _SENTENCE_SPLITTERS[self.lang](self.raw)

    @cached_property
    def word_tokens(self) -> list[str]:
        """NLTK's ``word_tokenize`` tokens (Punkt, then the improved Treebank splitter)."""
        return nlp.word_tokenize(self.raw, self.sentences)

    @cached_property
    def rule_sentences(self) -> list[str]:
        """IFEval's rule-based sentences (``split_into_sentences``, :mod:`.rule_sentences`):
        five IFEvalG checks and IFBench's 2025 profile use it.

        Not Punkt and independent of ``language``: the reference applies the same English rules
        to any text.
        """
        return rule_sentences.split_into_sentences(self.raw)

    @cached_property
    def language(self) -> str | None:
        """langdetect's code for the text (seeded), or None when it finds no features."""
        return nlp.detect_language(self.raw)

    @cached_property
    def lines(self) -> list[str]:
        return self.raw.split("\n")

    @cached_property
    def loose_variants(self) -> list[Text]:
        """The reference's loose variants 2–8 that are non-blank, in order, each text once.

        Variant 1 (the response itself) is left out: its verdict is the strict one. So is a
        variant equal to the response (no ``*`` to remove) or to an earlier variant: checkers
        are deterministic, so a repeated text repeats a verdict that did not pass (the loose
        pass stops at the first pass), and its error, if any, is the earlier one's too.
        Verdicts are those of the reference's eight tries; texts without ``*`` get 3 at most.
        """
        lines = self.lines
        first_dropped = "\n".join(lines[1:]).strip()
        last_dropped = "\n".join(lines[:-1]).strip()
        both_dropped = "\n".join(lines[1:-1]).strip()
        candidates = [
            self.raw.replace("*", ""),
            first_dropped,
            last_dropped,
            both_dropped,
            first_dropped.replace("*", ""),
            last_dropped.replace("*", ""),
            both_dropped.replace("*", ""),
        ]
        seen = {self.raw}
        out = []
        for c in candidates:
            if c not in seen and c.strip():
                seen.add(c)
                out.append(Text(c, self.profile, self.lang))
        return out
