"""punctuation:* (new ids) — no ASCII dot, no ASCII exclamation mark.

IFEval's ``punctuation:no_comma`` is registered in this suite by ``ifeval_ids``.
"""

from __future__ import annotations

from ..registry import constraint
from ..text import Text


@constraint(
    "punctuation:punctuation_dot",
    instruction="In your entire response, refrain from the use of . (i.e. dots) as punctuation "
    "and in general.",
    pseudo="assert '.' not in response",
)
def punctuation_dot(t: Text) -> bool:
    return "." not in t.raw  # ASCII only: "…" and "。" are not dots here


@constraint(
    "punctuation:punctuation_exclamation",
    instruction="In your entire response, refrain from the use of ! (i.e. exclamation marks) as "
    "punctuation and in general.",
    pseudo="assert '!' not in response",
)
def punctuation_exclamation(t: Text) -> bool:
    return "!" not in t.raw  # ASCII only: "！" is not detected
