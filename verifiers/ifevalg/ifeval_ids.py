"""The 25 IFEval ids, registered in this suite with IFEval's own checkers.

open-instruct's IFEvalG copies IFEval's checker classes; every method is behaviourally
identical to lm-eval 0.4.13's (``shared/specs/ifevalg.md`` §3). So the constraints here are
IFEval's ``Constraint`` objects with only ``suite`` changed: same function, same kwargs schema,
same ``prepare``. That sameness is what lets the registry resolve a bare IFEval id although two
suites define it (``Registry.lookup``), and a fix to an IFEval checker is a fix here too.
"""

from __future__ import annotations

import dataclasses
import importlib

from ..registry import REGISTRY, Constraint

#: In the reference's registry order (the first 25 of the 54).
IFEVAL_IDS: tuple[str, ...] = (
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:quotation",
)

_IFEVAL_MODULES = (
    "change_case",
    "combination",
    "detectable_content",
    "detectable_format",
    "keywords",
    "language",
    "length_constraints",
    "punctuation",
    "startend",
)


_VERIFIERS, SUITE = __name__.rsplit(".", 2)[:2]  # "ifharness.verifiers", "ifevalg"


def ifeval_constraint(cid: str) -> Constraint:
    """IFEval's constraint ``cid`` (its modules are imported first, so it is registered)."""
    for module in _IFEVAL_MODULES:
        importlib.import_module(f"{_VERIFIERS}.ifeval.{module}")
    return REGISTRY.lookup(cid, "ifeval")


def _register() -> None:
    for cid in IFEVAL_IDS:
        if (SUITE, cid) not in REGISTRY:  # importlib.reload must not register twice
            REGISTRY.add(dataclasses.replace(ifeval_constraint(cid), suite=SUITE))


_register()
