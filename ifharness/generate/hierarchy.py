"""The hierarchy family: one composed sample in three placements, to see whom a model obeys.

IHEval (Zhang et al., NAACL 2025; ``shared/specs/suites.md`` §7) asks whether a model follows
constraints placed in the system message, and what it does when the user contradicts them.
Its data is CC BY-NC-ND (no derivatives), so ifharness cannot ship or convert it; this family
builds the same three settings from our own composed samples (``compose.py``: an authored base
task plus 1..K non-conflicting IFEval constraints), key-aligned so every comparison is paired:

* ``<pair>-system`` (IHEval's *aligned*): the constraints' instruction sentences, one a line,
  are the system message; the user message is the task alone;
* ``<pair>-user`` (IHEval's *reference*): no system message; the user message is the task
  followed by the constraints, byte for byte the ``compose`` prose prompt of the same sample;
* ``<pair>-conflict``: the system message of ``-system``; the user message is the task
  followed by one sentence per constraint that contradicts it (``opposites.json`` beside this
  module: ``no_comma`` against "Use at least three commas", lower case against capitals,
  "less than N words" against "at least 2N words", …).

All three are scored against the system constraints only: the user's contradicting lines are
not constraints, so following them counts as failing. Each row carries ``placement`` and
``pair`` (kept on ``Sample.meta``), and ``ifharness.hierarchy`` reports "follows system",
"follows user", "follows when they conflict" and the paired differences under ``hierarchy``
in ``metrics.json``.

**Drawing.** Samples are drawn exactly as ``compose`` draws them (the same seeded coverage
walk, the same conflict map, the same ``draw=`` ranges, the same seed strings), among the ids
that have an opposite for the suite (all 25 of IFEval do) and, with ``ids``, among those only.
With every id allowed, hierarchy set (suite, n, min, max, seed) holds compose set (suite, n,
min, max, seed): a test checks it, so drifting from compose's scheme is caught. Changing the
drawing, ``opposites.json`` or the layout of the messages changes every set: bump
``GENERATOR_VERSION``.

**What the runner must do.** Send the system message as it is (vLLM ``LLM.chat`` and the
openai backend take the message list unchanged). A ``--system-prompt`` given to ``run`` is put
only before conversations that have none, i.e. before the ``-user`` rows alone; it would make
the reference setting differ from the others by more than the placement, so leave it unset.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ifharness.errors import IfharnessError
from ifharness.verifiers.draws import WORDS_FILE
from ifharness.verifiers.registry import Constraint

from . import GENERATOR_VERSION, compose
from .compose import (
    BASE_TASKS_FILE,
    BASE_TASKS_PACKAGE,
    Drawn,
    _file_digest,
    suite_constraints,
)
from .io import set_id, write_task
from .render import render

FAMILY = "hierarchy"
PLACEMENTS = ("system", "user", "conflict")
OPPOSITES_FILE = "opposites.json"
OPPOSITES_PACKAGE = "ifharness.generate"
DEFAULT_N = 200
DEFAULT_MIN = 1
DEFAULT_MAX = 3


# ---------------------------------------------------------------- the opposites


@dataclass(frozen=True)
class Opposite:
    """One variant of a constraint's contradiction: used when ``when`` matches the kwargs."""

    sentence: str
    when: Mapping[str, Any]
    values: Mapping[str, str]


@functools.cache
def opposites() -> dict[str, dict[str, tuple[Opposite, ...]]]:
    """``opposites.json`` as suite -> constraint id -> variants, checked for shape."""
    text = resources.files(OPPOSITES_PACKAGE).joinpath(OPPOSITES_FILE).read_text("utf-8")
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise IfharnessError(f"ifharness/generate/{OPPOSITES_FILE} is not JSON: {e}") from None
    out: dict[str, dict[str, tuple[Opposite, ...]]] = {}
    for suite, table in raw.items():
        if suite.startswith("_"):
            continue
        out[suite] = {}
        for cid, variants in table.items():
            where = f"ifharness/generate/{OPPOSITES_FILE}: {suite} / {cid}"
            if not isinstance(variants, list) or not variants:
                raise IfharnessError(f"{where}: expected a non-empty list of variants")
            parsed = []
            for v in variants:
                if not isinstance(v, dict) or not isinstance(v.get("sentence"), str):
                    raise IfharnessError(f"{where}: each variant needs a 'sentence' string")
                unknown = set(v) - {"sentence", "when", "values"}
                if unknown:
                    raise IfharnessError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
                parsed.append(Opposite(v["sentence"], v.get("when") or {}, v.get("values") or {}))
            out[suite][cid] = tuple(parsed)
    return out


