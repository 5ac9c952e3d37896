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
from collections.abc import Iterable, Sequence
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


class _Named:
    """What a task's spec tells of it, loaded (:class:`Task`) or not (:class:`TaskFile`)."""

    spec: TaskSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def conversational(self) -> bool:
        """A conversation task: samples are (key, turn), answered turn by turn."""
        return self.spec.turns == "conversation"


@dataclass
class Task(_Named):
    spec: TaskSpec
    samples: list[Sample]
    data_origin: str
    data_hash: str
    profile: Profile
    notes: list[str] = field(default_factory=list)

    def limit(self, n: int | None) -> Task:
        """The first ``n`` samples; in a conversation task the first ``n`` conversations
        (every turn of each)."""
        if n is None:
            return self
        samples = self.samples[:n]
        if self.conversational:
            keys: list[str] = []
            for s in self.samples:
                if str(s.key) not in keys:
                    keys.append(str(s.key))
            first = set(keys[:n])
            samples = [s for s in self.samples if str(s.key) in first]
        return Task(self.spec, samples, self.data_origin, self.data_hash, self.profile, self.notes)


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
    spec_path, spec, prof = _resolve(name, profile)
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


def _resolve(name: str, profile: str | None) -> tuple[Path, TaskSpec, Profile]:
    spec_path, spec = _spec_path(name)
    _require_suite(spec, spec_path)  # before the profile: an outside suite may bring its own
    return spec_path, spec, get_profile(profile or spec.profile)


@dataclass
class TaskFile(_Named):
    """A task whose samples are a local JSONL file, not loaded: what the streaming scorer
    (``ifharness.stream``) reads a range of lines at a time, so a million prompts are never
    in memory at once. It answers what a :class:`Task` answers without its samples (name,
    spec, profile, where the data comes from); :meth:`load` is the whole task."""

    spec: TaskSpec
    profile: Profile
    path: Path
    data_origin: str
    given: tuple[str, str | Path | None]  # load_task's name (or YAML path) and data
    notes: list[str] = field(default_factory=list)

    def load(self) -> Task:
        name, data = self.given
        return load_task(name, data=data, profile=self.profile.name)


def task_file(
    name: str, data: str | Path | None = None, profile: str | None = None
) -> TaskFile | None:
    """The task as a :class:`TaskFile` when its samples are one local JSONL file (``data``,
    or the file the task ships) that :func:`load_task` would read line by line; ``None`` when
    they come from Hugging Face, a CSV file or one JSON array (load the task instead)."""
    spec_path, spec, prof = _resolve(name, profile)
    if data is not None:
        path, origin = Path(data), str(data)
    elif spec.source.file:
        path, origin = spec_path.parent / spec.source.file, f"{spec.name}:{spec.source.file}"
    else:
        return None
    if path.suffix.lower() == ".csv" or _is_json_array(path) or not path.is_file():
        return None  # (a missing file: load_task says so, in its words)
    return TaskFile(spec, prof, path, origin, (name, data))


def _require_suite(spec: TaskSpec, where: Path | str) -> None:
    try:
        require_suite(spec.suite)
    except UnknownSuiteError as e:
        raise DataError(f"task {spec.name} ({where}): {e}") from None


def _rows_from_jsonl(path: Path) -> list[tuple[int | None, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        return _rows_from_csv(path)
    if _is_json_array(path):
        return _rows_from_json_array(path)
    return list(read_jsonl(path, what="data file"))


def _is_json_array(path: Path) -> bool:
    """A file whose first non-blank character is ``[`` holds one JSON array (ReasonIF's
    ``reasonIF_dataset.json``), not JSON Lines, whatever its name ends with."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError:
        return False  # read_jsonl reports a missing file or a folder with the right words
    return head.removeprefix(b"\xef\xbb\xbf").startswith(b"[")


def _rows_from_json_array(path: Path) -> list[tuple[int | None, dict[str, Any]]]:
    """Rows of a JSON array of objects. There are no lines to name, so a row is named by its
    index (``file[3]``), which is also its key when the row has none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}); re-encode it as UTF-8") from None
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno}); a file that "
            "starts with '[' must be one JSON array of objects"
        ) from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of objects")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path}[{i}]: expected a JSON object, got {type(row).__name__}")
    return [(None, row) for row in data]


