"""detectable_content:* — placeholders and postscripts."""

from __future__ import annotations

import re

from ..registry import constraint
from ..text import Text

_PLACEHOLDER = re.compile(r"\[.*?\]")
_PPS = re.compile(r"\s*p\.\s?p\.\s?s.*$", flags=re.MULTILINE)
_PS = re.compile(r"\s*p\.\s?s\..*$", flags=re.MULTILINE)


@constraint(
    "detectable_content:number_placeholders",
    instruction="The response must contain at least {num_placeholders} placeholders represented by "
    "square brackets, such as [address].",
    pseudo="assert len(findall(r'\\[.*?\\]', response)) >= {num_placeholders}",
)
def number_placeholders(t: Text, num_placeholders: int) -> bool:
    return len(_PLACEHOLDER.findall(t.raw)) >= num_placeholders


@constraint(
    "detectable_content:postscript",
    instruction="At the end of your response, please explicitly add a postscript starting with "
    "{postscript_marker}",
    pseudo="assert search(marker_pattern({postscript_marker!r}), lower(response), MULTILINE)",
)
def postscript(t: Text, postscript_marker: str) -> bool:
    # Not anchored to a line start or to the end: a "p.s." anywhere passes (reference).
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = _PPS
    elif marker == "P.S.":
        pattern = _PS
    else:
        pattern = re.compile(r"\s*" + marker.lower() + r".*$", flags=re.MULTILINE)
    return pattern.search(t.lower) is not None
