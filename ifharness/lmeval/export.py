"""``ifharness lmeval-task``: an lm-eval task YAML for any ifharness task (bundled or a YAML path).

The plugin folder ships YAMLs for the bundled tasks only; a generated task or a user's own task
YAML needs one of its own to run under ``lm_eval``. What is written here says what the
bundled ones say: it includes the plugin's ``_template_yaml`` (so hooks and ``metric_list`` are
those of the installed ifharness, never a stale copy), carries the task's ``generation:``
settings as ``generation_kwargs`` and names the task in ``metadata.ifharness_task``, which
:func:`ifharness.lmeval.hooks.load_dataset` hands to :func:`ifharness.loader.load_task`.

Both references are absolute paths (lm-eval resolves a relative ``include:`` against the
YAML's folder, but passes ``metadata`` to the loader without it), so the file is tied to this
machine: write it again after moving the task files or the environment. The text has no clock
in it: the same task on the same paths gives the same bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import DataError
from ..schema import TaskSpec
from . import TASK_PREFIX, include_path

TEMPLATE = "_template_yaml"
# lm-eval looks tasks up by the ``task:`` string as given to --tasks (comma separated); keep
# to the characters its own task names use.
_NAME_OK = re.compile(r"[A-Za-z0-9_-]+")


def lmeval_task_name(name: str) -> str:
    """``ifharness_<name>`` with every character lm-eval task names do not use made ``_``."""
    return TASK_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _resolve(task: str | Path) -> tuple[str, Path, TaskSpec]:
    """(what ``metadata.ifharness_task`` says, the task YAML, its spec).

    A bundled task stays a name (it moves with the package); a YAML path becomes absolute, as
    the loader reads it from wherever lm-eval runs."""
    from ..loader import _spec_path

    text = str(task)
    path, spec = _spec_path(text)
    bundled = not (text.endswith((".yaml", ".yml")) and Path(text).is_file())
    return (text if bundled else str(path.resolve())), path, spec


def _generation_kwargs(spec: TaskSpec) -> dict[str, object]:
    """The task's ``generation:`` in lm-eval's terms (``until``, ``max_gen_toks``, …): greedy
    as ``do_sample: false``, as the bundled YAMLs say; top_p only where it is not 1."""
    g = spec.generation
    out: dict[str, object] = {
        "until": list(g.stop),
        "do_sample": g.temperature > 0,
        "temperature": float(g.temperature),
        "max_gen_toks": int(g.max_tokens),
    }
    if g.temperature > 0 and g.top_p != 1.0:
        out["top_p"] = float(g.top_p)
    return out


def _scalar(value: object) -> str:
    """A YAML scalar or flow list; JSON is valid YAML and quotes every path and stop string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def lmeval_yaml_text(
    task: str | Path, name: str | None = None, data: str | Path | None = None
) -> tuple[str, str]:
    """(lm-eval task name, YAML text) for ``task``; ``name`` replaces the task's own name,
    ``data`` (a local JSONL) is written as ``metadata.data``."""
    ref, path, spec = _resolve(task)
    if spec.turns != "single":
        raise DataError(
            f"task {spec.name} ({path}) has turns: {spec.turns}; lm-eval docs hold one user "
            "message: run it with `ifharness run --task ...`"
        )
    if spec.check != "answer":
        raise DataError(
            f"task {spec.name} ({path}) has check: {spec.check}; the lm-eval hooks check the "
            "answer only: run it with `ifharness run --task ...`"
        )
    if name is not None and not _NAME_OK.fullmatch(name.removeprefix(TASK_PREFIX)):
        raise DataError(
            f"lm-eval task name {name!r}: use letters, digits, '_' and '-' only "
            f"(e.g. {lmeval_task_name(name.removeprefix(TASK_PREFIX))})"
        )
    if name is None:
        lm_name = lmeval_task_name(spec.name)
    else:
        lm_name = name if name.startswith(TASK_PREFIX) else TASK_PREFIX + name
    if data is not None:
        data = Path(data)
        if not data.is_file():
            raise DataError(f"--data {data}: no such file")
    template = Path(include_path()) / TEMPLATE
    lines = [
        f"# ifharness task {spec.name!r} under lm-eval, written by `ifharness lmeval-task`:",
        f"#   {path.resolve()}",
        "# Same data, verifiers, profile and generation settings as `ifharness run`. Paths are",
        "# absolute: write it again after moving the task files or ifharness.",
        f"include: {_scalar(str(template))}",
        f"task: {lm_name}",
        "generation_kwargs:",
        *(f"  {k}: {_scalar(v)}" for k, v in _generation_kwargs(spec).items()),
        "metadata:",
        "  version: 1.0",
        f"  ifharness_task: {_scalar(ref)}",
    ]
    if data is not None:
        lines.append(f"  data: {_scalar(str(data.resolve()))}")
    return lm_name, "\n".join(lines) + "\n"


def write_lmeval_task(
    task: str | Path,
    out_dir: str | Path,
    name: str | None = None,
    data: str | Path | None = None,
) -> Path:
    """Write ``<out_dir>/<lm-eval task name>.yaml`` for ``task``; its path.

    ``lm_eval --include_path <out_dir> --tasks <lm-eval task name>`` then runs it."""
    lm_name, text = lmeval_yaml_text(task, name=name, data=data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{lm_name}.yaml"
    path.write_bytes(text.encode("utf-8"))
    return path
