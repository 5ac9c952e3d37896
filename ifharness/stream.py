"""Scoring a task file at scale: the task's samples and the answers both read in ranges.

``ifharness score --task T --data FILE.jsonl --responses ANSWERS.jsonl`` on a plain task
(one answer per prompt, answer checked, no density or hierarchy hooks:
``scoring.needs_rows`` is false) comes here when the samples are one local JSONL file
(``loader.task_file``). Nothing holds the task or the answers whole; every per-row step
runs in the ``--processes`` pool:

1. *Index* (parallel, one job per byte range of each file: ``files.line_ranges``): each task
   row's key and each answer row's key, prompt, offset and line, kept as 64-bit hashes of
   the texts in numpy arrays (tens of bytes per row, not a Python object per row). The
   driver joins the two as ``responses.index_answers`` does: by key, else by the exact
   prompt text, else the stripped one (the task rows' prompts are hashed only when some
   answer needs them); the later of two answer rows wins and is reported, rows naming no
   prompt are counted.
2. *Score* (parallel, one job per range of task lines, about :data:`TASK_RANGE` bytes): a
   worker builds the range's samples (``loader.samples_of_rows``: the same validation),
   reads their answers at the indexed offsets (checking each key or prompt, so a hash
   collision cannot pair a wrong answer), judges them, and returns the lines of ``samples.jsonl``,
   ``completions.jsonl`` and ``verdicts.jsonl``, the bytes the dataset hash covers and a
   per-prompt ``scoring.Summary``. The driver only writes text, in order, through
   ``RunFolder.rows_writer`` (each file put in place when whole) and merges summaries.
3. *Metrics* from the merged summary; with a pool and many prompts one worker draws the
   bootstrap's prompt weights while the others judge (``stats.draw_weights``: the same
   draws as drawing them at the end, written to a scratch file in the run folder), since
   at a million prompts the draws alone are most of a minute of one core.

What lands in the folder is byte for byte what loading the task and ``results.score_run``
write (tests compare the two). Anything this path does not do the same way goes there
instead (:class:`_Elsewhere`): a repeated task key (or two keys with one hash, or an empty
key), a file that does not parse, an empty file, an answer read back that is not the one
its hash promised. Those are errors, which the loaded path reports in its words, or cases
too rare to matter. Invalid samples found while scoring stop the judging; every range is
still validated, so the error lists every bad row, as loading would.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import stats
from .errors import DataError
from .files import dumps_line, line_ranges, read_jsonl_offsets, sha256_file
from .loader import TaskFile, _messages, hashed_bytes, invalid_samples, samples_of_rows
from .responses import Answer, Joined, Misread, _checked, read_at
from .rundir import COMPLETIONS, SAMPLES, VERDICTS, RunFolder
from .schema import last_user
from .scoring import ChunkDone, Summary, judge_chunk, needs_rows

if TYPE_CHECKING:
    from ifharness.verifiers import Profile

    from .rundir import VerdictRow
    from .schema import Sample, TaskSpec
    from .scoring import ScoreResult

#: bytes of the task file per scoring job: about 5,000 IFEval prompts, so a worker holds
#: that many samples and answers at a time
TASK_RANGE = 2 << 20
#: bytes of the answer file per indexing job
ANSWER_RANGE = 16 << 20
#: from this many prompts on, with more than one process, a worker draws the bootstrap
#: weights while the others judge (below it the draws take under a few seconds)
PREDRAW_FROM = 50_000


@dataclass
class FileScore:
    """What :func:`score_file` returns when it streamed: the metrics and the join's report
    (``joined`` holds no answers); the verdicts are in the folder, read back if asked for."""

    task: TaskFile
    metrics: dict[str, Any]
    joined: Joined
    folder: RunFolder

    @property
    def verdicts(self) -> list[VerdictRow]:
        return self.folder.read_verdicts()


class _Elsewhere(Exception):
    """This file is scored by loading the task (``results.score_run``): the reason."""


def key_hash(key: str) -> int:
    """The 64-bit hash the index keeps of ``str(key)``."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def score_file(
    out: str | Path,
    task: TaskFile,
    responses: str | Path,
    processes: int = 1,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> FileScore | ScoreResult:
    """``ifharness score`` of a task file: a complete run folder at ``out`` (run.json,
    samples, completions, verdicts, metrics), streamed as the module says, or through the
    loaded task where this path does not apply."""
    responses = Path(responses)
    if needs_rows(task) or not responses.is_file():
        return _loaded(out, task, responses, processes)
    folder = RunFolder(out)
    try:
        return _stream(folder, task, responses, processes, n_resamples, seed)
    except _Elsewhere:
        return _loaded(out, task, responses, processes)