def suites_with_opposites() -> tuple[str, ...]:
    return tuple(sorted(opposites()))


def quoted(value: Any) -> str:
    """``"a"``, ``"a" and "b"``, ``"a", "b" and "c"``: kwargs words as a sentence lists them."""
    items = [value] if isinstance(value, str) else list(value)
    parts = [f'"{x}"' for x in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


_CALLS: dict[str, Callable[..., Any]] = {"max": max, "min": min, "quoted": quoted}
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}


def _evaluate(expr: str, kwargs: Mapping[str, Any], where: str) -> Any:
    """A ``values`` expression: kwargs names, integers and strings, ``+ - * //``, and
    ``max``/``min``/``quoted`` calls; nothing else (the file is data, not code)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in kwargs:
                raise IfharnessError(f"{where}: {expr!r} names {node.id!r}, not a kwarg")
            return kwargs[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _CALLS
            and not node.keywords
        ):
            return _CALLS[node.func.id](*(ev(a) for a in node.args))
        raise IfharnessError(f"{where}: {expr!r} uses something other than kwargs and + - * //")

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise IfharnessError(f"{where}: {expr!r} is not an expression") from None
    return ev(tree)


def opposite_of(suite: str, c: Constraint, kwargs: Mapping[str, Any]) -> str | None:
    """The sentence contradicting ``c`` with these kwargs; ``None`` when the file has none.

    ``kwargs`` are completed by the constraint's own model first (defaults filled in), as the
    rendered instruction sentence is, so the contradiction names the value the check uses."""
    variants = opposites().get(suite, {}).get(c.id)
    if not variants:
        return None
    full = c.validate(kwargs)
    where = f"ifharness/generate/{OPPOSITES_FILE}: {suite} / {c.id}"
    for v in variants:
        if all(full.get(k) == want for k, want in v.when.items()):
            values = {name: _evaluate(e, full, where) for name, e in v.values.items()}
            try:
                return v.sentence.format_map({**full, **values})
            except (KeyError, IndexError, ValueError) as e:
                raise IfharnessError(f"{where}: the sentence does not format ({e})") from None
    return None


# ---------------------------------------------------------------- drawing


def allowed_ids(suite: str, ids: Sequence[str] | None = None) -> list[str]:
    """The suite's ids a hierarchy sample may draw: those with an opposite, within ``ids``."""
    if suite not in opposites():
        raise IfharnessError(
            f"--suite {suite}: ifharness/generate/{OPPOSITES_FILE} has no contradictions for it; "
            f"choose one of {', '.join(suites_with_opposites())}, or add the suite to the file"
        )
    known = {c.id for c in suite_constraints(suite)}
    with_opposite = known & set(opposites()[suite])
    if ids is not None:
        unknown = sorted(set(ids) - known)
        if unknown:
            raise IfharnessError(f"--ids: {', '.join(unknown)} not in suite {suite}")
        lacking = sorted(set(ids) - with_opposite)
        if lacking:
            raise IfharnessError(
                f"--ids: {', '.join(lacking)} ha{'s' if len(lacking) == 1 else 've'} no opposite "
                f"in ifharness/generate/{OPPOSITES_FILE}, so no conflict sample can be built"
            )
        with_opposite &= set(ids)
    if not with_opposite:
        raise IfharnessError(f"suite {suite}: no constraint to draw (check --ids)")
    return sorted(with_opposite)


def draw_samples(
    suite: str,
    n: int,
    min_constraints: int,
    max_constraints: int,
    seed: int,
    ids: Sequence[str] | None = None,
) -> list[Drawn]:
    """The ``n`` samples: ``compose.draw_samples`` over the ids that have an opposite."""
    return compose.draw_samples(
        suite, n, min_constraints, max_constraints, seed, allowed_ids(suite, ids)
    )


# ---------------------------------------------------------------- the rows


def system_text(d: Drawn) -> str:
    """The system message: the constraints' instruction sentences, one a line."""
    return "\n".join(c.render(c.validate(kw)) for c, kw in d.instructions)


def conflict_lines(suite: str, d: Drawn) -> list[str]:
    lines = []
    for c, kw in d.instructions:
        line = opposite_of(suite, c, kw)
        if line is None:  # allowed_ids keeps such ids out; a variant's `when` may still miss
            raise IfharnessError(
                f"ifharness/generate/{OPPOSITES_FILE}: no variant of {suite} / {c.id} matches "
                f"kwargs {json.dumps(kw, sort_keys=True)}; add one"
            )
        lines.append(line)
    return lines


