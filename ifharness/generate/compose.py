"""The compose family: a base task plus 1..K constraints of one suite, never two that conflict.

Each sample ``i`` is drawn from its own ``random.Random`` seeded with ``(seed, i)``, so sample
``i`` is the same whatever ``n`` is: a set of 200 starts with the set of 50. Two things are not
left to chance, because chance alone misses them in a set of the default size:

* **coverage**: sample ``i``'s first constraint (and its base task) walks a seeded permutation of
  the suite's ids (of the base tasks), a fresh permutation every cycle. Any ``n`` at least the
  number of ids has every id of the suite, including ids that conflict with almost everything;
* **consistency**: the other constraints are drawn only among ids that conflict with none drawn
  so far (``conflict_map(suite)``, which also bars an id twice). A sample can hold fewer than
  it drew for when nothing compatible is left (``detectable_format:constrained_response``
  conflicts with every IFEval id, so it always stands alone).

Kwargs come from each constraint's ``draw=`` ranges (``ifharness.verifiers.draws``); the words of
one sample are distinct and never words of its task. Everything is checked with
``Constraint.bind`` before it is written, so a generated task loads as it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ifharness.errors import IfharnessError
from ifharness.verifiers import load_all
from ifharness.verifiers.conflicts import conflict_map
from ifharness.verifiers.draws import WORDS_FILE, DrawContext, draw_kwargs
from ifharness.verifiers.registry import Constraint, KwargsError, require_suite

from . import GENERATOR_VERSION
from .io import set_id, write_task
from .render import RENDERINGS, render

BASE_TASKS_FILE = "base_tasks.jsonl"  # in tasks/ (package ifharness.tasks), beside the tasks
BASE_TASKS_PACKAGE = "ifharness.tasks"
#: The long-form task of the density family; compose leaves it out (it asks for a long report,
#: which would fight the length constraints).
DENSITY_TASK_ID = "bt-report"

DEFAULT_N = 200
DEFAULT_MIN = 1
DEFAULT_MAX = 3


@dataclass(frozen=True)
class BaseTask:
    id: str
    task: str
    kind: str


@dataclass(frozen=True)
class Drawn:
    """One sample before it is worded: what every rendering of it shares."""

    key: str
    base: BaseTask
    instructions: tuple[tuple[Constraint, dict[str, Any]], ...]


@functools.cache
def base_tasks() -> tuple[BaseTask, ...]:
    """Every base task in ``base_tasks.jsonl``, in file order (the order a seed draws by)."""
    text = resources.files(BASE_TASKS_PACKAGE).joinpath(BASE_TASKS_FILE).read_text("utf-8")
    out: list[BaseTask] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            task = BaseTask(id=row["id"], task=row["task"], kind=row["kind"])
        except (ValueError, KeyError, TypeError) as e:
            raise IfharnessError(
                f"{BASE_TASKS_FILE} line {n}: expected {{id, task, kind}} as JSON ({e})"
            ) from None
        if task.id in seen:
            raise IfharnessError(f"{BASE_TASKS_FILE} line {n}: id {task.id!r} appears twice")
        seen.add(task.id)
        out.append(task)
    return tuple(out)


def base_task(task_id: str) -> BaseTask:
    """The base task with this id (``bt-report`` for the density family)."""
    for t in base_tasks():
        if t.id == task_id:
            return t
    raise IfharnessError(f"no base task {task_id!r} in tasks/{BASE_TASKS_FILE}")


def compose_tasks() -> tuple[BaseTask, ...]:
    return tuple(t for t in base_tasks() if t.id != DENSITY_TASK_ID)


def suite_constraints(suite: str) -> tuple[Constraint, ...]:
    """The suite's constraints sorted by id (not by module layout, which may be reorganised).

    Refuses a constraint that has required kwargs but no ``draw=``: the generator could only
    write kwargs that do not load.
    """
    require_suite(suite)
    found = sorted((c for c in load_all() if c.suite == suite), key=lambda c: c.id)
    if not found:
        raise IfharnessError(f"suite {suite!r} registers no constraints to compose from")
    undrawable = [
        c.id
        for c in found
        if c.draw is None and any(f.is_required() for f in c.kwargs_model.model_fields.values())
    ]
    if undrawable:
        raise IfharnessError(
            f"suite {suite!r}: {', '.join(undrawable)} ha{'s' if len(undrawable) == 1 else 've'} "
            "required kwargs but no draw= ranges; declare draw={...} on the @constraint "
            "(see verifiers/draws.py)"
        )
    return tuple(found)


@functools.lru_cache(maxsize=256)
def _permutation(tag: str, seed: int, cycle: int, size: int) -> tuple[int, ...]:
    order = list(range(size))
    random.Random(f"ifharness-compose:{tag}:{seed}:{cycle}").shuffle(order)
    return tuple(order)


def _cycled(tag: str, seed: int, i: int, size: int) -> int:
    """Index ``i`` of an endless walk through fresh seeded permutations of ``range(size)``."""
    return _permutation(tag, seed, i // size, size)[i % size]


def _check_args(n: int, min_constraints: int, max_constraints: int) -> None:
    if n < 1:
        raise IfharnessError(f"--n {n}: generate at least one sample")
    if min_constraints < 1 or max_constraints < min_constraints:
        raise IfharnessError(
            f"--min-constraints {min_constraints} --max-constraints {max_constraints}: need "
            "1 <= min <= max"
        )


def draw_samples(
    suite: str,
    n: int,
    min_constraints: int,
    max_constraints: int,
    seed: int,
    ids: Sequence[str] | None = None,
) -> list[Drawn]:
    """The ``n`` samples of a compose set, before wording (see the module docstring).

    ``ids`` narrows the constraints drawn from (in that order; the hierarchy family draws only
    ids that have an opposite); by default every id of the suite, in registry order."""
    _check_args(n, min_constraints, max_constraints)
    constraints = suite_constraints(suite)
    by_id = {c.id: c for c in constraints}
    table = conflict_map(suite)
    pool_ids = list(ids) if ids is not None else [c.id for c in constraints]
    missing = sorted(set(pool_ids) - set(table))
    if missing:
        raise IfharnessError(
            f"verifiers/{suite}/conflicts.json lacks {', '.join(missing)}; add each id "
            "(with [] if it conflicts with none)"
        )
    tasks = compose_tasks()
    out: list[Drawn] = []
    for i in range(n):
        rng = random.Random(f"ifharness-compose:{suite}:{seed}:{i}")
        base = tasks[_cycled("base", seed, i, len(tasks))]
        chosen = [pool_ids[_cycled(suite, seed, i, len(pool_ids))]]
        barred = set(table[chosen[0]])
        want = rng.randint(min_constraints, max_constraints)
        while len(chosen) < want:
            pool = [cid for cid in pool_ids if cid not in barred]
            if not pool:
                break
            pick = rng.choice(pool)
            chosen.append(pick)
            barred |= table[pick]
        rng.shuffle(chosen)
        ctx = DrawContext(prompt=base.task)
        instructions = []
        for cid in chosen:
            c = by_id[cid]
            kwargs = draw_kwargs(c, rng, ctx)
            try:
                c.bind(kwargs)
            except (KwargsError, ValueError, TypeError) as e:
                raise IfharnessError(
                    f"{suite}/{cid}: its draw= ranges gave kwargs it refuses ({e}); fix the "
                    f"draw= of the @constraint in {c.func.__module__}"
                ) from None
            instructions.append((c, kwargs))
        out.append(Drawn(f"{suite}-{seed}-{i:05d}", base, tuple(instructions)))
    return out


def rows_for(drawn: Sequence[Drawn], rendering: str, seed: int) -> list[dict[str, Any]]:
    """The JSONL rows of ``drawn`` worded in ``rendering``; the set id is rendering-free."""
    rows: list[dict[str, Any]] = [
        {
            "key": d.key,
            "base_task": d.base.id,
            "instruction_id_list": [c.id for c, _ in d.instructions],
            "kwargs": [kw for _, kw in d.instructions],
        }
        for d in drawn
    ]
    sid = set_id(rows)
    for row, d in zip(rows, drawn):
        row["prompt"] = render(d.base.task, d.instructions, rendering)
        row["rendering"] = rendering
        row["generator"] = {"version": GENERATOR_VERSION, "seed": seed, "set_id": sid}
    return rows


def compose(
    suite: str,
    n: int = DEFAULT_N,
    min_constraints: int = DEFAULT_MIN,
    max_constraints: int = DEFAULT_MAX,
    seed: int = 0,
    rendering: str = "prose",
) -> list[dict[str, Any]]:
    """The rows of a compose set (nothing written): each a task JSONL row."""
    _check_rendering(rendering, allow_all=False)
    return rows_for(draw_samples(suite, n, min_constraints, max_constraints, seed), rendering, seed)


def _check_rendering(rendering: str, allow_all: bool) -> None:
    allowed = (*RENDERINGS, "all") if allow_all else RENDERINGS
    if rendering not in allowed:
        raise IfharnessError(f"--rendering {rendering!r}: choose one of {', '.join(allowed)}")


def _file_digest(package: str, name: str) -> str:
    data = resources.files(package).joinpath(name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def default_name(suite: str, seed: int) -> str:
    return f"{suite}-compose-s{seed}"


def generate_compose(
    suite: str,
    n: int = DEFAULT_N,
    min_constraints: int = DEFAULT_MIN,
    max_constraints: int = DEFAULT_MAX,
    seed: int = 0,
    rendering: str = "prose",
    out: str | Path = ".",
    name: str | None = None,
) -> list[Path]:
    """Write the set as task folders; the YAML paths, one per rendering.

    ``rendering="all"`` writes ``<name>-prose``, ``<name>-pseudocode`` and ``<name>-json``, which
    share their keys and ``set_id``. Each YAML's ``generated.args`` are the arguments that
    rewrite exactly that file: ``generate_compose(**args, out=...)``.
    """
    _check_rendering(rendering, allow_all=True)
    base_name = name or default_name(suite, seed)
    drawn = draw_samples(suite, n, min_constraints, max_constraints, seed)
    renderings = RENDERINGS if rendering == "all" else (rendering,)
    inputs = {
        "base_tasks": _file_digest(BASE_TASKS_PACKAGE, BASE_TASKS_FILE),
        "common_words": _file_digest("ifharness.verifiers", WORDS_FILE),
        "conflicts": _file_digest(f"ifharness.verifiers.{suite}", "conflicts.json"),
    }
    paths = []
    for r in renderings:
        task_name = f"{base_name}-{r}" if rendering == "all" else base_name
        rows = rows_for(drawn, r, seed)
        args = {
            "suite": suite,
            "n": n,
            "min_constraints": min_constraints,
            "max_constraints": max_constraints,
            "seed": seed,
            "rendering": r,
            "name": task_name,
        }
        spec = {
            "suite": suite,
            "description": (
                f"Generated by `ifharness generate compose` (generator version "
                f"{GENERATOR_VERSION}): {n} samples of suite {suite}, each one of our authored "
                f"base tasks with {min_constraints}-{max_constraints} non-conflicting "
                f"constraints, seed {seed}, worded as {r}."
            ),
            "profile": "reference",
            "generation": {"max_tokens": 1280, "temperature": 0.0},
            "metric": "prompt_level_strict_acc",
            "generated": {
                "generator": "ifharness",
                "version": GENERATOR_VERSION,
                "family": "compose",
                "seed": seed,
                "rendering": r,
                "set_id": rows[0]["generator"]["set_id"],
                "args": args,
                "vocabulary": None,
                "inputs": inputs,
            },
        }
        paths.append(write_task(out, task_name, rows, spec))
    return paths
