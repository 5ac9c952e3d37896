"""verl: ``compute_score`` for a custom reward function, one sample or a batch.

verl 0.9.1 loads a custom reward function from
``reward.custom_reward_function.{path,name}`` (``path: pkg://ifharness.reward.verl`` works,
as does a file path: this module uses absolute imports) and merges
``reward.custom_reward_function.reward_kwargs`` into every call. Its reward managers call:

* the reward loop's managers (``naive``, ``dapo``, ``limited``, ...), one sample at a time,
  from threads: ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)``;
* ``BatchRewardManager`` (``verl.workers.reward_manager.batch``; the reward loop of 0.9.1
  registers no batch manager, older configs select it with ``reward_model.reward_manager=batch``):
  ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=)`` (numpy arrays
  or lists), one call per batch: use :func:`compute_score_batch` (``name:
  compute_score_batch``), which scores the batch in one pool round trip.

``solution_str`` is the decoded response (``skip_special_tokens=True``); ``ground_truth``
is the dataset's ``reward_model.ground_truth``: store the constraints there as a JSON string
(``json.dumps([{"id": ..., "kwargs": {...}}])``, or the IFEval dict, or the RL label
``str([dict])``); ``extra_info`` is not read. The result is a dict: ``score`` (the reward)
plus numbers verl collects per sample into ``reward_extra_info`` (``acc`` = every constraint
followed, ``num_constraints``, ``num_followed``, ``over_budget``, ``empty_answer``,
``unterminated_reasoning``) and ``verdicts`` (JSON text: verl's metrics skip strings). Every
sample gets the same keys, as verl's trainer requires. ``return_dict=False`` returns the
bare float.

Options (from ``reward_kwargs``, or bound with :func:`make_compute_score`): ``suite``,
``mode``, ``reduce``, ``reasoning``, ``workers``, ``timeout_s``, ``max_chars``,
``over_budget_score``, ``profile``, ``return_dict``. Nothing of verl is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ifharness.reward import RewardResult
from ifharness.reward._adapter import Settings, score, summary

__all__ = ["compute_score", "compute_score_batch", "make_compute_score"]

_DEFAULT = Settings()
_OPTIONS = tuple(Settings.__dataclass_fields__)


def _split_options(kwargs: dict[str, Any], base: Settings) -> tuple[Settings, bool]:
    """Our options out of verl's extra keyword arguments (others, e.g. the reward router's
    address, are ignored)."""
    options = {k: kwargs[k] for k in _OPTIONS if k in kwargs}
    return_dict = bool(kwargs.get("return_dict", True))
    return (Settings(**{**base.__dict__, **options}) if options else base), return_dict


def _result(r: RewardResult, return_dict: bool) -> float | dict[str, Any]:
    if not return_dict:
        return float(r.score)
    info = summary(r)
    info["acc"] = info.pop("followed_all")
    info["verdicts"] = json.dumps(
        [{"id": v.id, "followed": v.followed, "reason": v.reason} for v in r.verdicts],
        ensure_ascii=False,
    )
    return info


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    **kwargs: Any,
) -> float | dict[str, Any]:
    """verl's per-sample ``compute_score``: the reward of ``solution_str`` for the
    constraints in ``ground_truth`` (``data_source`` and ``extra_info`` are not read)."""
    settings, return_dict = _split_options(kwargs, _DEFAULT)
    (r,) = score([solution_str], [ground_truth], settings)
    return _result(r, return_dict)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float | dict[str, Any]]:
    """verl's batch ``compute_score`` (``reward_manager.name: batch``): one result per
    response, scored in one :func:`ifharness.reward.reward_batch` call."""
    settings, return_dict = _split_options(kwargs, _DEFAULT)
    responses = [str(s) for s in solution_strs]
    labels = list(ground_truths)
    if len(labels) != len(responses):
        raise ValueError(f"{len(responses)} solution_strs but {len(labels)} ground_truths")
    return [_result(r, return_dict) for r in score(responses, labels, settings)]


def make_compute_score(
    *, batch: bool = False, return_dict: bool = True, **options: Any
) -> Callable[..., Any]:
    """``compute_score`` (or, with ``batch=True``, ``compute_score_batch``) with options
    bound; keyword arguments verl passes at call time still win, as its own
    ``reward_kwargs`` merge does."""
    base = Settings(**options)
    fn = compute_score_batch if batch else compute_score

    def bound(*args: Any, **kwargs: Any) -> Any:
        merged = {**base.__dict__, "return_dict": return_dict, **kwargs}
        return fn(*args, **merged)

    bound.__name__ = fn.__name__
    bound.__doc__ = fn.__doc__
    return bound
