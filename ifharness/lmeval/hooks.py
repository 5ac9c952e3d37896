"""The functions the ``ifharness_*`` lm-eval task YAMLs name with ``!function``.

Nothing here re-implements scoring: data comes from :func:`ifharness.loader.load_task`, the
reasoning trace is cut off with :mod:`ifharness.reasoning`, verdicts come from
:func:`ifharness.scoring.judge` and the standard errors from :mod:`ifharness.stats`. The metrics
are those of the one table (:mod:`ifharness.metrics`): ``process_results`` emits one value per
base metric and one per its standard error, and ``agg_<lm-eval metric name>`` is each one's
aggregation. lm-eval reads ``metric_list`` from the static ``_template_yaml``;
:func:`metric_list` is what it must say (a test keeps the two equal).

A doc carries everything its verdict depends on (bound instructions, suite, profile,
reasoning parser), so ``process_results`` needs no state and ``ifharness score --from-lmeval`` can
re-score a ``--log_samples`` file on its own.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ifharness.verifiers import Profile, get_profile

from .. import reasoning, stats
from ..errors import DataError
from ..metrics import BaseMetric, Verdicts, base_metrics
from ..scoring import Judgement, judge

DATA_ENV = "IFHARNESS_LMEVAL_DATA"
SPLIT = "test"
MODES = stats.MODES
# What lm-eval keeps per doc for one metric: a Bernoulli metric's 1.0/0.0 (None when the
# prompt is not scored), any other metric's verdict list.
DocValue = float | list[bool | None] | None
Aggregation = Callable[[Sequence[DocValue]], float]


# ----------------------------------------------------------------------------- data


def _data_for(task: str, data: Any) -> str | None:
    """``data`` is a path for every task, or ``{task: path}`` (with or without the prefix)."""
    if data is None:
        data = os.environ.get(f"{DATA_ENV}_{task.upper()}") or os.environ.get(DATA_ENV)
        if isinstance(data, str) and data.lstrip().startswith("{"):
            data = json.loads(data)
    if isinstance(data, dict):
        data = data.get(task, data.get(f"ifharness_{task}"))
    if data is not None and not isinstance(data, str):
        raise DataError(
            f"lm-eval metadata 'data' for task {task} must be a path or "
            f"{{task: path}}, got {data!r}"
        )
    return data or None


def _model_name(meta: dict[str, Any]) -> str:
    for k in ("pretrained", "model", "model_name", "path"):
        if isinstance(meta.get(k), str):
            return meta[k]
    return ""


def task_docs(
    task: str,
    data: str | None = None,
    profile: str | None = None,
    reasoning_parser: str = "auto",
    model: str = "",
) -> list[dict[str, Any]]:
    """Our samples as lm-eval docs: one flat, JSON-safe dict per prompt."""
    from ..loader import load_task

    t = load_task(task, data=data, profile=profile)
    if t.spec.turns != "single":
        raise DataError(
            f"task {task}: only single-turn tasks run under lm-eval; use `ifharness run` for it"
        )
    if t.spec.check != "answer":  # process_results sees the answer only, never a trace
        raise DataError(
            f"task {task}: check: {t.spec.check} reads the reasoning trace, which lm-eval does "
            "not keep apart; use `ifharness run` for it"
        )
    parser = reasoning.for_model(model, reasoning_parser).name
    # A task given as a YAML path (a generated task, a user's own) is named by its file too,
    # so `ifharness score --from-lmeval` finds the task again without --task.
    task_file = str(Path(task).resolve()) if _is_task_file(task) else None
    keys = [s.key for s in t.samples]
    same_type = len({type(k) for k in keys}) == 1  # Arrow wants one type per column
    docs = []
    for s in t.samples:
        if len(s.messages) != 1:
            raise DataError(
                f"task {task}, key {s.key}: lm-eval docs hold one user message; "
                f"this sample has {len(s.messages)} messages"
            )
        docs.append(
            {
                "key": s.key if same_type else str(s.key),
                "prompt": s.prompt,
                "instruction_id_list": s.instruction_ids,
                # bound kwargs as JSON: Arrow would pad heterogeneous kwargs with nulls
                "instructions": json.dumps(
                    [[i.id, i.kwargs] for i in s.instructions], ensure_ascii=False, sort_keys=True
                ),
                "task": t.name,
                "suite": t.spec.suite,
                "profile": t.profile.name,
                "reasoning_parser": parser,
                "data": t.data_origin,
                "dataset_hash": t.data_hash,
                **({"task_file": task_file} if task_file else {}),
            }
        )
    return docs


def _is_task_file(task: str) -> bool:
    """Whether ``task`` names a task YAML (as the loader decides) rather than a bundled task."""
    return task.endswith((".yaml", ".yml")) and Path(task).is_file()


def load_dataset(**metadata: Any) -> dict[str, Any]:
    """``custom_dataset``: lm-eval calls it with the task's metadata, ``--metadata`` and the
    model arguments. Reads ``ifharness_task`` (set in the YAML), ``data`` (a local JSONL,
    or ``{task: path}``; else $IFHARNESS_LMEVAL_DATA_<TASK> / $IFHARNESS_LMEVAL_DATA; else the
    task's own source), ``profile`` and ``reasoning_parser`` (default ``auto``: by model name)."""
    import datasets

    task = metadata.get("ifharness_task")
    if not task:
        raise DataError("ifharness lm-eval task YAML lacks metadata.ifharness_task")
    docs = task_docs(
        task,
        _data_for(task, metadata.get("data")),
        metadata.get("profile"),
        metadata.get("reasoning_parser") or "auto",
        _model_name(metadata),
    )
    return {SPLIT: datasets.Dataset.from_list(docs)}


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"]


# ----------------------------------------------------------------------------- verdicts


@cache
def _profile(name: str) -> Profile:
    return get_profile(name)


def bound_instructions(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(cid, kwargs) for cid, kwargs in json.loads(doc["instructions"])]


def answer_of(doc: dict[str, Any], response: str) -> str:
    """What is checked: the text after the reasoning trace, by the doc's parser."""
    return reasoning.get(doc.get("reasoning_parser") or "think").split(response).answer


def verdicts(doc: dict[str, Any], response: str) -> Judgement:
    return judge(
        bound_instructions(doc),
        answer_of(doc, response),
        _profile(doc["profile"]),
        doc.get("suite"),
    )  # a doc logged before suites were recorded: bare ids


def doc_value(metric: BaseMetric, verdicts: Verdicts) -> DocValue:
    """A Bernoulli (prompt-level) metric as 1/0, or ``None`` when an instruction is
    unscorable (left out, as ``ifharness score`` does; lm-eval's ``mean`` could not leave it
    out); any other metric as the verdict list."""
    if metric.bernoulli:
        passed = metric.row_pass(verdicts)
        return None if passed is None else float(passed)
    return list(verdicts)


def process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, DocValue]:
    """Per-doc values of every base metric of the table, then of their standard errors
    (last in lm-eval's table), aggregated by ``agg_<name>``."""
    v = verdicts(doc, results[0])
    bases = base_metrics()
    out = {b.name: doc_value(b, v[b.mode]) for b in bases}
    out.update({b.lmeval_stderr_name: doc_value(b, v[b.mode]) for b in bases})
    return out


