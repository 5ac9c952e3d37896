"""open-instruct: a verifier with the interface and the scoring of its ``IFEvalVerifier``.

open-instruct (``open_instruct/ground_truth_utils.py``) routes every sample whose dataset
column says ``ifeval`` to a verifier called as
``verifier(tokenized_prediction, prediction, label, query=None, rollout_state=None)``
(or ``await verifier.async_call(...)``) that returns a result with ``.score``; the trainer
multiplies it by ``--verification_reward``. :class:`IFEvalVerifier` here scores exactly as
that verifier does (``shared/specs/ifevalg.md`` section 7), with the IFEvalG checkers
(``suite="ifevalg"``, the 54 ids):

1. ``label`` must be a string holding a Python literal of a list; its first element is a dict
   or a JSON string of one, with ``instruction_id`` (ids) and ``kwargs`` (one dict or None
   per id). A label that is not a string raises ``ValueError``.
2. The answer: every ``<|assistant|>`` deleted, stripped, only what follows the *last*
   ``</think>`` kept (all of it when there is none: an unclosed ``<think>`` stays in the
   answer), ``<answer>`` / ``</answer>`` deleted, stripped again.
3. An empty prediction or answer scores 0.0.
4. Ids and kwargs are zipped (a shorter kwargs list drops the remaining ids); None kwargs are
   ``{}``; keys whose value is None are dropped (other falsy values are kept).
5. Strict checks only; the score is the fraction of constraints followed (0.0 with none).

Where open-instruct raises (an unknown id, kwargs its set-up cannot take, such as
``count:count_increment_word`` with list-valued keywords), this verifier raises
:class:`IFEvalVerifierError` naming the instruction and the problem, as the reference aborts
the reward batch; ``on_error="zero"`` scores such a sample 0.0 instead. The reference draws
its set-up redraws and language detection unseeded; here they are deterministic
(the checkers' seeded binding). Nothing of open-instruct is imported (it is not on PyPI).
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ifharness.reward import ConstraintsError, RewardResult
from ifharness.reward._adapter import Settings, score

__all__ = [
    "IFEvalVerifier",
    "IFEvalVerifierError",
    "VerificationResult",
    "parse_label",
    "remove_thinking_section",
]

SUITE = "ifevalg"


class IFEvalVerifierError(ValueError):
    """A label the reference verifier raises on; the message says which instruction and why."""


@dataclass
class VerificationResult:
    """open-instruct's result shape: the score, its cost and an optional explanation."""

    score: float
    cost: float = 0.0
    reasoning: str | None = None


def remove_thinking_section(prediction: str) -> str:
    """The answer open-instruct checks: after the last ``</think>``, tags removed, stripped."""
    text = prediction.replace("<|assistant|>", "").strip()
    text = text.split("</think>")[-1]
    return text.replace("<answer>", "").replace("</answer>", "").strip()


