"""startend:* — how the response ends, or what wraps it."""

from __future__ import annotations

from ..registry import constraint
from ..text import Text
from .multiif_counts import MULTIIF_QUOTES

#: End phrases a generated prompt asks for: no comma (``punctuation:no_comma`` may share the
#: prompt) and no word of ``common_words.txt`` (a drawn forbidden word may too).
END_PHRASES = [
    "Is there anything else I can help with?",
    "Let me know if you have any questions.",
    "That is all for today.",
    "Thank you for reading.",
    "Hope this helps!",
    "Any other questions?",
    "Those are my thoughts.",
]


@constraint(
    "startend:end_checker",
    instruction="Finish your response with this exact phrase {end_phrase}. No other words should "
    "follow this phrase.",
    pseudo="assert lower(strip(response).strip('\"')).endswith(lower({end_phrase!r}))",
    draw={"end_phrase": END_PHRASES},
)
def end_checker(t: Text, end_phrase: str) -> bool:
    return t.stripped.strip('"').lower().endswith(end_phrase.strip().lower())


@constraint(
    "startend:quotation",
    instruction="Wrap your entire response with double quotation marks.",
    pseudo="r = strip(response); assert len(r) > 1 and r[0] == r[-1] == '\"'",
)
def quotation(t: Text) -> bool:
    s = t.stripped
    if len(s) < 2:
        return False
    if s[0] == '"' and s[-1] == '"':
        return True
    # Multi-IF's checker also takes the quotation marks of its other languages
    return t.profile.has(MULTIIF_QUOTES) and (s[0], s[-1]) in (
        ("\u201c", "\u201d"),
        ("\u300c", "\u300d"),
    )