def _loaded(out: str | Path, task: TaskFile, responses: Path, processes: int) -> ScoreResult:
    from .results import score_run

    return score_run(out, task.load(), responses, processes=processes)


# ---------------------------------------------------------------- 1. the index


@dataclass
class _TaskRange:
    """What indexing one range of the task file found."""

    lines: int  # lines in the range, blank ones included
    hashes: np.ndarray  # per row (non-blank line): key_hash(str(key)); 0 where keyless
    offsets: np.ndarray  # byte offset of each row's line
    keyless: np.ndarray  # positions (in the range) of rows without the key field
    bad: bool = False  # a line that does not parse: the loaded path says which


@dataclass
class _AnswerRange:
    lines: int
    hashes: np.ndarray  # per answer row: key_hash(str(key)), 0 without a key
    offsets: np.ndarray  # byte offset of each row's line
    line: np.ndarray  # its line number, counted from the range's start (1 = first)
    keyed: np.ndarray  # bool: the row has a key
    prompts: np.ndarray  # (rows, 2): hashes of its prompt string and of it stripped; 0: none
    bad: bool = False


def _count_lines(path: Path, start: int, stop: int) -> int:
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(stop - start)
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _index_task(path: Path, start: int, stop: int, key_field: str) -> _TaskRange:
    hashes: list[int] = []
    offsets: list[int] = []
    keyless: list[int] = []
    bad = False
    try:
        for i, (_, offset, row) in enumerate(read_jsonl_offsets(path, "data file", start, stop)):
            offsets.append(offset)
            if key_field in row:
                hashes.append(key_hash(str(row[key_field])))
            else:
                hashes.append(0)
                keyless.append(i)
    except DataError:
        bad = True
    return _TaskRange(
        _count_lines(path, start, stop),
        np.array(hashes, dtype=np.int64),
        np.array(offsets, dtype=np.int64),
        np.array(keyless, dtype=np.int64),
        bad,
    )


def _prompt_hashes(text: object) -> tuple[int, int]:
    if not isinstance(text, str):
        return 0, 0
    return key_hash(text), key_hash(text.strip())


def _index_answers(path: Path, start: int, stop: int) -> _AnswerRange:
    hashes: list[int] = []
    offsets: list[int] = []
    lines: list[int] = []
    keyed: list[bool] = []
    prompts: list[tuple[int, int]] = []
    bad = False
    try:
        for line, offset, row in read_jsonl_offsets(path, "response file", start, stop):
            _checked(path, line, row)
            has_key = "key" in row
            hashes.append(key_hash(str(row["key"])) if has_key else 0)
            offsets.append(offset)
            lines.append(line)
            keyed.append(has_key)
            prompts.append(_prompt_hashes(row.get("prompt")))
    except DataError:
        bad = True
    return _AnswerRange(
        _count_lines(path, start, stop),
        np.array(hashes, dtype=np.int64),
        np.array(offsets, dtype=np.int64),
        np.array(lines, dtype=np.int32),
        np.array(keyed, dtype=bool),
        np.array(prompts, dtype=np.int64).reshape(-1, 2),
        bad,
    )


def _index_prompts(path: Path, start: int, stop: int, spec: TaskSpec) -> np.ndarray:
    """(rows, 2): the hashes of each task row's prompt (its last user message, as
    ``Sample.prompt``) and of it stripped; 0 for a row that is not a valid sample."""
    f = spec.fields
    out = []
    for _, _, row in read_jsonl_offsets(path, "data file", start, stop):
        try:
            text = last_user(_messages(row, f.messages, f.prompt, spec.turns))
        except (DataError, StopIteration):
            text = None
        out.append(_prompt_hashes(text))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@dataclass
