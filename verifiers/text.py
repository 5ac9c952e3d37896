"""One response, analysed lazily and once.

Ten constraints on one answer share one ``Text``: each analysis (words, sentences, Treebank
tokens, language, …) is computed on first use and cached on the object. Loose mode's
variants are ``Text`` objects too, built once per response.
"""

from __future__ import annotations

from functools import cached_property

from . import nlp
from .profiles import Profile, REFERENCE


class Text:
    """A response plus its cached analyses. Verifiers read attributes; they never mutate."""

    def __init__(self, raw: str, profile: Profile = REFERENCE):
        self.raw = raw
        self.profile = profile

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
        """Punkt English sentences (NLTK's ``sent_tokenize``)."""
        return nlp.sent_tokenize(self.raw)

    @cached_property
    def word_tokens(self) -> list[str]:
        """NLTK's ``word_tokenize`` tokens (Punkt, then the improved Treebank splitter)."""
        return nlp.word_tokenize(self.raw, self.sentences)

    @cached_property
    def language(self) -> str | None:
        """langdetect's code for the text (seeded), or None when it finds no features."""
        return nlp.detect_language(self.raw)

    @cached_property
    def lines(self) -> list[str]:
        return self.raw.split("\n")

    @cached_property
    def loose_variants(self) -> list["Text"]:
        """The reference's loose variants 2–8 that are non-blank, in order.

        Variant 1 (the response itself) is left out: its verdict is the strict one.
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
        return [Text(c, self.profile) for c in candidates if c.strip()]
