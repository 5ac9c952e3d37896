"""The run folder's one owner: its schema, its paths, and the only code that opens its files.

A run folder (``results/<model>__<task>/`` by default) is what every stage hands to the next:

* ``run.json`` — :class:`RunInfo`: what was run or scored (task, dataset hash, profile,
  headline metric, model, sampling, backend and its options, engine facts, versions,
  ``status``), with a ``schema_version``. Rewritten atomically at each change.
* ``samples.jsonl`` — :class:`SampleRow` per prompt: the task *as scored* (messages and the
  bound kwargs of each instruction), so reports never reload a task YAML or a dataset.
* ``completions.jsonl`` — :class:`CompletionRow` per answer. ``ifharness run`` appends it
  chunk by chunk (one fsynced write per chunk, see :class:`CompletionStore`); ``ifharness
  score`` writes it once from the answers it joined, so every folder carries its answers.
* ``failed.jsonl`` — :class:`FailureRow` per sample a runner gave up on (only while some did).
* ``verdicts.jsonl`` — :class:`VerdictRow` per prompt (per prompt and sample with ``n > 1``).
  The streaming scorer writes it (and ``score``'s ``completions.jsonl``) chunk by chunk
  through :class:`RowsWriter`: a temp file renamed into place once whole.
* ``metrics.json`` — the scorer's metrics (:class:`MetricsFile` checks its shape).
* ``report.html``, ``engine.log`` — for people; nothing reads them back.

Rows are ``TypedDict``s: plain dicts at run time (the scorer's hot loops and the statistics
index them), typed for the checker, validated by pydantic where a file is read back.
``run.json`` is a pydantic model, refused with a message that names the file and the field
when it does not fit.

Folders written before the schema had a version (ifharness 0.1.0, no ``schema_version`` in
``run.json``) hold the same ``run.json`` keys; they are read as version 1. What they lack
(``samples.jsonl``; ``completions.jsonl`` for scored folders; ``metric`` for scored folders)
is reported as absent, never guessed: re-score such a folder with ``ifharness score`` to get
a complete one.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from .errors import DataError, IfharnessError
from .files import atomic_write_json, atomic_write_text, dumps_line, read_jsonl
from .schema import work_id

if TYPE_CHECKING:
    from typing_extensions import Self

    from .runners.base import Completion, Failure

SCHEMA_VERSION = 2
Key = int | str
RunStatus = Literal["running", "interrupted", "failed", "incomplete", "complete"]

RUN_JSON = "run.json"
SAMPLES = "samples.jsonl"
COMPLETIONS = "completions.jsonl"
FAILED = "failed.jsonl"
VERDICTS = "verdicts.jsonl"
METRICS = "metrics.json"
REPORT = "report.html"
ENGINE_LOG = "engine.log"
#: what ``--overwrite`` removes (the lock stays: it is held while this runs)
RUN_FILES = (RUN_JSON, SAMPLES, COMPLETIONS, FAILED, VERDICTS, METRICS, REPORT, ENGINE_LOG)
GLOB_CHARS = set("*?[")


# ----------------------------------------------------------------------------- rows


class SampleRow(TypedDict):
    """One prompt of the task as it was scored."""

    key: Key
    messages: list[dict[str, str]]
    instructions: list[dict[str, Any]]  # [{"id": …, "kwargs": {…bound…}}]
    # a generated row's ``rendering``, ``level``, ``base_task``, ``generator`` (Sample.meta),
    # so a report groups by density level from the folder alone; absent for ordinary data
    meta: NotRequired[dict[str, Any]]
    turn: NotRequired[int]  # a conversation task's turn (1, 2, …); ``messages`` is that turn's


class CompletionRow(TypedDict):
    """One answer. ``raw`` is the generated text as it came, kept when the trace was split off.

    In a conversation task a row also has ``turn`` and ``messages``: the whole request sent
    for that turn (earlier user turns and the model's own earlier answers included). It is
    stored in the answer's own row, not rebuilt later, so that what the model was shown is
    on record exactly, and in the same fsynced write as the answer: a kill can never leave a
    request without its answer or the reverse, and resuming has one file to read.
    """

    key: Key
    sample: int
    response: str
    reasoning: str | None
    finish_reason: str | None
    n_tokens: int | None
    raw: NotRequired[str]
    turn: NotRequired[int]
    messages: NotRequired[list[dict[str, str]]]


class FailureRow(TypedDict):
    """A sample the runner gave up on (it is not in ``completions.jsonl``)."""

    key: Key
    error: str
    attempts: NotRequired[int]
    status: NotRequired[int | None]
    reason: NotRequired[str]  # "failed" (retrying may help) or "missing" (it cannot)
    at: NotRequired[str]
    turn: NotRequired[int]  # a conversation task's turn


class VerdictRow(TypedDict):
    """Strict and loose verdicts of one answer, one entry per instruction (None: unscorable)."""

    key: Key
    instruction_id_list: list[str]
    strict: list[bool | None]
    loose: list[bool | None]
    missing: NotRequired[bool]
    unscorable: NotRequired[dict[str, str]]
    sample: NotRequired[int]
    turn: NotRequired[int]  # a conversation task's turn
    # only where the task checks the trace (``check: reasoning|both``; ifharness.scoring):
    check: NotRequired[str]
    reasoning_strict: NotRequired[list[bool | None]]  # the trace's verdicts
    reasoning_loose: NotRequired[list[bool | None]]
    trace_missing: NotRequired[bool]  # no trace, or a blank one: trace verdicts all False
    trace_whole_text: NotRequired[bool]  # no trace split off; the whole text was checked
    reasoning_unscorable: NotRequired[dict[str, str]]


def row_id(row: VerdictRow | CompletionRow) -> tuple[str, int]:
    """How rows pair across runs and files: the unit of work (the prompt key as text, with
    its turn in a conversation: :func:`row_work_id`) and the sample index."""
    return row_work_id(row), int(row.get("sample", 0) or 0)


def row_work_id(row: Mapping[str, object]) -> str:
    """``str(key)``, or ``"<key> turn <k>"`` for a row of a conversation task (any of the
    folder's rows: completion, verdict, failure, sample)."""
    turn = row.get("turn")
    return work_id(cast(Key, row["key"]), None if turn is None else int(cast(int, turn)))


def _wanted(obj: dict[str, Any], only: Container[Any] | None, ident: Callable[..., Any]) -> bool:
    """Whether a raw row may be one of ``only`` (its id, ``ident(obj)``, is among them):
    rows that cannot be are skipped before they are checked. A row whose id cannot be read
    is kept, so that checking it says what is wrong."""
    if only is None:
        return True
    try:
        return ident(obj) in only
    except (KeyError, TypeError, ValueError):
        return True


_COMPLETION = TypeAdapter(CompletionRow)
_VERDICT = TypeAdapter(VerdictRow)
_SAMPLE = TypeAdapter(SampleRow)
_FAILURE = TypeAdapter(FailureRow)


# ----------------------------------------------------------------------------- run.json


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileInfo(_Record):
    name: str
    flags: list[str] = Field(default_factory=list)
    description: str = ""


class FileRef(_Record):
    path: str
    sha256: str


class RunInfo(BaseModel):
    """``run.json``. One model for the three kinds of folder:

    ``kind="run"`` (``ifharness run``: model, sampling, backend, engine, identity, sessions),
    ``kind="score"`` (``ifharness score``: ``responses`` names the file scored), and a score
    folder with ``source="lm-eval"`` (``--from-lmeval``: ``lmeval`` names the samples file).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: Literal["run", "score"]
    source: str | None = None
    status: RunStatus = "complete"
    error: str | None = None
    # the task as scored
    task: str
    suite: str
    data: str
    dataset_hash: str
    n_samples: int
    profile: ProfileInfo
    metric: str | None = None  # the headline metric (ranking, gating); None only in v1 folders
    limit: int | None = None
    langdetect: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    platform: str = ""
    # what produced the answers
    responses: FileRef | None = None
    lmeval: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    chat_template_sha256: str | None = None
    sampling: dict[str, Any] | None = None
    seed: int | None = None
    system_prompt: str | None = None
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    reasoning_parser: dict[str, Any] | None = None
    backend: dict[str, Any] | None = None
    engine: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    started: str | None = None
    finished: str | None = None
    sessions: list[dict[str, Any]] = Field(default_factory=list)
    generation: dict[str, Any] | None = None
    # the task's ``generated:`` block (``ifharness generate``: generator version, family, seed,
    # rendering, set_id, args, vocabulary); None for authored tasks and for older folders
    generated: dict[str, Any] | None = None
    # ``--preset``: name, version, source, its settings, what flags overrode, what applied
    # (``presets.Preset.record``); None when no preset was used
    preset: dict[str, Any] | None = None

    @property
    def model_name(self) -> str | None:
        m = self.model or {}
        name = m.get("name") or m.get("id") or m.get("path")
        return str(name) if name else None

    @property
    def profile_name(self) -> str:
        return self.profile.name

    @property
    def preset_label(self) -> str | None:
        """``name@vN`` of the preset the run used, None without one."""
        p = self.preset or {}
        return f"{p['name']}@v{p.get('version', '?')}" if p.get("name") else None


class MetricsFile(BaseModel):
    """The shape ``metrics.json`` must have; the metric values themselves are extra keys."""

    model_config = ConfigDict(extra="allow")

    n_prompts: int
    n_instructions: int
    missing_responses: int
    unscorable_instructions: int
    truncation_rate: float | None = None
    per_constraint: dict[str, dict[str, Any]]
    per_family: dict[str, dict[str, Any]]
    missing: list[Key] = Field(default_factory=list)


def _problems(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()[:5]
    )


# ----------------------------------------------------------------------------- the folder


class RunFolder:
    """Paths, lock, atomic writes, append + fsync, resume and reading of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def engine_log_path(self) -> Path:
        return self.path / ENGINE_LOG

    def exists(self) -> bool:
        return self.file(RUN_JSON).is_file()

    def lock(self) -> FolderLock:
        return FolderLock(self.path)

    def clear(self) -> None:
        """Remove every run file (``--overwrite``); the folder and its lock stay."""
        for name in RUN_FILES:
            self.file(name).unlink(missing_ok=True)

    # -- run.json

    def read_run(self) -> RunInfo | None:
        """``run.json``, or None when there is none; unreadable or ill-formed: DataError."""
        path = self.file(RUN_JSON)
        if not path.is_file():
            return None
        obj = _read_json(path, "run.json")
        version = obj.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise DataError(
                f"{path}: schema_version {version!r} is newer than this ifharness "
                f"reads ({SCHEMA_VERSION}); upgrade ifharness"
            )
        if version == 1:
            obj = _upgrade_v1(obj)
        try:
            return RunInfo.model_validate(obj)
        except ValidationError as e:
            raise DataError(
                f"{path}: not a run.json this ifharness can read ({_problems(e)}); "
                "re-create the folder with `ifharness run` or `ifharness score`"
            ) from None

    def write_run(self, info: RunInfo) -> None:
        atomic_write_json(self.file(RUN_JSON), info.model_dump(mode="json", exclude_none=True))

    # -- samples.jsonl

    def write_samples(self, rows: Iterable[SampleRow]) -> None:
        atomic_write_text(self.file(SAMPLES), "".join(dumps_line(r) + "\n" for r in rows))

    def read_samples(self, only: Container[str] | None = None) -> dict[str, SampleRow]:
        """The task as scored, by ``str(key)`` (by :func:`row_work_id`, key and turn, in a
        conversation task); empty for a version-1 folder. ``only``: just these ids."""
        path = self.file(SAMPLES)
        if not path.is_file():
            return {}
        out: dict[str, SampleRow] = {}
        for line, obj in read_jsonl(path, what="samples file"):
            if not _wanted(obj, only, row_work_id):
                continue
            row = _validated(_SAMPLE, obj, path, line)
            if only is None or row_work_id(row) in only:
                out[row_work_id(row)] = row
        return out

    # -- completions.jsonl

    def completion_store(self, samples_per_key: int = 1) -> CompletionStore:
        return CompletionStore(self.file(COMPLETIONS), samples_per_key)

    def write_completions(self, rows: Iterable[CompletionRow]) -> None:
        """All answers at once (``ifharness score``): one atomic write."""
        atomic_write_text(self.file(COMPLETIONS), "".join(dumps_line(r) + "\n" for r in rows))

    def read_completions(
        self, only: Container[tuple[str, int]] | None = None
    ) -> list[CompletionRow]:
        """Every answer, checked; ``only``: just those of these (key, sample) ids."""
        path = self.file(COMPLETIONS)
        if not path.is_file():
            return []
        rows = (
            _validated(_COMPLETION, obj, path, line, _completion_defaults)
            for line, obj in read_jsonl(path, what="completions file")
            if _wanted(obj, only, row_id)
        )
        return [r for r in rows if only is None or row_id(r) in only]

    # -- failed.jsonl

    def record_failure(self, failure: Failure, turn: int | None = None) -> None:
        """Append one failure (fsynced) the moment a runner gives up on a sample (on one turn
        of a conversation: ``turn``)."""
        from .files import now_utc

        row: FailureRow = {**failure.to_row(), "at": now_utc()}
        if turn is not None:
            row["turn"] = turn
        _append_lines(self.file(FAILED), [dumps_line(row)])

    def failures(self) -> dict[str, FailureRow]:
        """The last failure recorded per unit of work (:func:`row_work_id`: ``str(key)``,
        with the turn in a conversation)."""
        path = self.file(FAILED)
        if not path.is_file():
            return {}
        out: dict[str, FailureRow] = {}
        for line, obj in read_jsonl(path, what="failures file"):
            row = _validated(_FAILURE, obj, path, line)
            out[row_work_id(row)] = row
        return out

    def failed_keys(self) -> set[str]:
        return set(self.failures())

    def settle_failures(self, done: set[str]) -> list[str]:
        """Keep only the failures still not in ``completions.jsonl`` (remove the file when none
        is left); returns their keys."""
        still = {k: r for k, r in self.failures().items() if k not in done}
        if still:
            atomic_write_text(
                self.file(FAILED), "".join(dumps_line(r) + "\n" for r in still.values())
            )
        else:
            self.file(FAILED).unlink(missing_ok=True)
        return list(still)

    # -- verdicts.jsonl, metrics.json

    def write_scores(self, verdicts: Sequence[VerdictRow], metrics: dict[str, Any]) -> None:
        self.check_metrics(metrics)
        atomic_write_text(self.file(VERDICTS), "".join(dumps_line(r) + "\n" for r in verdicts))
        atomic_write_json(self.file(METRICS), metrics)

    def check_metrics(self, metrics: dict[str, Any]) -> None:
        try:
            MetricsFile.model_validate(metrics)
        except ValidationError as e:  # a bug of ours, not of the user's data
            raise IfharnessError(
                f"refusing to write {self.file(METRICS)}: {_problems(e)}"
            ) from None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """``metrics.json`` alone (the streaming scorer wrote its verdicts chunk by chunk)."""
        self.check_metrics(metrics)
        atomic_write_json(self.file(METRICS), metrics)

    def rows_writer(self, name: str) -> RowsWriter:
        """A writer that appends rows to ``name`` (``verdicts.jsonl``, ``completions.jsonl``)
        chunk by chunk and puts the file in place only when it is whole (:class:`RowsWriter`).
        """
        if name not in (VERDICTS, COMPLETIONS, SAMPLES):
            raise ValueError(f"{name} is not written row by row")
        return RowsWriter(self.file(name))

    def read_verdicts(self, limit: int | None = None) -> list[VerdictRow]:
        """Every verdict row, checked; with ``limit``, the first ``limit`` only."""
        path = self.file(VERDICTS)
        if not path.is_file():
            raise DataError(
                f"{path} not found: the run was not scored yet (run `ifharness "
                "score` on it, or wait for `ifharness run` to finish)"
            )
        rows: list[VerdictRow] = []
        seen: dict[tuple[str, int], int] = {}
        for line, obj in read_jsonl(path, what="verdicts file"):
            if limit is not None and len(rows) >= limit:
                break
            row = _validated(_VERDICT, obj, path, line)
            n = len(row["instruction_id_list"])
            for mode in ("strict", "loose"):
                if len(row[mode]) != n:
                    raise DataError(
                        f"{path}:{line}: '{mode}' must be a list of true/false/null, "
                        f"one per instruction ({n})"
                    )
            rid = row_id(row)
            if rid in seen:
                raise DataError(
                    f"{path}:{line}: key {rid[0]} sample {rid[1]} already on line {seen[rid]}"
                )
            seen[rid] = line
            rows.append(row)
        if not rows:
            raise DataError(f"{path} holds no verdicts")
        return rows

    def read_metrics(self) -> dict[str, Any] | None:
        path = self.file(METRICS)
        if not path.is_file():
            return None
        obj = _read_json(path, "metrics.json")
        try:
            MetricsFile.model_validate(obj)
        except ValidationError as e:
            raise DataError(
                f"{path}: not a metrics file ({_problems(e)}); re-score the run "
                "with `ifharness score`"
            ) from None
        return obj

    # -- report.html

    def write_report(self, html: str, out: str | Path | None = None) -> Path:
        """``report.html`` here (or at ``out``, a file outside the folder); returns the path."""
        path = Path(out) if out else self.report_path
        atomic_write_text(path, html)
        return path

    # -- the whole folder, for the analysis stages

    def load(self, max_rows: int | None = None) -> RunData:
        """Everything the analysis stages read; DataError with the reason when it cannot.
        ``max_rows``: the first that many verdict rows only (and the answers of those: the
        report of a large run); ``RunData.more_rows`` counts the rows left out."""
        if not self.path.exists():
            raise DataError(f"run folder {self.path} does not exist")
        if not self.path.is_dir():
            raise DataError(
                f"{self.path} is not a folder; give a run folder (with run.json and verdicts.jsonl)"
            )
        info = self.read_run()
        if info is None:
            raise DataError(
                f"{self.file(RUN_JSON)}: run.json not found; is {self.path} a run "
                "folder (made by `ifharness score` or `ifharness run`)?"
            )
        verdicts = self.read_verdicts(max_rows)
        more = 0
        if max_rows is not None and len(verdicts) == max_rows:
            with self.file(VERDICTS).open("rb") as f:
                more = sum(1 for raw in f if raw.strip()) - max_rows
        return RunData(self, info, verdicts, self.read_metrics(), more_rows=more)


def _upgrade_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A run.json of ifharness 0.1.0: the same keys, no version. ``score`` folders then recorded
    no headline metric; the task YAML's (bundled tasks only) is what 0.1.0 ranked them by."""
    out = {k: v for k, v in obj.items() if k in RunInfo.model_fields}  # 0.1.0 kept no schema
    out["schema_version"] = 1
    if isinstance(out.get("model"), str):
        out["model"] = {"name": out["model"]}
    if out.get("metric") is None and isinstance(out.get("task"), str):
        from .loader import task_metric

        out["metric"] = task_metric(out["task"])
    return out


def _completion_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """Version-1 rows may lack the optional fields; fill them as the writer now does."""
    return {"sample": 0, "reasoning": None, "finish_reason": None, "n_tokens": None, **obj}


_Row = TypeVar("_Row")


def _validated(
    adapter: TypeAdapter[_Row],
    obj: dict[str, Any],
    path: Path,
    line: int,
    fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> _Row:
    try:
        return adapter.validate_python(fill(obj) if fill else obj)
    except ValidationError as e:
        raise DataError(f"{path}:{line}: {_problems(e)}") from None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e}); re-create the run folder") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object")
    return obj