def parse_label(label: Any) -> list[dict[str, Any]]:
    """``[{"id", "kwargs"}]`` of an open-instruct IFEval label, read as its verifier reads it."""
    if not isinstance(label, str):
        raise ValueError(
            f"an ifeval label must be a string (a Python literal of a list), got "
            f"{type(label).__name__}"
        )
    try:
        value = ast.literal_eval(label)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise IFEvalVerifierError(f"label is not a Python literal ({e}): {label[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise IFEvalVerifierError(f"label must be a non-empty list, got {label[:80]!r}")
    first = value[0]
    if isinstance(first, str):
        try:
            first = json.loads(first)
        except ValueError as e:
            raise IFEvalVerifierError(f"label element is not JSON ({e}): {first[:80]!r}") from None
    if not isinstance(first, Mapping) or "instruction_id" not in first:
        raise IFEvalVerifierError(
            f"label element must be a dict with 'instruction_id' and 'kwargs': {label[:80]!r}"
        )
    ids = first["instruction_id"]
    kwargs = first.get("kwargs") or []
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise IFEvalVerifierError(f"'instruction_id' must be a list of ids, got {ids!r:.80}")
    out = []
    for cid, kw in zip(ids, kwargs):  # the reference zips: extra ids are dropped
        if kw is not None and not isinstance(kw, Mapping):
            raise IFEvalVerifierError(f"{cid}: kwargs must be a dict or None, got {kw!r:.80}")
        out.append({"id": cid, "kwargs": {k: v for k, v in (kw or {}).items() if v is not None}})
    return out


class IFEvalVerifier:
    """open-instruct's ``ifeval`` verifier over the IFEvalG checkers (strict, fraction)."""

    name = "ifeval"
    weight = 1.0

    def __init__(
        self,
        *,
        on_error: str = "raise",
        workers: int | None = None,
        timeout_s: float | None = Settings.timeout_s,
        max_chars: int | None = Settings.max_chars,
    ):
        if on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {on_error!r}")
        self.on_error = on_error
        self.settings = Settings(
            suite=SUITE,
            mode="strict",
            reduce="fraction",
            reasoning="none",  # removed here, the reference's way
            workers=workers,
            timeout_s=timeout_s,
            max_chars=max_chars,
        )

    def __call__(
        self,
        tokenized_prediction: Sequence[int] | None,
        prediction: str,
        label: Any,
        query: str | None = None,
        rollout_state: dict[str, Any] | None = None,
    ) -> VerificationResult:
        (result,) = self.verify_batch([prediction], [label])
        return result

    async def async_call(
        self,
        tokenized_prediction: Sequence[int] | None,
        prediction: str,
        label: Any,
        query: str | None = None,
        rollout_state: dict[str, Any] | None = None,
    ) -> VerificationResult:
        """As open-instruct's default: the synchronous call in the loop's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, self.__call__, tokenized_prediction, prediction, label, query, rollout_state
        )

    def verify_batch(
        self, predictions: Sequence[str], labels: Sequence[Any]
    ) -> list[VerificationResult]:
        """Many samples in one pool round trip (open-instruct itself calls one at a time)."""
        if len(predictions) != len(labels):
            raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
        out: list[VerificationResult | None] = [None] * len(predictions)
        todo: list[tuple[int, str, list[dict[str, Any]]]] = []
        for n, (prediction, label) in enumerate(zip(predictions, labels)):
            constraints = parse_label(label)
            answer = remove_thinking_section(prediction) if prediction else ""
            if not prediction or not answer or not constraints:
                out[n] = VerificationResult(0.0)
            else:
                todo.append((n, answer, constraints))
        if todo:
            results = self._score([a for _, a, _ in todo], [c for _, _, c in todo])
            for (n, _, _), r in zip(todo, results):
                out[n] = r
        return [r if r is not None else VerificationResult(0.0) for r in out]

    def _score(
        self, answers: list[str], constraints: list[list[dict[str, Any]]]
    ) -> list[VerificationResult]:
        try:
            results = score(answers, constraints, self.settings)
        except ConstraintsError as e:
            if self.on_error == "zero" and len(answers) > 1:  # find the bad ones
                return [self._score([a], [c])[0] for a, c in zip(answers, constraints)]
            if self.on_error == "zero":
                return [VerificationResult(0.0, reasoning=f"unscorable: {e}")]
            raise IFEvalVerifierError(f"the ifeval verifier cannot score this label: {e}") from e
        return [self._result(r) for r in results]

    def _result(self, r: RewardResult) -> VerificationResult:
        broken = [v for v in r.verdicts if v.followed is None and not r.over_budget]
        if broken and self.on_error == "raise":
            problems = "; ".join(f"{v.id}: {v.reason}" for v in broken)
            raise IFEvalVerifierError(f"the ifeval verifier cannot score this label: {problems}")
        failed = [v.id for v in r.verdicts if v.followed is not True]
        why = f"not followed: {', '.join(failed)}" if failed else None
        return VerificationResult(float(r.score), reasoning=why)
