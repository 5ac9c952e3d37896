"""detectable_format:* — hyphen-joined sentences, bracketed words, wrapped bigrams."""

from __future__ import annotations

from ..registry import constraint
from ..rule_sentences import split_into_sentences
from ..text import Text


@constraint(
    "detectable_format:sentence_hyphens",
    instruction="All sentences must be connected using hyphens, with no spaces between them.",
    pseudo="assert all(p == s for p, s in zip(split('-', response), "
    "rule_sentences(replace('-', ' ', response))))",
)
def sentence_hyphens(t: Text) -> bool:
    # The reference sentences come from a rewritten copy (hyphens as spaces), so they are not
    # the response's own. Only as many positions as the shorter list has are compared; a
    # piece with surrounding whitespace never equals a (stripped) sentence.
    pieces = t.raw.split("-")
    return all(p == s for p, s in zip(pieces, split_into_sentences(t.raw.replace("-", " "))))


@constraint(
    "detectable_format:square_brackets",
    instruction="Enclose every word in your response within square brackets.",
    pseudo="assert all(w.startswith('[') and w.endswith(']') for w in split(response))",
)
def square_brackets(t: Text) -> bool:
    return all(w.startswith("[") and w.endswith("]") for w in t.ws_tokens)


@constraint(
    "detectable_format:bigram_wrapping",
    instruction="Wrap every word bigram in double angular brackets, such as <<I am>> <<at home>> "
    "<<with my>> <<cute dog>>.",
    pseudo="w = split(response); assert all(w[i].startswith('<<') and w[i + 1].endswith('>>') "
    "for i in range(0, len(w) - 1, 2))",
)
def bigram_wrapping(t: Text) -> bool:
    # Whitespace tokens in pairs; an odd last token is never checked.
    w = t.ws_tokens
    return all(w[i].startswith("<<") and w[i + 1].endswith(">>") for i in range(0, len(w) - 1, 2))
