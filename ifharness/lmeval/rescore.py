"""``ifharness score --from-lmeval``: re-score an lm-eval ``--log_samples`` file with our scorer.

Each line of ``samples_<task>_<date>.jsonl`` holds the doc (our ``task_docs`` row: key,
prompt, bound instructions, profile, reasoning parser) and the model's text in
``filtered_resps``. The answer is cut from the text with the doc's reasoning parser, exactly
as ``process_results`` did, then scored by :func:`ifharness.scoring.score` into a normal run
folder whose ``run.json`` says ``"source": "lm-eval"``.

The instructions are taken from the task's own data when it can be read here (a bundled
file, or ``--data``): then the verdicts do not depend on what the log says the constraints
were. Otherwise they come from the logged docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, TaskNotFound
from ..files import read_jsonl, sha256_file
from ..loader import Task, _spec_path, bundled_task_names, dataset_hash, load_task
from ..schema import Instruction, Message, Sample
from . import TASK_PREFIX
from .hooks import _is_task_file, answer_of, bound_instructions

if TYPE_CHECKING:
    from ..scoring import ScoreResult

NO_FILTER = "none"


def _response(rec: dict[str, Any], path: Path, line: int) -> str:
    for field in ("filtered_resps", "resps"):
        value = rec.get(field)
        while isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str):
            return value
    raise DataError(
        f"{path}:{line}: no text in 'filtered_resps' or 'resps'; is this an "
        "lm-eval --log_samples file of a generate_until task?"
    )


def read_lmeval_samples(path: str | Path) -> list[tuple[dict[str, Any], str]]:
    """(doc, response) per logged doc, in doc order; the ``none`` filter's line when several
    filters were logged."""
    path = Path(path)
    records: dict[Any, tuple[int, dict[str, Any]]] = {}
    for line, rec in read_jsonl(path, what="lm-eval samples file"):
        doc = rec.get("doc")
        if not isinstance(doc, dict) or "instructions" not in doc or "key" not in doc:
            raise DataError(
                f"{path}:{line}: the doc is not an ifharness_* task's doc "
                "(no 'key'/'instructions'); log samples of an ifharness_* task"
            )
        doc_id = rec.get("doc_id", line)
        if doc_id in records:
            if rec.get("filter", NO_FILTER) != NO_FILTER:
                continue
            if records[doc_id][1].get("filter", NO_FILTER) == NO_FILTER:
                raise DataError(f"{path}:{line}: doc_id {doc_id} logged twice")
        records[doc_id] = (line, rec)
    if not records:
        raise DataError(f"{path} holds no samples")
    ordered = sorted(records.items(), key=lambda kv: (isinstance(kv[0], str), kv[0]))
    return [(rec["doc"], _response(rec, path, line)) for _, (line, rec) in ordered]


def _task(
    name: str, docs: list[dict[str, Any]], data: str | None, profile: str | None, origin: str
) -> Task:
    from ifharness.verifiers import get_profile

    profile = profile or docs[0].get("profile")
    _, spec = _spec_path(name)
    base = None
    if data or spec.source.file:  # never the hub from here: the log has the instructions
        base = load_task(name, data=data, profile=profile)
    if base is not None:
        by_key = {str(s.key): s for s in base.samples}
        samples = []
        for doc in docs:
            s = by_key.get(str(doc["key"]))
            if s is None or s.instruction_ids != list(doc["instruction_id_list"]):
                raise DataError(
                    f"logged key {doc['key']} does not match task {name} "
                    f"({base.data_origin}); pass the data lm-eval ran on with --data"
                )
            samples.append(s)
        return Task(base.spec, samples, base.data_origin, dataset_hash(samples), base.profile)
    samples = [
        Sample(
            key=doc["key"],
            messages=[Message(role="user", content=doc["prompt"])],
            instructions=[Instruction(id=c, kwargs=k) for c, k in bound_instructions(doc)],
        )
        for doc in docs
    ]
    return Task(spec, samples, origin, dataset_hash(samples), get_profile(profile or spec.profile))


def rescore(
    samples_path: str | Path,
    task: str | None = None,
    data: str | None = None,
    profile: str | None = None,
    processes: int = 1,
) -> ScoreResult:
    """Score the answers of an lm-eval samples file; returns our ``ScoreResult``."""
    from ..scoring import score

    logged = read_lmeval_samples(samples_path)
    docs = [d for d, _ in logged]
    logged_task = docs[0].get("task")
    name = task or logged_task
    if not name or not isinstance(name, str):
        raise DataError(f"{samples_path}: the logged docs name no task; pass --task")
    if name.startswith(TASK_PREFIX) and not _is_task_file(name):
        name = name[len(TASK_PREFIX) :]
    task_file = docs[0].get("task_file")  # a task lm-eval loaded from a YAML path
    if (
        name == logged_task
        and isinstance(task_file, str)
        and Path(task_file).is_file()
        and name not in bundled_task_names()
    ):
        name = task_file
    spec_name = _spec_path(name)[1].name if _is_task_file(name) else name
    if logged_task and logged_task != spec_name:
        raise DataError(f"{samples_path} was logged for task {logged_task}, not {spec_name}")
    try:
        t = _task(name, docs, data, profile, f"lm-eval:{samples_path}")
    except TaskNotFound:
        where = f" (logged from {task_file}, which is not here)" if task_file else ""
        raise DataError(
            f"{samples_path}: task {name} is not a bundled task{where}; pass --task with the "
            "task YAML lm-eval ran (the path in its metadata.ifharness_task)"
        ) from None
    rows = [
        {"key": s.key, "response": answer_of(d, text)} for s, (d, text) in zip(t.samples, logged)
    ]
    return score(t, rows, processes=processes)


def write_lmeval_run(out: str | Path, result: ScoreResult, samples_path: str | Path) -> None:
    """A normal run folder (samples, completions, verdicts, metrics, run.json), marked as
    scored from lm-eval."""
    from ..results import write_score_run

    docs = [d for d, _ in read_lmeval_samples(samples_path)]
    write_score_run(
        out,
        result,
        lmeval={
            "samples": {"path": str(samples_path), "sha256": sha256_file(samples_path)},
            "task": f"{TASK_PREFIX}{result.task.name}",
            "reasoning_parser": sorted({d.get("reasoning_parser") for d in docs} - {None}),
            "logged_data": sorted({d.get("data") for d in docs} - {None}),
        },
    )