class _Plan:
    """The join: each task row's answer offset (-1: none) and whether that answer was found
    by prompt text, and what the join reports."""

    where: np.ndarray
    by_prompt: np.ndarray  # bool per task row
    unmatched: int
    duplicates: list[str]
    first_line: list[int]  # per task range
    first_index: list[int]  # per task range


def _first_of(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct nonzero hashes and the first row holding each (``dict.setdefault``)."""
    keep = np.flatnonzero(hashes != 0)
    uniq, first = np.unique(hashes[keep], return_index=True)
    return uniq, keep[first]


def _lookup(uniq: np.ndarray, rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row of each wanted hash in (``uniq``, ``rows``); -1 where absent (or 0)."""
    if len(uniq) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(uniq, wanted), len(uniq) - 1)
    return np.where((uniq[pos] == wanted) & (wanted != 0), rows[pos], -1)


def _plan(
    tasks: list[_TaskRange],
    answers: list[_AnswerRange],
    prompts: Callable[[], np.ndarray],
    key_field: str,
    task_path: Path,
) -> _Plan:
    """Join the answer rows to the task rows as ``responses.index_answers`` does. ``prompts``
    gives the task rows' prompt hashes (``_index_prompts``), asked for only when some row
    must be joined by prompt text."""
    if any(t.bad for t in tasks) or any(a.bad for a in answers):
        raise _Elsewhere("a line does not parse")
    if not tasks:
        raise _Elsewhere("an empty file")
    first_line = _starts([t.lines for t in tasks], 1)
    first_index = _starts([len(t.hashes) for t in tasks], 0)
    th = np.concatenate([t.hashes for t in tasks])
    for t, base in zip(tasks, first_index):
        for i in t.keyless.tolist():  # keyed by index (rare: most files have keys)
            th[base + i] = key_hash(str(base + i))
    n = len(th)
    if n == 0:
        raise _Elsewhere("no samples")
    uniq, first = _first_of(th)
    if len(uniq) < n or bool((th == 0).any()) or bool((th == key_hash("")).any()):
        raise _Elsewhere("a repeated key, two keys with one hash, or an empty key")
    del th
    if answers:
        ah = np.concatenate([a.hashes for a in answers])
        keyed = np.concatenate([a.keyed for a in answers])
        ap = np.concatenate([a.prompts for a in answers])
        offsets = np.concatenate([a.offsets for a in answers])
    else:
        ah, keyed = np.zeros(0, np.int64), np.zeros(0, bool)
        ap, offsets = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    slot = np.where(keyed, _lookup(uniq, first, ah), -1)  # the task row each answers
    del ah, keyed, uniq, first
    by_prompt = np.zeros(len(slot), dtype=bool)
    need = (slot < 0) & (ap[:, 0] != 0)
    if need.any():  # a key naming no prompt, or none: the exact prompt, then stripped
        tp = prompts()
        for col in (0, 1):
            found = _lookup(*_first_of(tp[:, col]), ap[:, col])
            take = need & (found >= 0)
            slot[take], by_prompt[take] = found[take], True
            need &= ~take
    del ap
    rows = np.flatnonzero(slot >= 0)
    slot = slot[rows]
    by = np.lexsort((rows, slot))  # by task row, then file order
    slot, rows = slot[by], rows[by]
    last = np.ones(len(slot), dtype=bool)
    last[:-1] = slot[1:] != slot[:-1]  # the later of two rows for one prompt wins
    where = np.full(n, -1, dtype=np.int64)
    where[slot[last]] = offsets[rows[last]]
    task_by_prompt = np.zeros(n, dtype=bool)
    task_by_prompt[slot[last]] = by_prompt[rows[last]]
    duplicates = []
    if not last.all():
        a_lines = _starts([a.lines for a in answers], 0)
        line = np.concatenate([a.line.astype(np.int64) + base for a, base in zip(answers, a_lines)])
        t_offsets = np.concatenate([t.offsets for t in tasks])
        earlier = np.flatnonzero(~last)
        pairs = sorted(
            zip(line[rows[earlier + 1]].tolist(), line[rows[earlier]].tolist(), slot[earlier])
        )
        for later, before, at in pairs:
            k = _task_key(task_path, int(t_offsets[at]), key_field, int(at))
            duplicates.append(f"key {k}: lines {before} and {later} (the later one is used)")
    unmatched = int(len(by_prompt) - len(rows))
    return _Plan(where, task_by_prompt, unmatched, duplicates, first_line, first_index)


