"""detectable_format:* — bullets, highlights, sections, JSON, titles, fixed answers."""

from __future__ import annotations

import json
import re

from ..registry import constraint
from ..text import Text

_STAR_BULLET = re.compile(r"^\s*\*[^\*].*$", flags=re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", flags=re.MULTILINE)
_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_BOLD = re.compile(r"\*\*[^\n\*]*\*\*")
_TITLE = re.compile(r"<<[^\n]+>>")
_ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@constraint(
    "detectable_format:number_bullet_lists",
    instruction="Your answer must contain exactly {num_bullets} bullet points. Use the markdown "
    "bullet points such as:\n"
    "* This is point 1.\n* This is point 2",
    pseudo="assert count_lines(r'^\\s*\\*[^*]') + count_lines(r'^\\s*-') == {num_bullets}",
    draw={"num_bullets": range(2, 7)},
)
def number_bullet_lists(t: Text, num_bullets: int) -> bool:
    return _bullets(t.raw, "*") + _bullets(t.raw, "-") == num_bullets


# The line-start whitespace run the bullet patterns begin with (``\s*`` after ``^``).
_RUN = re.compile(r"^\s*", flags=re.MULTILINE)


def _bullets(raw: str, mark: str) -> int:
    r"""``len(findall(r"^\s*\*[^\*].*$", raw, M))`` (``mark="*"``) or
    ``len(findall(r"^\s*-.*$", raw, M))`` (``mark="-"``), counted in linear time.

    The patterns' ``\s*`` spans newlines, so on many blank lines ``findall`` rescans the same
    run from every line start in it (quadratic: a minute on 200k newlines). Every line start
    inside one whitespace run meets the same first non-space character, so the run is looked
    at once: a match needs that character to be the mark (for ``*``, followed by a character
    other than ``*``, newline included) and ends where ``.*`` stops, at the next newline.
    Texts with few lines keep the patterns themselves.
    """
    if raw.count("\n") < 64:
        return len((_STAR_BULLET if mark == "*" else _DASH_BULLET).findall(raw))
    count, pos, size = 0, 0, len(raw)
    star = mark == "*"
    while pos <= size:
        m = _RUN.search(raw, pos)
        if m is None:
            break
        q = m.end()
        if q < size and raw[q] == mark and (not star or (q + 1 < size and raw[q + 1] != "*")):
            count += 1
            end = raw.find("\n", q + 2 if star else q + 1)
            pos = size if end < 0 else end
            if pos == size:
                break
        else:
            pos = q + 1
    return count


@constraint(
    "detectable_format:constrained_response",
    instruction="Answer with one of the following options: "
    "('My answer is yes.', 'My answer is no.', 'My answer is maybe.')",
    pseudo="assert any(option in strip(response) for option in OPTIONS)",
)
def constrained_response(t: Text) -> bool:
    return any(option in t.stripped for option in _ANSWERS)


@constraint(
    "detectable_format:number_highlighted_sections",
    instruction="Highlight at least {num_highlights} sections in your answer with markdown, i.e. "
    "*highlighted section*.",
    pseudo="assert count(nonblank(findall(r'\\*[^\\n*]*\\*')) + "
    "nonblank(findall(r'\\*\\*[^\\n*]*\\*\\*'))) >= {num_highlights}",
    draw={"num_highlights": range(1, 5)},
)
def number_highlighted_sections(t: Text, num_highlights: int) -> bool:
    count = sum(1 for h in _HIGHLIGHT.findall(t.raw) if h.strip("*").strip())
    count += sum(1 for h in _BOLD.findall(t.raw) if h[2:-2].strip())
    return count >= num_highlights


@constraint(
    "detectable_format:multiple_sections",
    instruction="Your response must have {num_sections} sections. Mark the beginning of each "
    "section with {section_spliter} X, such as:\n"
    "{section_spliter} 1\n[content of section 1]\n"
    "{section_spliter} 2\n[content of section 2]",
    pseudo="assert len(split(r'\\s?' + {section_spliter!r} + r'\\s?\\d+\\s?', response)) - 1 >= "
    "{num_sections}",
    # Title-cased splitters only: the split is case-sensitive, and conflicts.json keeps this id
    # away from the all-capitals and all-lowercase constraints for that reason.
    draw={"section_spliter": ["Section", "Part", "Chapter"], "num_sections": range(2, 6)},
)
def multiple_sections(t: Text, section_spliter: str, num_sections: int) -> bool:
    # The splitter is a raw, case-sensitive pattern; more sections than asked still pass.
    pieces = re.split(r"\s?" + section_spliter.strip() + r"\s?\d+\s?", t.raw)
    return len(pieces) - 1 >= num_sections


@constraint(
    "detectable_format:json_format",
    instruction="Entire output should be wrapped in JSON format. "
    "You can use markdown ticks such as ```.",
    pseudo="assert json_parses(unfence(strip(response)))",
)
def json_format(t: Text) -> bool:
    value = (
        t.stripped.removeprefix("```json")
        .removeprefix("```Json")
        .removeprefix("```JSON")
        .removeprefix("```")
        .removesuffix("```")
        .strip()
    )
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


@constraint(
    "detectable_format:title",
    instruction="Your answer must contain a title, wrapped in double angular brackets, such as "
    "<<poem of joy>>.",
    pseudo="assert any(strip(t.lstrip('<').rstrip('>')) "
    "for t in findall(r'<<[^\\n]+>>', response))",
)
def title(t: Text) -> bool:
    return any(m.lstrip("<").rstrip(">").strip() for m in _TITLE.findall(t.raw))
