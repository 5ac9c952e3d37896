"""OpenRLHF: ``reward_func(queries, prompts, labels)`` for ``--remote_rm_url reward.py``.

OpenRLHF 0.11.2 loads ``reward_func`` from the Python file named by ``--remote_rm_url`` and,
after each rollout, calls it from a thread with one sample:
``reward_func([query], [prompt], [label])``. ``query`` is the prompt *and* the response,
decoded with ``skip_special_tokens=False``; ``prompt`` is the prompt text (chat template
applied with ``--apply_chat_template``); ``label`` is the dataset's ``--label_key`` column.
It reads ``rewards`` (the advantage signal), ``scores`` (for dynamic filtering) and
``extra_logs`` (each value logged; a tensor's first element) from the returned dict.

The response is cut out of the query here (:func:`response_of`):

1. ``query`` starts with ``prompt``: the rest is the response (the usual case).
2. Otherwise (the prompt was truncated to fit ``max_len``, or re-tokenised differently):
   the text after the last assistant-turn marker (``<|im_start|>assistant\\n``,
   ``<|assistant|>``, ``<|start_header_id|>assistant<|end_header_id|>``, ``[/INST]``, ...).
3. Otherwise the whole query.

Then end-of-turn and padding tokens at the end are dropped (``<|im_end|>``,
``<|endoftext|>``, ``</s>``, ``<|eot_id|>``, ``<|end|>``, ``<end_of_turn>``, ...) and the
reasoning is removed (``reasoning="think"``) before the constraints (``label``: any
constraints form, e.g. the RL label string ``str([dict])``) are checked.

The result's ``rewards`` and ``scores`` are ``torch`` tensors (one value per query, as
OpenRLHF expects) when torch can be imported, else lists; ``extra_logs`` holds
``followed_all``, ``over_budget``, ``num_followed`` and ``num_constraints`` the same way.
OpenRLHF itself is not imported (it needs deepspeed and flash-attn to install).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ifharness.reward._adapter import Settings, score, summary

__all__ = ["ASSISTANT_MARKERS", "END_TOKENS", "make_reward_func", "response_of", "reward_func"]

#: Text that opens the assistant's turn in common chat templates (the last one found wins).
ASSISTANT_MARKERS = (
    "<|im_start|>assistant\n",
    "<|im_start|>assistant",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|start_header_id|>assistant<|end_header_id|>",
    "<|assistant|>\n",
    "<|assistant|>",
    "<start_of_turn>model\n",
    "<|Assistant|>",
    "[/INST]",
)
#: Tokens that close the turn or pad the sequence; stripped from the end of the response.
END_TOKENS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<|end▁of▁sentence|>",
    "<eos>",
    "<pad>",
    "</s>",
    "<|return|>",
)


def response_of(
    query: str,
    prompt: str | None,
    markers: Sequence[str] = ASSISTANT_MARKERS,
    end_tokens: Sequence[str] = END_TOKENS,
) -> str:
    """The response inside one OpenRLHF query (prompt + response, special tokens kept)."""
    if prompt and query.startswith(prompt):
        text = query[len(prompt) :]
    else:
        cut, found = -1, ""
        for marker in markers:
            at = query.rfind(marker)
            if at > cut or (at == cut and at >= 0 and len(marker) > len(found)):
                cut, found = at, marker
        text = query[cut + len(found) :] if cut >= 0 else query
    stripped = True
    while stripped:
        stripped = False
        text = text.rstrip()
        for token in end_tokens:
            if text.endswith(token):
                text = text[: -len(token)]
                stripped = True
    return text


def _as_tensor(values: list[float]) -> Any:
    try:
        import torch
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


class IFEvalRewardFunc:
    """OpenRLHF's ``reward_func(queries, prompts, labels)`` with bound options."""

    def __init__(self, settings: Settings, tensors: bool = True):
        self.settings = settings
        self.tensors = tensors
        self.__name__ = "reward_func"

    def __call__(
        self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]
    ) -> dict[str, Any]:
        queries, prompts, labels = list(queries), list(prompts), list(labels)
        if not len(queries) == len(prompts) == len(labels):
            raise ValueError(
                f"{len(queries)} queries, {len(prompts)} prompts, {len(labels)} labels: "
                "OpenRLHF passes one of each per sample"
            )
        responses = [response_of(q, p) for q, p in zip(queries, prompts)]
        rows = [summary(r) for r in score(responses, labels, self.settings)]
        wrap = _as_tensor if self.tensors else (lambda v: v)
        scores = wrap([r["score"] for r in rows])
        return {
            "rewards": scores,
            "scores": wrap([r["score"] for r in rows]),
            "extra_logs": {
                key: wrap([float(r[key]) for r in rows])
                for key in ("followed_all", "over_budget", "num_followed", "num_constraints")
            },
        }


def make_reward_func(*, tensors: bool = True, **options: Any) -> Callable[..., dict[str, Any]]:
    """``reward_func`` with :func:`ifharness.reward.reward_batch`'s options bound
    (``suite``, ``mode``, ``reduce``, ``reasoning``, ``workers``, ``timeout_s``,
    ``max_chars``, ``over_budget_score``, ``profile``); ``tensors=False`` returns lists."""
    return IFEvalRewardFunc(Settings(**options), tensors)


#: The default: any suite, strict, fraction of constraints followed.
reward_func = make_reward_func()
