"""letters:* — how many ASCII letters; how often one letter (= keywords:letter_frequency)."""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

from ..draws import given
from ..profiles import Profile
from ..registry import REGISTRY, constraint
from ..text import Text
from .ifeval_ids import SUITE, ifeval_constraint

_ASCII_LETTER = re.compile(r"[a-zA-Z]")


def _letters_setup(kwargs: dict[str, Any], rng: random.Random, _: Profile) -> dict[str, Any]:
    """Reference set-up: a falsy ``N`` from 2..3, then a falsy ``relation`` by ``choice``."""
    n = kwargs["N"] or rng.randint(2, 3)
    relation = kwargs["relation"] or rng.choice(("less than", "at least"))
    return {"N": n, "relation": relation}


@constraint(
    "letters:letter_counting",
    instruction="Answer with {relation} {N} letters.",
    pseudo="assert holds({relation!r}, len(findall('[a-zA-Z]', response)), {N})",
    prepare=_letters_setup,
    # Counts a writing answer can meet: a low floor for "at least", a high ceiling for "less
    # than" (the reference's own 2..3 asks for a near-empty or a trivial answer).
    draw={
        "relation": ("less than", "at least"),
        "N": given(
            "relation", {"at least": range(100, 501, 50), "less than": range(1500, 3001, 250)}
        ),
    },
)
def letter_counting(t: Text, N: int = 0, relation: str = "") -> bool:
    # The relation is not validated: any other value returns None there, i.e. not followed.
    count = len(_ASCII_LETTER.findall(t.raw))
    if relation == "at least":
        return count >= N
    if relation == "less than":
        return count < N
    return False


# The reference registers the very class of keywords:letter_frequency under this id: same
# checker, schema, set-up (the a-z guard and its random letter) and instruction text.
if (SUITE, "letters:letter_counting2") not in REGISTRY:  # importlib.reload must not re-add
    REGISTRY.add(
        dataclasses.replace(
            ifeval_constraint("keywords:letter_frequency"),
            id="letters:letter_counting2",
            family="letters",
            suite=SUITE,
        )
    )