def _append_lines(path: Path, lines: Sequence[str]) -> None:
    """One ``write`` of whole lines, then fsync: a kill leaves whole lines or a torn last one."""
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- analysis view


@dataclass
class RunData:
    """A scored run folder as the analysis stages (leaderboard, compare, gate, report) see it."""

    folder: RunFolder
    info: RunInfo
    verdicts: list[VerdictRow]
    metrics: dict[str, Any] | None = None
    _completions: dict[tuple[str, int], CompletionRow] | None = field(default=None, repr=False)
    more_rows: int = 0  # verdict rows of the folder not loaded (``RunFolder.load(max_rows)``)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def dataset_hash(self) -> str:
        return self.info.dataset_hash

    @property
    def profile(self) -> str:
        return self.info.profile.name

    @property
    def model(self) -> str:
        """The model's name from run.json; a scored run without one is named by its folder."""
        return self.info.model_name or self.path.name

    @property
    def sampling(self) -> dict[str, Any] | None:
        return self.info.sampling

    @property
    def chat_template_hash(self) -> str | None:
        m = self.info.model or {}
        return self.info.chat_template_sha256 or m.get("chat_template_sha256")

    @property
    def completions(self) -> dict[tuple[str, int], CompletionRow]:
        """``completions.jsonl`` rows by (key, sample); empty when the folder has none."""
        if self._completions is None:
            only = {row_id(r) for r in self.verdicts} if self.more_rows else None
            self._completions = {row_id(r): r for r in self.folder.read_completions(only)}
        return self._completions

    def finish_reasons(self) -> list[str | None]:
        comp = self.completions
        out: list[str | None] = []
        for r in self.verdicts:
            c = comp.get(row_id(r))
            out.append(c.get("finish_reason") if c is not None else None)
        return out

    def truncation_rate(self) -> float | None:
        reasons = [f for f in self.finish_reasons() if f is not None]
        if reasons:
            return sum(f == "length" for f in reasons) / len(reasons)
        return (self.metrics or {}).get("truncation_rate")

    def headline_metric(self, known: Sequence[str]) -> str:
        """The metric a run is ranked and gated by: the one its run.json records."""
        name = self.info.metric
        if name is None:
            raise DataError(
                f"{self.folder.file(RUN_JSON)} records no headline metric (a folder "
                "written by ifharness 0.1.0 `score`); pass --metric, or re-score it "
                "with `ifharness score`"
            )
        if name in known:
            return name
        raise DataError(
            f"{self.folder.file(RUN_JSON)}: unknown metric {name!r}; choose one of "
            f"{', '.join(known)} with --metric"
        )


