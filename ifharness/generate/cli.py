"""``ifharness generate compose|density|hierarchy``: write a fresh generated set as task folders.

Each family prints the task YAML paths they wrote, one a line, so a script can feed them to
``ifharness run --task PATH`` as they are, and write each task's lm-eval YAML into
``<out>/lmeval/`` (:func:`_written`).
"""

from __future__ import annotations

import argparse
from typing import Any

RENDERING_CHOICES = ("prose", "pseudocode", "json", "all")
DEFAULT_LEVELS = "1,2,5,10,20,50,100,200,500"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def register(sub: Any) -> None:
    """Adds ``generate`` to the ``ifharness`` subcommands (``sub``: add_subparsers())."""
    p = sub.add_parser(
        "generate",
        help="generate a fresh, seeded task (compose constraints, or a density sweep)",
        description="Write a generated set as an ordinary task (<out>/<name>.yaml + .jsonl) "
        "that run, score, the gate and the lm-eval plugin take as they are. The same arguments "
        "give byte-identical files; the YAML's `generated:` block records them.",
    )
    families = p.add_subparsers(dest="family", required=True)

    c = families.add_parser(
        "compose",
        help="a base task plus 1..K non-conflicting constraints of one suite per sample",
        description="Each sample: one of ~130 authored open-ended writing tasks plus "
        "--min-constraints..--max-constraints constraints of --suite with kwargs drawn from "
        "their declared ranges, never two that conflict (verifiers/<suite>/conflicts.json). "
        "Every id of the suite appears once --n reaches the suite's number of ids.",
    )
    c.add_argument("--suite", default="ifeval", help="suite to draw constraints from")
    c.add_argument("--n", type=_positive_int, default=200, help="samples (default 200)")
    c.add_argument("--min-constraints", type=_positive_int, default=1)
    c.add_argument("--max-constraints", type=_positive_int, default=3)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--rendering",
        choices=RENDERING_CHOICES,
        default="prose",
        help="wording of the instructions; all writes <name>-prose, -pseudocode and -json",
    )
    c.add_argument("--out", required=True, help="folder to write the task files into")
    c.add_argument("--name", help="task name (default <suite>-compose-s<seed>)")
    c.set_defaults(func=_cmd_compose)

    d = families.add_parser(
        "density",
        help="IFScale-style sweep: one business report carrying N keyword instructions",
        description="One long-form base task per (level, seed) with N keyword-inclusion "
        "instructions, keywords drawn seeded from an English word-frequency list.",
    )
    d.add_argument("--levels", default=DEFAULT_LEVELS, help=f"N values (default {DEFAULT_LEVELS})")
    d.add_argument("--seeds", default="0", help="replicate indices, e.g. 0,1,2 (default 0)")
    d.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    d.add_argument("--rendering", choices=RENDERING_CHOICES, default="prose")
    d.add_argument("--out", required=True, help="folder to write the task files into")
    d.add_argument("--name", default="density", help="task name (default density)")
    d.set_defaults(func=_cmd_density)

    h = families.add_parser(
        "hierarchy",
        help="IHEval-style: each composed sample with its constraints in the system message, "
        "in the user message, and in the system message contradicted by the user",
        description="Each of --n composed samples (as `compose` draws them) in three "
        "placements, keys <key>-system, <key>-user, <key>-conflict; all scored against the "
        "system constraints only. The user's contradictions come from "
        "ifharness/generate/opposites.json; ids without one are not drawn.",
    )
    h.add_argument("--suite", default="ifeval", help="suite to draw constraints from")
    h.add_argument("--n", type=_positive_int, default=200, help="samples (default 200; x3 rows)")
    h.add_argument("--min-constraints", type=_positive_int, default=1)
    h.add_argument("--max-constraints", type=_positive_int, default=3)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--ids", help="only these constraint ids, comma-separated (default: all)")
    h.add_argument("--out", required=True, help="folder to write the task files into")
    h.add_argument("--name", help="task name (default <suite>-hierarchy-s<seed>)")
    h.set_defaults(func=_cmd_hierarchy)


def _cmd_compose(args: argparse.Namespace) -> int:
    from .compose import generate_compose

    paths = generate_compose(
        suite=args.suite,
        n=args.n,
        min_constraints=args.min_constraints,
        max_constraints=args.max_constraints,
        seed=args.seed,
        rendering=args.rendering,
        out=args.out,
        name=args.name,
    )
    return _written(paths, args.out)


def _cmd_density(args: argparse.Namespace) -> int:
    from .density import generate_density

    paths = generate_density(
        levels=args.levels,
        seeds=args.seeds,
        seed=args.seed,
        rendering=args.rendering,
        out=args.out,
        name=args.name,
    )
    return _written(paths, args.out)


def _written(paths: Any, out: str) -> int:
    """Print the task YAML paths (stdout, one a line, what scripts read) and write
    ``<out>/lmeval/ifharness_<name>.yaml`` for each, so ``lm_eval --include_path <out>/lmeval``
    runs a generated set with no YAML written by hand. Those hold absolute paths, so they live
    in a subfolder, apart from the byte-identical set; a task lm-eval cannot run (multi-turn)
    gets none, and says so on stderr."""
    import sys
    from pathlib import Path

    from ifharness.errors import DataError
    from ifharness.lmeval.export import write_lmeval_task

    lmeval_dir = Path(out) / "lmeval"
    names = []
    for path in paths:
        print(path)
        try:
            names.append(write_lmeval_task(path, lmeval_dir).stem)
        except DataError as e:
            print(f"no lm-eval task for {path}: {e}", file=sys.stderr)
    if names:
        print(
            f"lm-eval: lm_eval --include_path {lmeval_dir} --tasks {','.join(names)} ...",
            file=sys.stderr,
        )
    return 0


def _cmd_hierarchy(args: argparse.Namespace) -> int:
    from .hierarchy import generate_hierarchy

    ids = [x.strip() for x in args.ids.split(",") if x.strip()] if args.ids else None
    paths = generate_hierarchy(
        suite=args.suite,
        n=args.n,
        min_constraints=args.min_constraints,
        max_constraints=args.max_constraints,
        seed=args.seed,
        ids=ids,
        out=args.out,
        name=args.name,
    )
    # No lm-eval task: its docs hold one user message (ifharness.lmeval.hooks refuses more),
    # and the -system and -conflict rows need their system message.
    import sys

    for path in paths:
        print(path)
    print(
        "no lm-eval task for a hierarchy set: lm-eval docs hold one user message and these "
        "rows carry a system message; run it with `ifharness run --task PATH`",
        file=sys.stderr,
    )
    return 0
