"""startend:* — how the response ends, or what wraps it."""

from __future__ import annotations

from ..registry import constraint
from ..text import Text

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
    return len(s) > 1 and s[0] == '"' and s[-1] == '"'