def _rows_from_csv(path: Path) -> list[tuple[int | None, dict[str, Any]]]:
    """Rows of a CSV file with a header line (Multi-IF's release is one), as strings: a cell
    holding JSON is decoded where the task says so (``fields.decode_json``). The line of a
    row is the line its record starts on."""
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)  # prompts and answers may be long cells
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    rows: list[tuple[int | None, dict[str, Any]]] = []
    with handle:
        reader = csv.DictReader(handle)
        start = 2
        try:
            for record in reader:
                if None in record:
                    raise DataError(
                        f"{path}:{start}: more cells than the header has columns; quote "
                        "cells that hold commas"
                    )
                rows.append((start, dict(record)))
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path}:{reader.line_num}: not a readable CSV row ({e})") from None
    if reader.fieldnames is None:
        raise DataError(f"{path}: empty CSV file; the first line must name the columns")
    return rows


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
        # data_files: a repository holding one JSON file (ReasonIF's) and no loading script
        extra = {"data_files": src.data_files} if src.data_files else {}
        ds = datasets.load_dataset(
            src.path, src.name, split=src.split, revision=src.revision, **extra
        )
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
    samples, errors = samples_of_rows(spec, rows, origin, profile)
    if errors:
        raise invalid_samples(errors, origin)
    if not samples:
        raise DataError(f"{origin} holds no samples")
    return samples


def invalid_samples(errors: Sequence[str], origin: str) -> DataError:
    """The one error for a data file with bad rows: how many, and the first few."""
    shown = "\n  ".join(errors[:MAX_REPORTED_ERRORS])
    hidden = len(errors) - MAX_REPORTED_ERRORS
    more = f"\n  … and {hidden} more" if hidden > 0 else ""
    return DataError(
        f"{len(errors)} invalid sample(s) in {origin}; fix them or remove them:\n  {shown}{more}"
    )


def samples_of_rows(
    spec: TaskSpec,
    rows: Iterable[tuple[int | None, dict[str, Any]]],
    origin: str,
    profile: Profile,
    first_index: int = 0,
) -> tuple[list[Sample], list[str]]:
    """:func:`build_samples` without raising: the valid samples and every problem found.
    ``first_index``: the index of the first row in the file (a row without a key is keyed by
    its index; the streaming scorer builds a file's samples a range of rows at a time)."""
    _require_suite(spec, origin)
    f = spec.fields
    samples: list[Sample] = []
    errors: list[str] = []
    seen: dict[str, int | None] = {}
    for index, (line, row) in enumerate(rows, start=first_index):
        where = f"{origin}:{line}" if line else f"{origin}[{index}]"
        key = row.get(f.key, index)
        where_key = f"{where} (key {key})"
        if spec.turns == "conversation":
            if str(key) in seen:
                errors.append(f"{where_key}: duplicate key (first at line {seen[str(key)]})")
                continue
            seen[str(key)] = line
            turns, problems = _conversation(spec, row, key, line, profile)
            errors.extend(f"{where_key}{p}" for p in problems)
            samples.extend(turns)
            continue
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
            # with a history in ``messages`` the row's own ``prompt`` (IFBench multi-turn: the
            # original single-turn task) is kept: it fills a missing ``prompt_to_repeat``, as
            # olmo-eval does, and stays on the sample's meta
            row_prompt = _history_prompt(row, f)
            rng = random.Random(0)  # the reference's seed, drawn from in instruction order
            instructions = []
            for n, (cid, kw) in enumerate(zip(ids, kwargs_list)):
                if kw is not None and not isinstance(kw, dict):
                    raise DataError(f"instruction {n} ({cid}): kwargs must be an object")
                try:
                    constraint = get(cid, spec.suite)
                    if (
                        row_prompt is not None
                        and "prompt_to_repeat" in constraint.kwargs_model.model_fields
                        and not (kw or {}).get("prompt_to_repeat")
                    ):
                        kw = {**(kw or {}), "prompt_to_repeat": row_prompt}
                    bound = constraint.bind(kw, rng, profile)
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
        if row_prompt is not None:
            meta["prompt"] = row_prompt
        samples.append(
            Sample(
                key=key,
                messages=messages,
                instructions=instructions,
                source_line=line,
                meta=meta,
            )
        )
    return samples, errors


