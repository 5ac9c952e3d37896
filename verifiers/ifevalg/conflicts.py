"""Which IFEvalG ids must not share a prompt (open-instruct's ``INSTRUCTION_CONFLICTS``).

Data for prompt generation only: no checker or verifier reads it (``shared/specs/ifevalg.md``
§6). ``conflicts.json`` beside this module is the reference's table as it stands, one entry per
id of the 54; it is one-sided in places (376 pairs where A lists B but B does not list A), so
this module gives :func:`symmetric_table` (the registry's ``conflict_make``: if A lists B, B gets
A, and every id gets itself), which has 408 unordered pairs of distinct conflicting ids. The
generator reads it through ``ifharness.verifiers.conflicts.conflict_map("ifevalg")``.

>>> from ifharness.verifiers.ifevalg.conflicts import conflicts
>>> conflicts("copy:copy", "punctuation:no_comma")
True
>>> conflicts("punctuation:no_comma", "keywords:palindrome")
False
"""

from __future__ import annotations

import functools

from ..conflicts import Table, raw_conflicts, symmetrise

_SUITE = __name__.rpartition(".")[0].rpartition(".")[2]  # ifevalg


def raw_table() -> Table:
    """The reference's table: id -> the ids it lists (itself included), in registry order."""
    return raw_conflicts(_SUITE)


def symmetric_table() -> Table:
    """``conflict_make``'s form: symmetric, and every id conflicts with itself.

    The reference's table only; ``ifharness.verifiers.conflicts.conflict_map("ifevalg")``, which
    the generator uses, adds IFEval's conflicts between the 25 checkers the suites share.
    """
    return _symmetric()


@functools.lru_cache(maxsize=1)
def _symmetric() -> Table:
    return symmetrise(raw_table())


def conflicts(a: str, b: str) -> bool:
    """Whether ids ``a`` and ``b`` must not appear in one prompt (symmetric; ``a == b`` too)."""
    table = symmetric_table()
    for cid in (a, b):
        if cid not in table:
            raise KeyError(f"{cid!r} is not an IFEvalG id; the conflict table has the 54 ids")
    return b in table[a]


def conflicting_pairs() -> set[frozenset[str]]:
    """Every unordered pair of distinct ids that conflict (after symmetrising)."""
    return {frozenset((a, b)) for a, listed in symmetric_table().items() for b in listed if a != b}
