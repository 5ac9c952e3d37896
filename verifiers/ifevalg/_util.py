"""Helpers shared by the IFEvalG checkers: regex keyword counts and set-up draws.

Set-up draws (``shared/specs/ifevalg.md`` §5) use the ``random.Random`` that ``prepare=`` is
given (the loader seeds it with 0 per sample, as the golden verdicts were made), in the
reference's order, with the same calls (``sample`` over the keyword list, inclusive
``randint``, ``choice`` over a tuple), so a replay draws what the reference would.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import random
import re
from pathlib import Path

from .. import nlp
from ..registry import KwargsError, ReferenceCrash


@functools.lru_cache(maxsize=512)
def _pattern(keyword: str) -> re.Pattern[str] | re.error:
    try:
        return re.compile(keyword, re.IGNORECASE)
    except re.error as e:
        return e


def count_matches(keyword: str, text: str, cid: str) -> int:
    """Case-insensitive matches of ``keyword`` used as a regex (no escaping, no boundaries).

    A keyword that is not a valid pattern (``C++``, ``(``) makes the reference raise
    ``re.error``; here the instruction becomes unscorable with that reason.
    """
    pattern = _pattern(keyword)
    if isinstance(pattern, re.error):
        raise ReferenceCrash(
            f"{cid}: keyword {keyword!r} is not a valid regular expression ({pattern}); the "
            "reference uses keywords as unescaped patterns and raises re.error here. Escape "
            "its metacharacters in the data to score this instruction."
        )
    return len(pattern.findall(text))


@functools.lru_cache(maxsize=1)
def keyword_list() -> tuple[str, ...]:
    """IFEval's 1,525-word keyword list, the pool of every keyword draw.

    Read from the installed ``lm_eval`` package's ``tasks/ifeval/instructions_util.py`` (the
    list is the same in IFEvalG, spec §3) as a literal, without importing that module (its
    import asks NLTK for downloads). Only a set-up with a missing keyword needs it.
    """
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise KwargsError(
            "a keyword kwarg is missing or empty: the reference draws one from IFEval's "
            "keyword list, which is read from the lm_eval package (pip install lm_eval); "
            "or give the keyword in the data"
        )
    source = Path(spec.origin).parent / "tasks" / "ifeval" / "instructions_util.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "WORD_LIST" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise KwargsError(f"no WORD_LIST in {source}: cannot draw a missing keyword")


def draw_keywords(rng: random.Random, n: int = 1) -> list[str]:
    """``generate_keywords(n)``: ``sample`` of ``n`` words from the keyword list."""
    return rng.sample(keyword_list(), k=n)


def first_if_list(value: str | list[str] | tuple[str, ...]) -> str:
    """The reference's list handling for word kwargs (first element, empty list stays falsy)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else ""
    return value


def word_tokens(text: str) -> list[str]:
    """``nltk.word_tokenize`` of any string (a sentence of the rule-based splitter)."""
    return nlp.word_tokenize(text)
