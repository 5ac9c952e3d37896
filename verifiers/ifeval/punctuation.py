"""punctuation:* — forbidden punctuation."""

from __future__ import annotations

from ..registry import constraint
from ..text import Text


@constraint(
    "punctuation:no_comma",
    instruction="In your entire response, refrain from the use of any commas.",
    pseudo="assert ',' not in response",
)
def no_comma(t: Text) -> bool:
    return "," not in t.raw
