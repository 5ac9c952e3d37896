"""Render one generated sample (a base task plus its constraints) as a prompt.

The same sample can be worded three ways so that a paired comparison isolates the wording:
``prose`` (the task, then each constraint's instruction sentence), ``pseudocode`` (the task as a
Python function whose docstring states it and whose body asserts each constraint, in the style of
Mishra et al. 2023, ``shared/specs/suites.md`` §6) and ``json`` (the task, then a JSON
specification of the constraints). Every rendering carries the same constraints in the same
order; only the wording differs. Output depends on the arguments alone (sorted keys, no clock,
no randomness), so regenerating a set reproduces its prompts byte for byte.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ifharness.verifiers.registry import Constraint, KwargsError

RENDERINGS = ("prose", "pseudocode", "json")

Instructions = Sequence[tuple[Constraint, Mapping[str, Any]]]

# Words a function name can do without: it should say what the task makes, not its grammar.
_NAME_STOPWORDS = frozenset(
    "a an the of to for and or in on at by with about that this your you please".split()
)
_NAME_WORDS = 5


def render(task_text: str, instructions: Instructions, rendering: str) -> str:
    """The prompt for ``task_text`` under ``instructions`` (constraint, kwargs) in ``rendering``.

    ``kwargs`` are the sample's stored kwargs (what the scorer binds); defaults are filled in by
    the constraint's own model, so a sentence names the value the checker uses. The set-up step
    (``prepare``) is not run: a generated sample stores complete kwargs, and a random set-up draw
    here would make the wording disagree with the check.
    """
    if rendering not in RENDERINGS:
        raise ValueError(f"unknown rendering {rendering!r}: choose one of {', '.join(RENDERINGS)}")
    bound = [(c, _complete(c, kw)) for c, kw in instructions]
    if rendering == "prose":
        return _prose(task_text, bound)
    if rendering == "pseudocode":
        return _pseudocode(task_text, bound)
    return _json(task_text, bound)


def _complete(c: Constraint, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return c.validate(kwargs)
    except KwargsError as e:
        raise ValueError(
            f"cannot render {c.suite}/{c.id}: its kwargs do not validate ({e}); "
            "draw them from the constraint's declared ranges"
        ) from None


def _prose(task_text: str, bound: list[tuple[Constraint, dict[str, Any]]]) -> str:
    """The task, a blank line, then one instruction sentence a line (IFEval's own layout puts
    the instructions after the task; one a line keeps templates that end without a full stop,
    such as the paragraph divider ``***``, from running into the next)."""
    lines = [c.render(kw) for c, kw in bound]
    return task_text.strip() + ("\n\n" + "\n".join(lines) if lines else "")


def function_name(task_text: str) -> str:
    """A descriptive snake_case name from the task's first content words (``write_blog_post``),
    as the pseudo-code papers name each task's function after what it does."""
    words = [w for w in re.findall(r"[a-z0-9]+", task_text.lower()) if w not in _NAME_STOPWORDS]
    name = "_".join(words[:_NAME_WORDS]) or "respond"
    return f"task_{name}" if name[0].isdigit() else name


def _docstring(text: str) -> str:
    """``text`` made safe inside a triple-quoted docstring: backslashes and triple quotes
    escaped, and a trailing quote kept from merging with the closing ones."""
    safe = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return safe[:-1] + '\\"' if safe.endswith('"') else safe


def _code_line(line: str) -> str:
    """The constraint's pseudo-code line as a statement, or as a comment when the template is
    not Python (every bundled template is, ``tests/test_generate_render.py`` checks it; an
    outside suite's may not be), so the function stays valid code either way."""
    try:
        ast.parse(line)
    except SyntaxError:
        return "# " + line
    return line


def _pseudocode(task_text: str, bound: list[tuple[Constraint, dict[str, Any]]]) -> str:
    name = function_name(task_text)
    doc_lines = _docstring(task_text.strip()).split("\n")
    doc = "\n".join(("    " + ln) if ln.strip() else "" for ln in doc_lines)
    body = [
        f"def {name}() -> str:",
        f'    """{doc.lstrip()}',
        "",
        "    Returns:",
        "        str: the response, which passes every check below.",
        '    """',
        "    response = write_response()",
    ]
    for c, kw in bound:
        body.extend("    " + ln for ln in _code_line(c.render(kw, pseudo=True)).split("\n"))
    body.append("    return response")
    return (
        "The task below is written as a Python function. Reply with the text that the call "
        "at the end returns: the response itself, not code and not an explanation.\n\n"
        "```python\n" + "\n".join(body) + f"\n\n>>> {name}()\n```"
    )


def _json(task_text: str, bound: list[tuple[Constraint, dict[str, Any]]]) -> str:
    spec = {
        "constraints": [{"id": c.id, "instruction": c.render(kw), "kwargs": kw} for c, kw in bound]
    }
    text = json.dumps(spec, sort_keys=True, indent=2, ensure_ascii=False, default=_jsonable)
    return (
        task_text.strip()
        + "\n\nYour response must satisfy every constraint in this JSON specification. "
        "Reply with the response only, not with JSON.\n\n```json\n" + text + "\n```"
    )


def _jsonable(value: Any) -> Any:
    """Kwargs a constraint's model turned into tuples, sets or enums, as plain JSON values."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"kwarg value {value!r} of type {type(value).__name__} is not JSON")
