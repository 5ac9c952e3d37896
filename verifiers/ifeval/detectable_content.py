"""detectable_content:* — placeholders and postscripts."""

from __future__ import annotations

import re

from ..registry import constraint
from ..text import Text

_PLACEHOLDER = re.compile(r"\[.*?\]")
# The reference's patterns are ``\s*`` + marker + ``.*$`` (MULTILINE), searched. A leading
# ``\s*`` may match nothing and ``.*$`` always matches, so a search succeeds exactly where
# the marker alone is found; the marker alone avoids rescanning every whitespace run from
# each of its positions (quadratic: half a minute on 200k newlines).
_PPS = re.compile(r"p\.\s?p\.\s?s")
_PS = re.compile(r"p\.\s?s\.")
_PLAIN_MARKER = re.compile(r"[\w. ]+")


@constraint(
    "detectable_content:number_placeholders",
    instruction="The response must contain at least {num_placeholders} placeholders represented by "
    "square brackets, such as [address].",
    pseudo="assert len(findall(r'\\[.*?\\]', response)) >= {num_placeholders}",
    draw={"num_placeholders": range(1, 5)},
)
def number_placeholders(t: Text, num_placeholders: int) -> bool:
    return len(_PLACEHOLDER.findall(t.raw)) >= num_placeholders


@constraint(
    "detectable_content:postscript",
    instruction="At the end of your response, please explicitly add a postscript starting with "
    "{postscript_marker}",
    pseudo="assert search(marker_pattern({postscript_marker!r}), lower(response), MULTILINE)",
    draw={"postscript_marker": ["P.S.", "P.P.S"]},
)
def postscript(t: Text, postscript_marker: str) -> bool:
    # Not anchored to a line start or to the end: a "p.s." anywhere passes (reference).
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = _PPS
    elif marker == "P.S.":
        pattern = _PS
    elif _PLAIN_MARKER.fullmatch(marker):  # no operator: found alone, as above
        pattern = re.compile(marker.lower())
    else:
        pattern = re.compile(r"\s*" + marker.lower() + r".*$", flags=re.MULTILINE)
    return pattern.search(t.lower) is not None
