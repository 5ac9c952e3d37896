"""new:* — copy a character span of the request."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from ..draws import PROMPT
from ..profiles import Profile
from ..registry import KwargsError, constraint
from ..text import Text


def _span_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``n_start`` is drawn from 0..len-2, then a falsy ``n_end``
    from n_start+1..len-1. A 0 counts as missing, so ``n_start = 0`` is always redrawn."""
    prompt = kwargs["prompt_to_repeat"]
    n_start, n_end = kwargs["n_start"], kwargs["n_end"]
    try:
        if not n_start:
            n_start = rng.randint(0, len(prompt) - 2)
        if not n_end:
            n_end = rng.randint(n_start + 1, len(prompt) - 1)
    except ValueError:
        raise KwargsError(
            f"new:copy_span_idx: cannot draw a span in a {len(prompt)}-character prompt "
            f"(n_start={kwargs['n_start']!r}, n_end={kwargs['n_end']!r}); give both indices"
        ) from None
    return {"prompt_to_repeat": prompt, "n_start": n_start, "n_end": n_end}


def _draw_start(rng: random.Random, drawn: Mapping[str, Any]) -> int:
    """A start index inside the prompt, never 0: set-up redraws a 0 (a falsy index) at random,
    and a generated sample must mean what its kwargs say."""
    return rng.randint(1, max(1, len(drawn["prompt_to_repeat"]) - 12))


def _draw_end(rng: random.Random, drawn: Mapping[str, Any]) -> int:
    """An end index 10-60 characters after the start (a phrase-sized span, not the reference's
    anywhere-to-the-end draw), inside the prompt and above the start, so never 0."""
    start, prompt = drawn["n_start"], drawn["prompt_to_repeat"]
    return max(start + 1, min(len(prompt), start + rng.randint(10, 60)))


@constraint(
    "new:copy_span_idx",
    instruction="Copy the span of words that lies between (and including) index {n_start} and "
    "{n_end}, the indices are character indices!",
    pseudo="assert lower(strip(response)) == lower(strip({prompt_to_repeat!r}[{n_start}:{n_end}]))",
    prepare=_span_setup,
    draw={"prompt_to_repeat": PROMPT, "n_start": _draw_start, "n_end": _draw_end},
)
def copy_span_idx(
    t: Text, prompt_to_repeat: Annotated[str, Field(min_length=1)], n_start: int = 0, n_end: int = 0
) -> bool:
    # Python slicing: the end index is excluded although the instruction says "including".
    return t.raw.strip().lower() == prompt_to_repeat[n_start:n_end].strip().lower()
