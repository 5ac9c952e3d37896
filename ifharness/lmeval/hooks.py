"""The functions the ``ifharness_*`` lm-eval task YAMLs name with ``!function``.

Nothing here re-implements scoring: data comes from :func:`ifharness.loader.load_task`, the
reasoning trace is cut off with :mod:`ifharness.reasoning`, verdicts come from
:func:`ifharness.scoring.judge` and the clustered standard error from :mod:`ifharness.stats`.

A doc carries everything its verdict depends on (bound instructions, profile, reasoning
parser), so ``process_results`` needs no state and ``ifharness score --from-lmeval`` can
re-score a ``--log_samples`` file on its own.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from ifharness.verifiers import Profile, get_profile

from .. import reasoning, stats
from ..errors import DataError
from ..scoring import judge

DATA_ENV = "IFHARNESS_LMEVAL_DATA"
SPLIT = "test"
MODES = stats.MODES


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
        raise DataError(f"lm-eval metadata 'data' for task {task} must be a path or "
                        f"{{task: path}}, got {data!r}")
    return data or None


def _model_name(meta: dict[str, Any]) -> str:
    for k in ("pretrained", "model", "model_name", "path"):
        if isinstance(meta.get(k), str):
            return meta[k]
    return ""


def task_docs(task: str, data: str | None = None, profile: str | None = None,
              reasoning_parser: str = "auto", model: str = "") -> list[dict[str, Any]]:
    """Our samples as lm-eval docs: one flat, JSON-safe dict per prompt."""
    from ..loader import load_task

    t = load_task(task, data=data, profile=profile)
    if t.spec.turns != "single" or t.spec.check != "answer":
        raise DataError(f"task {task}: only single-turn tasks that check the answer run under "
                        "lm-eval; use `ifharness run` for it")
    parser = reasoning.for_model(model, reasoning_parser).name
    keys = [s.key for s in t.samples]
    same_type = len({type(k) for k in keys}) == 1  # Arrow wants one type per column
    docs = []
    for s in t.samples:
        if len(s.messages) != 1:
            raise DataError(f"task {task}, key {s.key}: lm-eval docs hold one user message; "
                            f"this sample has {len(s.messages)} messages")
        docs.append({
            "key": s.key if same_type else str(s.key),
            "prompt": s.prompt,
            "instruction_id_list": s.instruction_ids,
            # bound kwargs as JSON: Arrow would pad heterogeneous kwargs with nulls
            "instructions": json.dumps([[i.id, i.kwargs] for i in s.instructions],
                                       ensure_ascii=False, sort_keys=True),
            "task": t.name,
            "profile": t.profile.name,
            "reasoning_parser": parser,
            "data": t.data_origin,
            "dataset_hash": t.data_hash,
        })
    return docs


def load_dataset(**metadata: Any) -> dict[str, Any]:
    """``custom_dataset``: lm-eval calls it with the task's metadata, ``--metadata`` and the
    model arguments. Reads ``ifharness_task`` (set in the YAML), ``data`` (a local JSONL,
    or ``{task: path}``; else $IFHARNESS_LMEVAL_DATA_<TASK> / $IFHARNESS_LMEVAL_DATA; else the
    task's own source), ``profile`` and ``reasoning_parser`` (default ``auto``: by model name)."""
    import datasets

    task = metadata.get("ifharness_task")
    if not task:
        raise DataError("ifharness lm-eval task YAML lacks metadata.ifharness_task")
    docs = task_docs(task, _data_for(task, metadata.get("data")), metadata.get("profile"),
                     metadata.get("reasoning_parser") or "auto", _model_name(metadata))
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


def verdicts(doc: dict[str, Any], response: str) -> dict[str, Any]:
    return judge(bound_instructions(doc), answer_of(doc, response), _profile(doc["profile"]))


def process_results(doc: dict[str, Any], results: Sequence[str]) -> dict[str, Any]:
    """Per-doc values, aggregated by the functions below: prompt level as 1/0, or ``None``
    when an instruction is unscorable (left out, as ``ifharness score`` does; lm-eval's
    ``mean`` could not leave it out), instruction level as the verdict lists."""
    v = verdicts(doc, results[0])
    out: dict[str, Any] = {}
    for mode in MODES:
        passed = stats.prompt_pass(v[mode])
        out[f"prompt_level_{mode}_acc"] = None if passed is None else float(passed)
        out[f"inst_level_{mode}_acc"] = list(v[mode])
    for mode in MODES:  # the standard errors come last in lm-eval's table
        out[f"prompt_level_{mode}_acc_se"] = out[f"prompt_level_{mode}_acc"]
        out[f"inst_level_{mode}_acc_clustered_se"] = list(v[mode])
    return out


# ----------------------------------------------------------------------------- aggregations


def _clusters(items: Sequence[Sequence[bool | None]]) -> list[tuple[int, int]]:
    out = []
    for verdict_list in items:
        known = [bool(v) for v in verdict_list if v is not None]
        out.append((sum(known), len(known)))
    return out


def agg_prompt_level_acc(items: Sequence[float | None]) -> float:
    """Prompts that followed every instruction over prompts scored."""
    known = [x for x in items if x is not None]
    return sum(known) / len(known) if known else math.nan


def agg_prompt_level_se(items: Sequence[float | None]) -> float:
    """lm-eval's standard error of a mean (sample SD over sqrt(n)), over prompts scored:
    custom aggregations get none from lm-eval itself."""
    known = [x for x in items if x is not None]
    se = stats.stderr_mean(int(sum(known)), len(known))
    return math.nan if se is None else se


def agg_inst_level_acc(items: Sequence[Sequence[bool | None]]) -> float:
    """Instructions followed over instructions scored, across all docs (micro average)."""
    clusters = _clusters(items)
    scored = sum(m for _, m in clusters)
    return sum(y for y, _ in clusters) / scored if scored else math.nan


def agg_clustered_se(items: Sequence[Sequence[bool | None]]) -> float:
    """Standard error of the instruction-level accuracy, clustered by prompt
    (lm-eval has none for custom aggregations: its ifeval shows N/A)."""
    se = stats.stderr_clustered(_clusters(items))
    return math.nan if se is None else se
