"""paragraphs:* — exactly two paragraphs, split by ``***`` or by a blank line."""

from __future__ import annotations

from ..ifeval.length_constraints import number_paragraphs
from ..registry import constraint
from ..text import Text


@constraint(
    "paragraphs:paragraphs",
    instruction="There should be 2 paragraphs. Paragraphs are separated with the markdown "
    "divider: ***",
    pseudo="assert len(split(r'\\s?\\*\\*\\*\\s?', response)) == 2",
)
def paragraphs(t: Text) -> bool:
    # The reference's class is number_paragraphs with the count fixed at 2.
    return number_paragraphs(t, 2)


@constraint(
    "paragraphs:paragraphs2",
    instruction="There should be 2 paragraphs. Paragraphs and only paragraphs are separated with "
    "each other by two line breaks. ",
    pseudo="p = split('\\n\\n', response); "
    "assert len(nonblank(p)) == 2 and all(x.strip() for x in p[1:-1])",
)
def paragraphs2(t: Text) -> bool:
    # Unlike IFEval's nth_paragraph_first_word, a blank piece between two paragraphs fails
    # instead of being skipped; blank first and last pieces are discounted.
    pieces = t.raw.split("\n\n")
    count = len(pieces)
    for i, piece in enumerate(pieces):
        if not piece.strip():
            if i in (0, len(pieces) - 1):
                count -= 1
            else:
                return False
    return count == 2
