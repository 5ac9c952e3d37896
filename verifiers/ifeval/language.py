"""language:* — the language of the whole response."""

from __future__ import annotations

from ..registry import constraint
from ..text import Text

#: Languages a generated prompt asks for (langdetect codes, which the checker compares).
LANGUAGES = ["es", "fr", "de", "it", "pt", "nl", "pl", "sv", "fi", "ru"]
#: How the instruction names a language: by its English name, as IFEval's own prompts do
#: ("... should be in Portuguese language"): the reference's 30 codes, plus Dutch and Swedish,
#: which the generator also draws.
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi",
    "fr": "French", "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian",
    "bn": "Bengali", "uk": "Ukrainian", "th": "Thai", "ur": "Urdu", "ta": "Tamil",
    "te": "Telugu", "bg": "Bulgarian", "ko": "Korean", "pl": "Polish", "he": "Hebrew",
    "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili", "kn": "Kannada",
    "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
    "nl": "Dutch", "sv": "Swedish",
}  # fmt: skip


@constraint(
    "language:response_language",
    instruction="Your ENTIRE response should be in {language} language, no other language is "
    "allowed.",
    pseudo="assert langdetect(response) == {language!r}",
    # langdetect codes of languages written with spaces between words and Latin or Cyrillic
    # sentence punctuation, so word and sentence counts still mean what they say.
    draw={"language": LANGUAGES},
    wording={"language": LANGUAGE_NAMES},
)
def response_language(t: Text, language: str) -> bool:
    # Reference rule: when langdetect finds no features it raises, and that counts as followed.
    return t.language is None or t.language == language