# ----------------------------------------------------------------------------- aggregations


def _counts(metric: BaseMetric, items: Sequence[DocValue]) -> list[tuple[float, float]]:
    """``(successes, trials)`` per doc, from the values :func:`doc_value` kept."""
    out: list[tuple[float, float]] = []
    for item in items:
        if item is None:  # a Bernoulli metric's prompt that is not scored
            out.append((0, 0))
        elif isinstance(item, (int, float)):  # a Bernoulli metric's 1/0
            out.append((item, 1))
        else:
            out.append(metric.count(item))
    return out


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


def aggregate(metric: BaseMetric, items: Sequence[DocValue]) -> float:
    """The metric's ratio of sums over docs (a micro average); NaN when nothing is scored."""
    counts = _counts(metric, items)
    trials = sum(m for _, m in counts)
    return sum(y for y, _ in counts) / trials if trials else math.nan


def aggregate_stderr(metric: BaseMetric, items: Sequence[DocValue]) -> float:
    """The metric's standard error by its table entry (lm-eval computes none for custom
    aggregations: its own ifeval shows N/A)."""
    return _nan(stats.stderr_of(metric.stderr, _counts(metric, items)))


def lmeval_metrics() -> dict[str, tuple[BaseMetric, bool]]:
    """lm-eval metric name -> (table entry, is its standard error), in process_results order."""
    bases = base_metrics()
    return {
        **{b.name: (b, False) for b in bases},
        **{b.lmeval_stderr_name: (b, True) for b in bases},
    }


def metric_list() -> list[dict[str, str | bool]]:
    """The ``metric_list`` the task YAMLs carry (``!function`` values as dotted names)."""
    return [
        {
            "metric": name,
            "aggregation": f"{__name__}.agg_{name}",
            "higher_is_better": not is_se and metric.higher_is_better,
        }
        for name, (metric, is_se) in lmeval_metrics().items()
    ]


def aggregation(name: str) -> Aggregation:
    """The aggregation of lm-eval metric ``name`` (what ``agg_<name>`` resolves to)."""
    try:
        metric, is_se = lmeval_metrics()[name]
    except KeyError:
        raise DataError(
            f"no lm-eval metric {name!r} in the metric table: choose one of "
            f"{', '.join(lmeval_metrics())}"
        ) from None

    def agg(items: Sequence[DocValue]) -> float:
        return aggregate_stderr(metric, items) if is_se else aggregate(metric, items)

    agg.__name__ = agg.__qualname__ = f"agg_{name}"
    return agg


def __getattr__(name: str) -> Aggregation:
    """``agg_<lm-eval metric name>``, for every metric of the table (the YAMLs name them)."""
    if name.startswith("agg_") and name[4:] in lmeval_metrics():
        return aggregation(name[4:])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The first plugin version named one aggregation per level; kept for YAMLs written against it.


def agg_prompt_level_acc(items: Sequence[float | None]) -> float:
    """Prompts that followed every instruction over prompts scored."""
    return aggregate(_builtin("prompt_level_strict_acc"), items)


def agg_prompt_level_se(items: Sequence[float | None]) -> float:
    """lm-eval's standard error of a mean (sample SD over sqrt(n)), over prompts scored."""
    return aggregate_stderr(_builtin("prompt_level_strict_acc"), items)


def agg_inst_level_acc(items: Sequence[Sequence[bool | None]]) -> float:
    """Instructions followed over instructions scored, across all docs (micro average)."""
    return aggregate(_builtin("inst_level_strict_acc"), [list(v) for v in items])


def agg_clustered_se(items: Sequence[Sequence[bool | None]]) -> float:
    """Standard error of the instruction-level accuracy, clustered by prompt."""
    return aggregate_stderr(_builtin("inst_level_strict_acc"), [list(v) for v in items])


def _builtin(name: str) -> BaseMetric:
    return next(b for b in base_metrics() if b.name == name)