def _history_prompt(row: dict[str, Any], f: Any) -> str | None:
    """The row's ``prompt`` when the conversation comes from ``messages`` (else None)."""
    if not f.messages or row.get(f.messages) is None:
        return None
    prompt = row.get(f.prompt)
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def _conversation(
    spec: TaskSpec, row: dict[str, Any], key: Any, line: int | None, profile: Profile
) -> tuple[list[Sample], list[str]]:
    """The samples of one conversation row (one per user turn), and its problems, each
    starting with the turn it is in (``" turn 2: …"``) so the message names file, line,
    key and turn."""
    f = spec.fields
    try:
        raw_turns = _raw_turns(row, f)
    except DataError as e:
        return [], [f": {e}"]
    if not raw_turns:
        where = (
            f"columns {f.turn_columns.format(n=1)}{f.prompt}, …"
            if f.turn_columns
            else (f"field {f.turns!r}")
        )
        return [], [f": no user turn ({where} is empty)"]
    meta = {k: row[k] for k in SAMPLE_META_FIELDS if row.get(k) not in (None, "")}
    samples: list[Sample] = []
    problems: list[str] = []
    in_force: dict[str, Any] = {}  # id -> raw kwargs, in the order they came (cumulative)
    for n, (turn, prompt, ids, kwargs_list) in enumerate(raw_turns):
        try:
            messages = [_turn_message(prompt, f.prompt)]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise DataError(f"{f.instruction_ids!r} must be a list of constraint ids")
            if kwargs_list is None or kwargs_list == []:
                kwargs_list = [{} for _ in ids]
            if not isinstance(kwargs_list, list) or len(kwargs_list) != len(ids):
                raise DataError(
                    f"{f.kwargs!r} must be a list with one object per instruction ({len(ids)} ids)"
                )
            kwargs_list = [_decoded(kw) if f.decode_json else kw for kw in kwargs_list]
            own = list(zip(ids, kwargs_list))
            if spec.accumulate == "cumulative":
                listed = {cid for cid, _ in own}
                earlier = [(cid, kw) for cid, kw in in_force.items() if cid not in listed]
                for cid, kw in own:
                    in_force.pop(cid, None)
                    in_force[cid] = kw
                pairs = earlier + own  # in the order they came, as Multi-IF lists them
            else:
                pairs = own
            rng = random.Random(0)  # the reference's seed, drawn from in instruction order
            instructions = []
            for i, (cid, kw) in enumerate(pairs):
                if kw is not None and not isinstance(kw, dict):
                    raise DataError(f"instruction {i} ({cid}): kwargs must be an object")
                try:
                    bound = get(cid, spec.suite).bind(kw, rng, profile)
                except (KwargsError, UnknownConstraintError) as e:
                    raise DataError(f"instruction {i}: {e}") from None
                instructions.append(Instruction(id=cid, kwargs=bound))
        except DataError as e:
            problems.append(f" turn {turn}: {e}")
            continue
        if n == 0 and f.messages and isinstance(row.get(f.messages), list):
            system = [
                m for m in row[f.messages] if isinstance(m, dict) and m.get("role") == "system"
            ]
            messages = [Message.model_validate(m) for m in system] + messages
        samples.append(
            Sample(
                key=key,
                turn=turn,
                messages=messages,
                instructions=instructions,
                source_line=line,
                meta=meta,
            )
        )
    return samples, problems