def _starts(sizes: list[int], first: int) -> list[int]:
    return list(itertools.accumulate(sizes[:-1], initial=first)) if sizes else []


def _task_key(path: Path, offset: int, key_field: str, index: int) -> str:
    """``str(key)`` of the task row at ``offset`` (its index when it has none)."""
    with path.open("rb") as f:
        f.seek(offset)
        row = json.loads(f.readline().decode("utf-8"))
    return str(row.get(key_field, index))


# ---------------------------------------------------------------- 2. scoring the ranges


@dataclass
class _Job:
    """One range of task lines to score, as sent to a worker."""

    path: Path
    start: int
    stop: int
    first_line: int
    first_index: int
    spec: TaskSpec
    profile: Profile
    origin: str
    answers: Path
    where: np.ndarray  # the answer offset of each of the range's rows (-1: none)
    by_prompt: np.ndarray  # whether that answer was joined by prompt text, not key
    validate_only: bool = False


@dataclass
class _Done:
    chunk: ChunkDone | None = None
    samples: bytes = b""  # samples.jsonl lines, UTF-8
    n_samples: int = 0
    hashed: bytes = b""  # what the dataset hash covers
    missing: list[Any] = field(default_factory=list)  # keys without an answer, in order
    errors: list[str] = field(default_factory=list)
    collision: bool = False


def _score_range(job: _Job) -> _Done:
    from .results import sample_rows_of

    rows = [
        (line, row)
        for line, _, row in read_jsonl_offsets(
            job.path, "data file", job.start, job.stop, job.first_line
        )
    ]
    samples, errors = samples_of_rows(job.spec, rows, job.origin, job.profile, job.first_index)
    if errors or job.validate_only:
        return _Done(errors=errors)
    if len(samples) != len(job.where):  # the index saw other rows: a file changed meanwhile
        raise DataError(f"{job.path} changed while it was scored; score it again")
    try:
        got = _read_answers(job.answers, job.where, job.by_prompt, samples)
    except Misread:
        return _Done(collision=True)
    spec = (job.spec.check, job.profile, job.spec.suite)
    chunk = judge_chunk(spec, samples, got, 1, completions=True)
    lines = "".join(dumps_line(r) + "\n" for r in sample_rows_of(samples)).encode("utf-8")
    missing = [s.key for s, at in zip(samples, job.where.tolist()) if at < 0]
    return _Done(chunk, lines, len(samples), hashed_bytes(samples), missing)


def _read_answers(
    path: Path, where: np.ndarray, by_prompt: np.ndarray, samples: list[Sample]
) -> list[Answer | None]:
    """The answers at byte offsets ``where`` (-1: none), each checked against its sample:
    the same key, or (joined by prompt text) the same prompt, exact or stripped."""

    def meant(at: int, row: dict[str, Any]) -> bool:
        s = samples[at]
        if by_prompt[at]:
            p = row.get("prompt")
            return isinstance(p, str) and (p == s.prompt or p.strip() == s.prompt.strip())
        return "key" in row and str(row["key"]) == str(s.key)

    return read_at(path, where, meant)


