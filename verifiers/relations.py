"""Count comparisons shared by the suites."""

from __future__ import annotations

from typing import Literal

#: IFEval's two relations: ``less than`` is strict (<), ``at least`` is >=.
Relation = Literal["less than", "at least"]

SYMBOL = {"less than": "<", "at least": ">="}


def holds(relation: Relation, actual: int, n: int) -> bool:
    return actual < n if relation == "less than" else actual >= n
