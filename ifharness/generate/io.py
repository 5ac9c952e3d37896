"""Writing a generated set as an ordinary task folder, byte for byte reproducibly.

A generated task is ``<out>/<name>.yaml`` (a normal ``TaskSpec`` with a ``generated:`` block)
and ``<out>/<name>.jsonl`` beside it, so ``ifharness run --task <out>/<name>.yaml``, ``score``,
the gate and the lm-eval plugin take it as they take a bundled task. Both files are written
with sorted keys, ``\\n`` line ends and no clock or path in them: the same arguments give the
same bytes, so a file hash is a test of determinism and of a regenerated set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ifharness.errors import DataError
from ifharness.schema import TaskSpec

#: Row fields that only the wording changes; ``set_id`` leaves them out, so the renderings of
#: one set share it.
RENDERING_FIELDS = frozenset({"prompt", "rendering", "generator"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def set_id(rows: Iterable[Mapping[str, Any]]) -> str:
    """First 16 hex digits of the sha256 of the rows' rendering-independent content.

    Every field but the prompt text, the rendering name and the ``generator`` stamp (which
    carries the set id itself) counts, in row order: keys, base tasks, constraint ids and
    their kwargs, and a density row's level.
    """
    content = [{k: v for k, v in row.items() if k not in RENDERING_FIELDS} for row in rows]
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()[:16]


def jsonl_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """One JSON object a line, keys sorted, UTF-8 kept as is."""
    return "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)


def yaml_text(doc: Mapping[str, Any]) -> str:
    """Block-style YAML with sorted keys and no line folding (a long description stays one
    scalar, so the text does not depend on the yaml library's wrapping width)."""
    return yaml.safe_dump(
        dict(doc), sort_keys=True, allow_unicode=True, default_flow_style=False, width=1 << 16
    )


def write_task(
    out_dir: str | Path, name: str, rows: list[dict[str, Any]], spec: Mapping[str, Any]
) -> Path:
    """Write ``<out_dir>/<name>.jsonl`` (``rows``) and ``<out_dir>/<name>.yaml``; the YAML's path.

    ``spec`` holds the ``TaskSpec`` fields other than ``name`` and ``source`` (``suite``,
    ``description``, ``generation``, ``metric``, ``generated`` …); ``name`` and
    ``source: {file: <name>.jsonl}`` are set here. The document is validated as a ``TaskSpec``
    before anything is written, so a malformed spec never leaves a half-written task.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"task name {name!r}: use a plain file name without folders")
    doc = {**spec, "name": name, "source": {"file": f"{name}.jsonl"}}
    try:
        TaskSpec.model_validate(doc)
    except ValidationError as e:
        raise DataError(f"generated task {name} is not a valid task definition:\n{e}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_path, spec_path = out / f"{name}.jsonl", out / f"{name}.yaml"
    data_path.write_bytes(jsonl_text(rows).encode("utf-8"))
    spec_path.write_bytes(yaml_text(doc).encode("utf-8"))
    return spec_path
