"""combination:* — two answers, or the prompt repeated first."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..draws import PROMPT
from ..registry import constraint
from ..text import Text


@constraint(
    "combination:two_responses",
    instruction="Give two different responses. Responses and only responses should be separated by "
    "6 asterisk symbols: ******.",
    pseudo="parts = split('******', response); "
    "assert len(nonblank(parts)) == 2 and parts[0].strip() != parts[1].strip()",
)
def two_responses(t: Text) -> bool:
    pieces = t.raw.split("******")
    kept = []
    for i, piece in enumerate(pieces):
        if not piece.strip():
            if i not in (0, len(pieces) - 1):
                return False
        else:
            kept.append(piece)
    return len(kept) == 2 and kept[0].strip() != kept[1].strip()


@constraint(
    "combination:repeat_prompt",
    instruction="First repeat the request word for word without change, then give your answer "
    "(1. do not say any words or characters before repeating the request; "
    "2. the request you need to repeat does not include this sentence) {prompt_to_repeat}",
    pseudo="assert lower(strip(response)).startswith(lower(strip({prompt_to_repeat!r})))",
    draw={"prompt_to_repeat": PROMPT},
)
def repeat_prompt(t: Text, prompt_to_repeat: Annotated[str, Field(min_length=1)]) -> bool:
    return t.stripped.lower().startswith(prompt_to_repeat.strip().lower())
