"""lm-eval plugin: ifharness tasks as lm-evaluation-harness tasks (``ifharness_*``).

The YAML files here are the tasks; every hook they name lives in :mod:`ifharness.lmeval.hooks`
and calls the same loader, reasoning parsers, verifiers and statistics as ``ifharness score``,
so the same answers give the same numbers in both.

Use with lm-eval 0.4.13 and earlier through the include path::

    lm_eval --model hf --model_args pretrained=DIR --tasks ifharness_default \\
        --include_path "$(ifharness lmeval-path)" --apply_chat_template

or in Python with :func:`task_manager`. Newer lm-eval also finds this folder through the
``lm_eval.tasks`` entry point that the package declares. Any other task (a generated set, a
user's task YAML) gets a YAML of its own from ``ifharness lmeval-task`` (:mod:`.export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TASK_PREFIX = "ifharness_"


def include_path() -> str:
    """The folder holding the ``ifharness_*`` task YAMLs (for ``--include_path``)."""
    return str(Path(__file__).resolve().parent)


def task_manager(metadata: dict[str, Any] | None = None, **kwargs: Any):
    """A ``lm_eval.tasks.TaskManager`` that knows the ``ifharness_*`` tasks besides lm-eval's own.

    ``metadata`` reaches the tasks' data loader, e.g. ``{"data": "input_data.jsonl"}``.
    """
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        from ifharness.errors import IfharnessError

        raise IfharnessError(
            "the lm-eval plugin needs lm-eval: pip install 'lm-eval>=0.4.13'"
        ) from None
    return TaskManager(include_path=include_path(), metadata=metadata, **kwargs)