def load_run(path: str | Path) -> RunData:
    return RunFolder(path).load()


def expand_run_args(args: Iterable[str]) -> list[Path]:
    """Run folders from arguments: folders, globs, or parents whose children are run folders."""
    out: list[Path] = []
    for arg in args:
        if GLOB_CHARS & set(arg):
            matches = sorted(Path(p) for p in glob.glob(arg))
            if not matches:
                raise DataError(f"no run folder matches {arg!r}")
        else:
            matches = [Path(arg)]
        for m in matches:
            if m.is_dir() and not (m / RUN_JSON).exists():
                children = sorted(c for c in m.iterdir() if (c / RUN_JSON).is_file())
                if children:
                    out.extend(children)
                    continue
            if GLOB_CHARS & set(arg) and not (m / RUN_JSON).is_file():
                continue  # a glob may also match files and unrelated folders
            out.append(m)
    seen: set[Path] = set()
    unique: list[Path] = []
    for p in out:
        resolved = p.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(p)
    if not unique:
        raise DataError("no run folders given")
    return unique


# ----------------------------------------------------------------------------- append-only store


@dataclass
class Resumed:
    rows: list[dict[str, Any]]  # kept rows, in file order
    done: set[str]  # work id (str(key); key and turn in a conversation) of every unit with
    # all its samples on disk
    dropped_lines: int = 0  # torn or incomplete lines removed from the file


