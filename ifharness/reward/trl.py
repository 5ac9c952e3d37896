"""TRL (``GRPOTrainer``, ``RLOOTrainer``): an instruction-following reward function.

TRL 1.16 calls every reward function as
``reward_func(prompts=..., completions=..., completion_ids=..., **columns)`` with the whole
local batch (B x G completions) and one list per dataset column (every column but
``prompt``), plus ``trainer_state``, ``log_extra``, ``log_metric`` (and ``environments``);
it wants one float per completion back and names the function's metrics after its
``__name__``. This adapter reads the constraints from the dataset columns, scores the batch
with one :func:`ifharness.reward.reward_batch` call over a shared process pool, and returns
the scores.

Where the constraints come from (``constraints_column``):

* ``None`` (default): the first of ``instruction_id_list`` + ``kwargs`` (IFEval's columns;
  the ``None`` values that a Hugging Face dataset pads its union of kwargs with are dropped),
  ``instruction_id`` + ``kwargs``, ``ground_truth``, ``label``, ``constraints`` present.
* a column name: that column holds any constraints form per row (our list of
  ``{"id", "kwargs"}``, the IFEval dict, or the RL label string ``str([dict])``).

Completions are strings, or, for a conversational dataset, messages
(``[{"role": "assistant", "content": ...}]``): the last assistant message is scored (its
text parts, when ``content`` is a list of parts). The reasoning is removed first
(``reasoning="think"``). Nothing of TRL is imported here.

>>> from ifharness.reward.trl import make_reward_func
>>> ifeval_reward = make_reward_func(suite="ifeval", mode="strict", reduce="fraction")
>>> # GRPOTrainer(model, reward_funcs=[ifeval_reward], train_dataset=ds, args=cfg)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ifharness.reward._adapter import Settings, score, summary

__all__ = ["IFEvalReward", "make_reward_func", "reward_func"]

#: Column pairs (ids, kwargs) tried first, then single columns, when none is named.
ID_COLUMNS = ("instruction_id_list", "instruction_id")
LABEL_COLUMNS = ("ground_truth", "label", "constraints")
#: Keyword arguments TRL adds beside the dataset columns.
TRAINER_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments")


def completion_text(completion: Any) -> str:
    """The text to score of one TRL completion: a string, or a conversation's last
    assistant message (text parts joined when its content is a list of parts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, Sequence):
        raise TypeError(
            f"a completion must be a string or a list of messages, got {type(completion).__name__}"
        )
    messages = [m for m in completion if isinstance(m, Mapping)]
    assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
    if not assistant:
        return ""
    content = assistant[-1].get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and part.get("type", "text") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


class IFEvalReward:
    """A TRL reward function (a picklable callable; the pool is looked up, not held)."""

    def __init__(
        self,
        settings: Settings,
        constraints_column: str | None = None,
        kwargs_column: str = "kwargs",
        name: str = "ifeval_reward",
        log_metrics: bool = True,
    ):
        self.settings = settings
        self.constraints_column = constraints_column
        self.kwargs_column = kwargs_column
        self.__name__ = name
        self.log_metrics = log_metrics

    def __repr__(self) -> str:
        return f"<TRL reward {self.__name__}: {self.settings}>"

    def constraints(self, columns: Mapping[str, Any], n: int) -> list[Any]:
        """One constraints value per completion, from the dataset columns TRL passed."""
        if self.constraints_column is not None:
            if self.constraints_column not in columns:
                raise KeyError(self._missing(columns, f"column {self.constraints_column!r}"))
            return self._rows(columns, self.constraints_column, n)
        for ids in ID_COLUMNS:
            if ids in columns and self.kwargs_column in columns:
                id_rows = self._rows(columns, ids, n)
                kw_rows = self._rows(columns, self.kwargs_column, n)
                return [{ids: i, "kwargs": k} for i, k in zip(id_rows, kw_rows)]
        for label in LABEL_COLUMNS:
            if label in columns:
                return self._rows(columns, label, n)
        raise KeyError(
            self._missing(
                columns,
                "'instruction_id_list' + 'kwargs' columns or a 'ground_truth' / 'label' / "
                "'constraints' column",
            )
        )

    @staticmethod
    def _rows(columns: Mapping[str, Any], name: str, n: int) -> list[Any]:
        rows = list(columns[name])
        if len(rows) != n:
            raise ValueError(f"column {name!r} has {len(rows)} values for {n} completions")
        return rows

    def _missing(self, columns: Mapping[str, Any], wanted: str) -> str:
        got = sorted(k for k in columns if k not in TRAINER_KWARGS)
        return (
            f"{self.__name__}: the dataset needs {wanted} to read constraints from; the "
            f"trainer passed the columns {got}. Name it with make_reward_func("
            "constraints_column=...)."
        )

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        **columns: Any,
    ) -> list[float]:
        texts = [completion_text(c) for c in completions]
        results = score(texts, self.constraints(columns, len(texts)), self.settings)
        log_metric = columns.get("log_metric")
        if self.log_metrics and callable(log_metric) and results:
            rows = [summary(r) for r in results]
            for key in ("followed_all", "over_budget"):
                log_metric(f"{self.__name__}/{key}", sum(r[key] for r in rows) / len(rows))
        return [r.score for r in results]


def make_reward_func(
    *,
    suite: str | None = None,
    mode: str = "strict",
    reduce: str = "fraction",
    reasoning: str = "think",
    workers: int | None = None,
    timeout_s: float | None = Settings.timeout_s,
    max_chars: int | None = Settings.max_chars,
    over_budget_score: float = 0.0,
    profile: str = "reference",
    constraints_column: str | None = None,
    kwargs_column: str = "kwargs",
    name: str = "ifeval_reward",
    log_metrics: bool = True,
) -> Callable[..., list[float]]:
    """A TRL reward function with these options (:func:`ifharness.reward.reward_batch`'s;
    ``name`` is the ``__name__`` TRL logs it under; ``log_metrics`` adds
    ``<name>/followed_all`` and ``<name>/over_budget`` through TRL's ``log_metric``)."""
    settings = Settings(
        suite=suite,
        mode=mode,
        reduce=reduce,
        reasoning=reasoning,
        workers=workers,
        timeout_s=timeout_s,
        max_chars=max_chars,
        over_budget_score=over_budget_score,
        profile=profile,
    )
    return IFEvalReward(settings, constraints_column, kwargs_column, name, log_metrics)


#: The default: any suite (a bare id must be unique), strict, fraction of constraints followed.
reward_func = make_reward_func()