def _raw_turns(row: dict[str, Any], f: Any) -> list[tuple[int, Any, Any, Any]]:
    """(turn number, prompt, ids, kwargs) of each user turn the row has, numbered as the data
    numbers them; a turn with an empty or ``None`` prompt is skipped (Multi-IF's rows with
    fewer than three turns)."""
    out: list[tuple[int, Any, Any, Any]] = []
    if f.turn_columns:
        n = 1
        while True:
            prefix = f.turn_columns.format(n=n)
            column = prefix + f.prompt
            if column not in row:
                break
            prompt = _cell(row[column], f.decode_json)
            if prompt is not None:
                ids = _cell(row.get(prefix + f.instruction_ids), f.decode_json)
                kwargs = _cell(row.get(prefix + f.kwargs), f.decode_json)
                out.append((n, prompt, [] if ids is None else ids, kwargs))
            n += 1
        return out
    items = _cell(row.get(f.turns), f.decode_json)
    if items is None:
        raise DataError(
            f"field {f.turns!r} is missing: a conversation row lists its user turns there, "
            f"each {{{f.prompt}, {f.instruction_ids}, {f.kwargs}}} (or set fields.turn_columns)"
        )
    if not isinstance(items, list):
        raise DataError(f"field {f.turns!r} must be a list of turns")
    for n, item in enumerate(items, start=1):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise DataError(f"field {f.turns!r}: turn {n} must be an object")
        prompt = _cell(item.get(f.prompt), f.decode_json)
        if prompt is None:
            continue
        ids = _cell(item.get(f.instruction_ids), f.decode_json)
        out.append(
            (n, prompt, [] if ids is None else ids, _cell(item.get(f.kwargs), f.decode_json))
        )
    return out


_EMPTY_CELLS = ("", "None", "none", "null", "nan", "NaN")


def _cell(value: Any, decode: bool) -> Any:
    """A cell as data: with ``decode``, a string holding JSON is decoded (a string that is not
    JSON stays as it is), and an empty or ``None`` cell is None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # pandas' NaN for an empty CSV cell
        return None
    if not decode or not isinstance(value, str):
        return value
    text = value.strip()
    if text in _EMPTY_CELLS:
        return None
    if text[:1] in '[{"':
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _decoded(kwargs: Any) -> Any:
    """One instruction's kwargs, decoded once more when they are JSON text (Multi-IF encodes
    each object as a string inside the list's JSON)."""
    if isinstance(kwargs, str):
        text = kwargs.strip()
        if text in _EMPTY_CELLS:
            return {}
        try:
            kwargs = json.loads(text)
        except json.JSONDecodeError:
            raise DataError(f"kwargs {kwargs[:60]!r} is not a JSON object") from None
    return kwargs


def _turn_message(prompt: Any, prompt_field: str) -> Message:
    """A turn's user message: its text, or a ``{role: user, content}`` object (Multi-IF)."""
    if isinstance(prompt, str):
        return Message(role="user", content=prompt)
    if isinstance(prompt, dict) and isinstance(prompt.get("content"), str):
        if prompt.get("role", "user") != "user":
            raise DataError(f"{prompt_field!r} must be a user message, got role {prompt['role']!r}")
        return Message(role="user", content=prompt["content"])
    raise DataError(
        f"{prompt_field!r} must be a string or a {{role: user, content}} object, "
        f"got {type(prompt).__name__}"
    )


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
    for s in samples:  # one at a time: a million samples' bytes are never held at once
        h.update(hashed_bytes((s,)))
    return h.hexdigest()


def hashed_bytes(samples: Iterable[Sample]) -> bytes:
    """What :func:`dataset_hash` hashes of these samples (one line each): the hash of a file
    is that of its ranges' bytes one after the other."""
    return b"".join(
        json.dumps(
            [
                s.key,
                [m.model_dump() for m in s.messages],
                [i.model_dump() for i in s.instructions],
                *([] if s.turn is None else [s.turn]),  # single-turn hashes unchanged
            ],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        ).encode()
        + b"\n"
        for s in samples
    )


def task_metric(name: str) -> str | None:
    """A task's headline metric from its YAML alone (no data loaded); None when unknown."""
    try:
        return _spec_path(name)[1].metric
    except Exception:  # noqa: BLE001 - an unknown or moved task has no known metric
        return None
