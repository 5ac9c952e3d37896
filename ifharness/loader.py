"""Task loading: a task YAML plus its data, validated against the verifier registry.

(The name ``ifharness.tasks`` is taken by the bundled task data package, hence ``loader``.)

Every sample is checked before anything is generated or scored: unknown constraint ids and
malformed kwargs are reported together, each with the file, line and sample key. Ids are
looked up in the task's ``suite`` only (suites are namespaces: another suite may give the
same id another meaning), and each sample's messages must fit the task's ``turns``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ifharness.verifiers import (
    KwargsError,
    Profile,
    UnknownConstraintError,
    UnknownSuiteError,
    get,
    get_profile,
    require_suite,
)

from .errors import DataError, TaskNotFound
from .files import read_jsonl
from .schema import SAMPLE_META_FIELDS, Instruction, Message, Sample, TaskSpec

MAX_REPORTED_ERRORS = 20


@dataclass
class Task:
    spec: TaskSpec
    samples: list[Sample]
    data_origin: str
    data_hash: str
    profile: Profile
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def limit(self, n: int | None) -> Task:
        if n is None:
            return self
        return Task(
            self.spec, self.samples[:n], self.data_origin, self.data_hash, self.profile, self.notes
        )


def bundled_task_names() -> list[str]:
    root = resources.files("ifharness.tasks")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def _spec_path(name: str) -> tuple[Path, TaskSpec]:
    path = Path(name)
    if not (name.endswith((".yaml", ".yml")) and path.is_file()):
        candidate = resources.files("ifharness.tasks") / f"{name}.yaml"
        if not candidate.is_file():
            known = ", ".join(bundled_task_names())
            raise TaskNotFound(
                f"unknown task {name!r}: bundled tasks are {known}; or give a path to a task YAML"
            )
        path = Path(str(candidate))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return path, TaskSpec.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as e:
        raise DataError(f"task file {path} is not a valid task definition:\n{e}") from None


def load_task(name: str, data: str | Path | None = None, profile: str | None = None) -> Task:
    """Load a bundled task by name (or a task YAML path), optionally on a local JSONL ``data``.

    The Hugging Face dataset named in the task is read only when no ``data`` is given and the
    task ships no file; ``datasets`` is imported then and only then.
    """
    spec_path, spec = _spec_path(name)
    _require_suite(spec, spec_path)  # before the profile: an outside suite may bring its own
    prof = get_profile(profile or spec.profile)
    if data is not None:
        rows, origin = _rows_from_jsonl(Path(data)), str(data)
    elif spec.source.file:
        path = spec_path.parent / spec.source.file
        rows, origin = _rows_from_jsonl(path), f"{spec.name}:{spec.source.file}"
    elif spec.source.hf:
        rows, origin = _rows_from_hf(spec), f"hf:{spec.source.hf.path}@{spec.source.hf.revision}"
    else:
        raise DataError(
            f"task {spec.name} ships no data and names no Hugging Face dataset "
            f"({spec_path}): pass the samples with --data FILE (Python: data=FILE)"
        )
    samples = build_samples(spec, rows, origin, prof)
    return Task(spec, samples, origin, dataset_hash(samples), prof)


def _require_suite(spec: TaskSpec, where: Path | str) -> None:
    try:
        require_suite(spec.suite)
    except UnknownSuiteError as e:
        raise DataError(f"task {spec.name} ({where}): {e}") from None


def _rows_from_jsonl(path: Path) -> list[tuple[int | None, dict[str, Any]]]:
    return list(read_jsonl(path, what="data file"))


def _rows_from_hf(spec: TaskSpec) -> list[tuple[int | None, dict[str, Any]]]:
    src = spec.source.hf
    if src is None:
        raise DataError(f"task {spec.name}: source names no Hugging Face dataset")
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"task {spec.name} reads the Hugging Face dataset {src.path}: install the `datasets` "
            "package (pip install 'ifharness[hf]'), or pass a local JSONL with --data FILE"
        ) from None
    try:
        ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=src.revision)
    except Exception as e:  # noqa: BLE001 - the hub's errors are many; the advice is one
        raise DataError(
            f"could not load {src.path}@{src.revision} ({type(e).__name__}: {e}); "
            "offline, pass the data as a local JSONL with --data FILE"
        ) from None
    return [(i + 1, dict(row)) for i, row in enumerate(ds)]


def build_samples(
    spec: TaskSpec,
    rows: Iterable[tuple[int | None, dict[str, Any]]],
    origin: str,
    profile: Profile,
) -> list[Sample]:
    """Turn raw rows into validated samples; collect every problem before raising."""
    _require_suite(spec, origin)
    f = spec.fields
    samples: list[Sample] = []
    errors: list[str] = []
    seen: dict[str, int | None] = {}
    for index, (line, row) in enumerate(rows):
        where = f"{origin}:{line}" if line else f"{origin}[{index}]"
        key = row.get(f.key, index)
        where_key = f"{where} (key {key})"
        try:
            ids = row.get(f.instruction_ids)
            kwargs_list = row.get(f.kwargs) or [{} for _ in ids or []]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise DataError(f"field {f.instruction_ids!r} must be a list of constraint ids")
            if not isinstance(kwargs_list, list) or len(kwargs_list) != len(ids):
                raise DataError(
                    f"field {f.kwargs!r} must be a list with one object per instruction "
                    f"({len(ids)} ids)"
                )
            messages = _messages(row, f.messages, f.prompt, spec.turns)
            rng = random.Random(0)  # the reference's seed, drawn from in instruction order
            instructions = []
            for n, (cid, kw) in enumerate(zip(ids, kwargs_list)):
                if kw is not None and not isinstance(kw, dict):
                    raise DataError(f"instruction {n} ({cid}): kwargs must be an object")
                try:
                    bound = get(cid, spec.suite).bind(kw, rng, profile)
                    instructions.append(Instruction(id=cid, kwargs=bound))
                except (KwargsError, UnknownConstraintError) as e:
                    raise DataError(f"instruction {n}: {e}") from None
        except DataError as e:
            errors.append(f"{where_key}: {e}")
            continue
        if str(key) in seen:
            errors.append(f"{where_key}: duplicate key (first at line {seen[str(key)]})")
            continue
        seen[str(key)] = line
        meta = {k: row[k] for k in SAMPLE_META_FIELDS if row.get(k) is not None}
        samples.append(
            Sample(
                key=key,
                messages=messages,
                instructions=instructions,
                source_line=line,
                meta=meta,
            )
        )
    if errors:
        shown = "\n  ".join(errors[:MAX_REPORTED_ERRORS])
        hidden = len(errors) - MAX_REPORTED_ERRORS
        more = f"\n  … and {hidden} more" if hidden > 0 else ""
        raise DataError(
            f"{len(errors)} invalid sample(s) in {origin}; fix them or remove them:"
            f"\n  {shown}{more}"
        )
    if not samples:
        raise DataError(f"{origin} holds no samples")
    return samples


def _messages(
    row: dict[str, Any], messages_field: str | None, prompt_field: str, turns: str = "single"
) -> list[Message]:
    """The conversation of one row, checked against the task's ``turns`` (see ``TaskSpec``)."""
    if turns == "multi" and (not messages_field or row.get(messages_field) is None):
        raise DataError(
            f"turns: multi needs the field {messages_field!r}: a list of "
            "{role, content} holding the fixed history and the user turn to answer"
        )
    if messages_field and row.get(messages_field) is not None:
        try:
            messages = [Message.model_validate(m) for m in row[messages_field]]
        except (ValidationError, TypeError) as e:
            raise DataError(
                f"field {messages_field!r} must be a list of {{role, content}}: {e}"
            ) from None
        if not any(m.role == "user" for m in messages):
            raise DataError(f"field {messages_field!r} has no user message")
        _check_turns(messages, messages_field, turns)
        return messages
    prompt = row.get(prompt_field)
    if not isinstance(prompt, str):
        raise DataError(f"field {prompt_field!r} must be a string")
    return [Message(role="user", content=prompt)]


