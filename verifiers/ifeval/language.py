"""language:* — the language of the whole response."""

from __future__ import annotations

from ..registry import constraint
from ..text import Text


@constraint(
    "language:response_language",
    instruction="Your ENTIRE response should be in {language} language, no other language is "
    "allowed.",
    pseudo="assert langdetect(response) == {language!r}",
)
def response_language(t: Text, language: str) -> bool:
    # Reference rule: when langdetect finds no features it raises, and that counts as followed.
    return t.language is None or t.language == language