def messages_for(suite: str, d: Drawn, placement: str) -> list[dict[str, str]]:
    task = d.base.task.strip()
    if placement == "user":
        return [{"role": "user", "content": render(d.base.task, d.instructions, "prose")}]
    system = {"role": "system", "content": system_text(d)}
    if placement == "system":
        return [system, {"role": "user", "content": task}]
    if placement == "conflict":
        user = task + "\n\n" + "\n".join(conflict_lines(suite, d))
        return [system, {"role": "user", "content": user}]
    raise ValueError(f"unknown placement {placement!r}: choose one of {', '.join(PLACEMENTS)}")


def rows_for(suite: str, drawn: Sequence[Drawn], seed: int) -> list[dict[str, Any]]:
    """Three rows per sample (system, user, conflict), in that order, sharing ``pair``."""
    rows: list[dict[str, Any]] = [
        {
            "key": f"{d.key}-{p}",
            "pair": d.key,
            "placement": p,
            "base_task": d.base.id,
            "instruction_id_list": [c.id for c, _ in d.instructions],
            "kwargs": [kw for _, kw in d.instructions],
        }
        for d in drawn
        for p in PLACEMENTS
    ]
    sid = set_id(rows)
    for row, (d, p) in zip(rows, [(d, p) for d in drawn for p in PLACEMENTS]):
        row["messages"] = messages_for(suite, d, p)
        row["rendering"] = "prose"
        row["generator"] = {"version": GENERATOR_VERSION, "seed": seed, "set_id": sid}
    return rows


def hierarchy(
    suite: str = "ifeval",
    n: int = DEFAULT_N,
    min_constraints: int = DEFAULT_MIN,
    max_constraints: int = DEFAULT_MAX,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The rows of a hierarchy set (nothing written)."""
    drawn = draw_samples(suite, n, min_constraints, max_constraints, seed, ids)
    return rows_for(suite, drawn, seed)


def default_name(suite: str, seed: int) -> str:
    return f"{suite}-hierarchy-s{seed}"


def _description(suite: str, n: int, lo: int, hi: int, seed: int) -> str:
    return (
        f"Generated by `ifharness generate hierarchy` (generator version {GENERATOR_VERSION}): "
        f"{n} composed samples of suite {suite} ({lo}-{hi} non-conflicting constraints on an "
        f"authored base task, seed {seed}), each in three placements: -system (constraints in "
        "the system message, the task alone from the user), -user (no system message; task "
        "and constraints from the user) and -conflict (the system message of -system; the "
        "user adds one sentence contradicting each constraint). Every placement is scored "
        "against the system constraints only; metrics.json holds follows-system, "
        "follows-user, follows-when-they-conflict and the paired differences under "
        "`hierarchy`. Run it without --system-prompt."
    )


def generate_hierarchy(
    suite: str = "ifeval",
    n: int = DEFAULT_N,
    min_constraints: int = DEFAULT_MIN,
    max_constraints: int = DEFAULT_MAX,
    seed: int = 0,
    ids: Sequence[str] | None = None,
    out: str | Path = ".",
    name: str | None = None,
) -> list[Path]:
    """Write the set as one task folder; its YAML path (in a list, as the other families).

    ``generated.args`` are the arguments that rewrite exactly these files:
    ``generate_hierarchy(**args, out=...)``.
    """
    ids_list = sorted(set(ids)) if ids is not None else None
    task_name = name or default_name(suite, seed)
    rows = hierarchy(suite, n, min_constraints, max_constraints, seed, ids_list)
    args = {
        "suite": suite,
        "n": n,
        "min_constraints": min_constraints,
        "max_constraints": max_constraints,
        "seed": seed,
        "ids": ids_list,
        "name": task_name,
    }
    spec = {
        "suite": suite,
        "description": _description(suite, n, min_constraints, max_constraints, seed),
        "profile": "reference",
        "fields": {"messages": "messages"},
        "generation": {"max_tokens": 1280, "temperature": 0.0},
        "metric": "prompt_level_strict_acc",
        "generated": {
            "generator": "ifharness",
            "version": GENERATOR_VERSION,
            "family": FAMILY,
            "seed": seed,
            "rendering": "prose",
            "set_id": rows[0]["generator"]["set_id"],
            "args": args,
            "vocabulary": None,
            "inputs": {
                "base_tasks": _file_digest(BASE_TASKS_PACKAGE, BASE_TASKS_FILE),
                "common_words": _file_digest("ifharness.verifiers", WORDS_FILE),
                "conflicts": _file_digest(f"ifharness.verifiers.{suite}", "conflicts.json"),
                "opposites": _file_digest(OPPOSITES_PACKAGE, OPPOSITES_FILE),
            },
        },
    }
    return [write_task(out, task_name, rows, spec)]