class CompletionStore:
    """``completions.jsonl`` while generating: append-only, one fsynced write per chunk.

    A run killed at any point leaves whole chunks on disk plus at most one torn last line;
    :meth:`resume` drops the torn line and any key whose samples are incomplete, so only what
    is missing gets generated. No key is ever written twice. The file is the checkpoint.

    A conversation task's unit of work is (key, turn): ``done`` holds work ids
    (``schema.work_id``), and each turn is driven through :meth:`for_turn`, a view that
    looks like a store of that turn alone (keys are unique within one turn) and writes
    ``turn`` and the request's ``messages`` into every row.
    """

    def __init__(self, path: str | Path, samples_per_key: int = 1):
        self.path = Path(path)
        self.samples_per_key = samples_per_key
        self.done: set[str] = set()

    def resume(self) -> Resumed:
        """Read what a previous run left; repair the file (atomically) when it was torn."""
        if not self.path.exists():
            self.done = set()
            return Resumed([], set())
        lines = self.path.read_bytes().split(b"\n")
        torn = 0
        if lines and lines[-1] != b"":  # no newline at the end: the last write was cut off
            lines = lines[:-1]
            torn = 1
        parsed = list(_parse_completion_lines(self.path, lines))
        by_key: dict[str, dict[int, dict[str, Any]]] = {}
        for row in parsed:
            by_key.setdefault(row_work_id(row), {}).setdefault(int(row.get("sample", 0) or 0), row)
        complete = {k for k, s in by_key.items() if set(s) >= set(range(self.samples_per_key))}
        kept, seen = [], set()
        for row in parsed:
            k, i = row_work_id(row), int(row.get("sample", 0) or 0)
            if k in complete and i < self.samples_per_key and (k, i) not in seen:
                seen.add((k, i))
                kept.append(row)
        dropped = torn + len(parsed) - len(kept)
        if dropped:
            atomic_write_text(self.path, "".join(dumps_line(r) + "\n" for r in kept))
        self.done = complete
        return Resumed(kept, complete, dropped)

    def append(
        self,
        completions: Sequence[Completion],
        turn: int | None = None,
        messages: dict[str, list[dict[str, str]]] | None = None,
    ) -> None:
        """One write for the whole chunk, then fsync. ``turn``: the conversation turn they
        answer, with ``messages``, the request sent for each ``str(key)``."""
        for c in completions:
            if work_id(c.key, turn) in self.done:
                raise IfharnessError(
                    f"runner returned key {work_id(c.key, turn)} twice; it is already in "
                    f"{self.path}"
                )
        rows = []
        for c in completions:
            row = c.to_row()
            if turn is not None:
                row["turn"] = turn
                if messages is not None:
                    row["messages"] = messages[str(c.key)]
            rows.append(dumps_line(row))
        _append_lines(self.path, rows)
        self.done.update(work_id(c.key, turn) for c in completions)

    def for_turn(self, turn: int, messages: dict[str, list[dict[str, str]]]) -> TurnStore:
        """This store as the driver sees it for one conversation turn (see the class)."""
        return TurnStore(self, turn, messages)