class _Here(Executor):
    """A pool of one: jobs run as they are submitted (``--processes 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        f: Future[Any] = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed back as the future's exception
            f.set_exception(e)
        return f


def _pool(processes: int) -> Executor:
    return ProcessPoolExecutor(processes) if processes > 1 else _Here()


def _stream(
    folder: RunFolder,
    task: TaskFile,
    responses: Path,
    processes: int,
    n_resamples: int,
    seed: int,
) -> FileScore:
    from .results import _score_info

    t_ranges = line_ranges(task.path, TASK_RANGE)
    a_ranges = line_ranges(responses, ANSWER_RANGE)
    # no warm-up here before the pool forks (as score_to_folder does): the workers load
    # the verifiers' resources themselves, at the same time, and the driver stays small
    pool = _pool(processes)
    scratch = None
    writers = []
    try:
        digest = pool.submit(sha256_file, responses)
        t_jobs = [
            pool.submit(_index_task, task.path, a, b, task.spec.fields.key) for a, b in t_ranges
        ]
        a_jobs = [pool.submit(_index_answers, responses, a, b) for a, b in a_ranges]

        def prompts() -> np.ndarray:
            jobs = [pool.submit(_index_prompts, task.path, a, b, task.spec) for a, b in t_ranges]
            return np.concatenate([j.result() for j in jobs])

        plan = _plan(
            [j.result() for j in t_jobs],
            [j.result() for j in a_jobs],
            prompts,
            task.spec.fields.key,
            task.path,
        )
        del t_jobs, a_jobs
        n = len(plan.where)
        weights = None
        if processes > 1 and n >= PREDRAW_FROM and n_resamples >= 1:
            folder.path.mkdir(parents=True, exist_ok=True)
            scratch = tempfile.TemporaryDirectory(dir=folder.path, prefix=".weights-")
            weights_file = Path(scratch.name) / "weights.u8"
            weights = pool.submit(stats.draw_weights, weights_file, n, n_resamples, seed)
        completions = folder.rows_writer(COMPLETIONS)
        writers.append(completions)
        verdicts = folder.rows_writer(VERDICTS)
        writers.append(verdicts)
        sample_file = folder.rows_writer(SAMPLES)
        writers.append(sample_file)
        summary = Summary(keyed=False)
        hashed = hashlib.sha256()
        missing: list[Any] = []
        errors: list[str] = []
        pending: deque[Future[_Done]] = deque()

        def collect() -> None:
            done = pending.popleft().result()
            if done.collision:
                raise _Elsewhere("two keys with one hash")
            errors.extend(done.errors)
            if errors or done.chunk is None:
                return
            verdicts.append_lines(done.chunk.verdicts, done.chunk.summary.n_rows)
            completions.append_lines(done.chunk.completions, done.chunk.n_completions)
            sample_file.append_lines(done.samples, done.n_samples)
            summary.merge(done.chunk.summary)
            hashed.update(done.hashed)
            missing.extend(done.missing)

        for (a, b), line, index, rows in zip(
            t_ranges, plan.first_line, plan.first_index, _row_counts(plan)
        ):
            job = _Job(
                task.path,
                a,
                b,
                line,
                index,
                task.spec,
                task.profile,
                task.data_origin,
                responses,
                plan.where[index : index + rows],
                plan.by_prompt[index : index + rows],
                validate_only=bool(errors),
            )
            pending.append(pool.submit(_score_range, job))
            while len(pending) > processes:  # one job per worker in flight, and one more
                collect()
        while pending:
            collect()
        if errors:
            raise invalid_samples(errors, task.data_origin)
        completions.commit()  # answers in place first, then the verdicts
        verdicts.commit()
        drawn = weights.result() if weights is not None else None  # None: drawn at the end
        # the values of the resamples are computed here: a few ms each even at a million
        # prompts, less than shipping the table to the pool would take
        ahead = stats.read_weights(drawn, n, n_resamples) if drawn is not None else None
        metrics = summary.metrics(n_resamples, seed, level=0.95, weights=ahead)
        metrics["missing"] = missing
        folder.write_metrics(metrics)
        sample_file.commit()
        info = _score_info(
            task, responses, read=(n, hashed.hexdigest()), responses_sha256=digest.result()
        )
        folder.write_run(info)
    finally:
        pool.shutdown(cancel_futures=True)
        for w in writers:
            w.discard()
        if scratch is not None:
            scratch.cleanup()
    joined = Joined(answers={}, missing=missing, unmatched=plan.unmatched)
    joined.duplicates = plan.duplicates
    return FileScore(task, metrics, joined, folder)


def _row_counts(plan: _Plan) -> Iterator[int]:
    ends = [*plan.first_index[1:], len(plan.where)]
    for start, end in zip(plan.first_index, ends):
        yield end - start