def _check_turns(messages: list[Message], messages_field: str, turns: str) -> None:
    roles = [m.role for m in messages if m.role != "system"]
    if turns == "single":
        if roles != ["user"]:
            raise DataError(
                f"field {messages_field!r} holds {roles.count('user')} user and "
                f"{roles.count('assistant')} assistant message(s); a turns: single task takes "
                "one user message (set turns: multi to replay a fixed history)"
            )
        return
    if roles[-1] != "user" or "assistant" not in roles:
        raise DataError(
            f"field {messages_field!r} must be a fixed history (turns: multi): at least one "
            "assistant turn, and a user message last (the turn the model answers); "
            f"roles here: {', '.join(roles)}"
        )


def dataset_hash(samples: list[Sample]) -> str:
    """sha256 over the samples as scored (messages, ids, set-up kwargs), independent of
    the file's formatting or of null padding."""
    h = hashlib.sha256()
    for s in samples:
        h.update(
            json.dumps(
                [
                    s.key,
                    [m.model_dump() for m in s.messages],
                    [i.model_dump() for i in s.instructions],
                ],
                ensure_ascii=False,
                sort_keys=True,
                default=str,
            ).encode()
        )
        h.update(b"\n")
    return h.hexdigest()


def task_metric(name: str) -> str | None:
    """A task's headline metric from its YAML alone (no data loaded); None when unknown."""
    try:
        return _spec_path(name)[1].metric
    except Exception:  # noqa: BLE001 - an unknown or moved task has no known metric
        return None