class TurnStore:
    """One turn of a conversation task, for ``runners.base.drive``: ``done`` holds the keys
    (``str(key)``, among those of ``messages``) this turn already has; ``append`` writes the
    rows with their turn and the request sent."""

    def __init__(
        self, store: CompletionStore, turn: int, messages: dict[str, list[dict[str, str]]]
    ):
        self.store, self.turn, self.messages = store, turn, messages

    @property
    def done(self) -> set[str]:
        return {k for k in self.messages if work_id(k, self.turn) in self.store.done}

    def append(self, completions: Sequence[Completion]) -> None:
        self.store.append(completions, self.turn, self.messages)


def _parse_completion_lines(path: Path, lines: list[bytes]) -> Iterator[dict[str, Any]]:
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(
                f"{path}:{lineno}: not a completion line ({e}); only the last line can be torn "
                "by a kill. Move the file away to start this run over."
            ) from None
        if not isinstance(row, dict) or "key" not in row or "response" not in row:
            raise DataError(f"{path}:{lineno}: a completion needs 'key' and 'response'")
        yield row


class RowsWriter:
    """One JSONL file of the folder written in pieces (the streaming scorer's verdicts and
    answers), atomic as a whole: rows go to a temp file beside it, and :meth:`commit` fsyncs
    it and renames it over the file. Until then readers see the old file (or none); a crash
    or an exception mid-way leaves the old file as it was and removes the temp file (a kill
    -9 can leave a hidden ``.<name>.*.tmp``, which no reader opens). Used as a context
    manager it commits on success and discards on an exception.
    """

    def __init__(self, path: Path) -> None:
        import tempfile

        from .files import _UMASK

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)
        self.tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb")
        self.rows = 0

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        lines = [dumps_line(r) + "\n" for r in rows]
        self.append_lines("".join(lines), len(lines))

    def append_lines(self, text: str | bytes, rows: int) -> None:
        """Rows already serialized (``dumps_line`` each, one per line), e.g. by a worker;
        as bytes, UTF-8 encoded already (a worker's lines then cross the pipe as they are
        written, not decoded and encoded again)."""
        self._file.write(text.encode("utf-8") if isinstance(text, str) else text)
        self.rows += rows

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


class FolderLock:
    """One process per run folder: a second ``ifharness run`` on it stops with a message.

    ``flock`` is dropped by the kernel when its holder dies, so a killed run never leaves a
    stale lock behind.
    """

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IfharnessError(
                f"run folder {self.path.parent} is in use by another ifharness process (pid "
                f"{holder}); wait for it, or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
