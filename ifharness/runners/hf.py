"""The ``hf`` runner: plain transformers ``generate``, for machines without vLLM.

Each chunk is rendered with the tokenizer's chat template (or ``--chat-template``), with
the generation prompt added, tokenized without adding special tokens a second time (the
template already wrote them), padded on the **left** so every row of a batch ends where its
answer begins, and generated ``batch_size`` conversations at a time. Greedy at temperature 0;
otherwise sampling with ``temperature``/``top_p`` and ``n`` return sequences, seeded per
batch from the run's seed and the batch's first key, so a resumed run draws the same numbers
for the same batch.

Stop strings are passed to ``generate`` (``stop_strings``) and cut from the answer, as vLLM
does; EOS ends an answer too. ``finish_reason`` is ``length`` when ``max_tokens`` new tokens
were produced without reaching EOS or a stop string, else ``stop``; ``n_tokens`` counts the
new tokens up to and including the one that ended the answer. The reasoning parser splits
the trace off, as for the vllm runner.

Device: ``cuda`` when available, else ``cpu`` (or ``--device``). On a GPU the weights are
loaded in the dtype the folder was saved in; on a CPU in float32, since bf16 matmuls are slow
on most CPUs (``--engine-arg dtype=bfloat16`` overrides; ``--engine-arg`` passes any
``from_pretrained`` keyword).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..errors import IfharnessError
from ..reasoning import Parser
from ..reasoning import get as get_parser
from .base import Chunk, Completion, Request, chunked, request_seed, to_completion
from .registry import BackendOptions, RunContext, register_backend

if TYPE_CHECKING:
    from ..models import ModelRef


@dataclass
class HFOptions:
    model: str
    device: str | None = None
    batch_size: int = 8
    seed: int = 0
    chat_template: str | None = None  # template text; None: the tokenizer's own
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # more from_pretrained kwargs
    reasoning: Parser = field(default_factory=lambda: get_parser("think"))


class HFBackendOptions(BackendOptions):
    """``ifharness run --backend hf``."""

    device: str | None = Field(
        None, description="cpu, cuda, cuda:1, … (default: cuda when available)"
    )
    batch_size: int = Field(8, ge=1, description="conversations per generate call")


def _require_transformers() -> None:
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers")):
        raise IfharnessError(
            "the hf backend needs torch and transformers: pip install torch transformers"
        )


@register_backend(
    "hf",
    options=HFBackendOptions,
    summary="transformers, CPU or GPU",
    require=_require_transformers,
)
def hf_backend(
    options: HFBackendOptions, run: RunContext, model: ModelRef, parser: Parser
) -> HFRunner:
    return HFRunner(
        HFOptions(
            model=model.path,
            device=options.device,
            batch_size=options.batch_size,
            seed=run.seed,
            chat_template=model.chat_template if run.chat_template else None,
            chat_template_kwargs=dict(run.chat_template_kwargs),
            model_kwargs={k: v for k, v in run.engine_args.items() if k != "max_model_len"},
            reasoning=parser,
        )
    )


class HFRunner:
    name = "hf"

    def __init__(self, options: HFOptions):
        self.options = options
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = options.device

    def start(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise IfharnessError(
                "the hf backend needs torch and transformers: pip install torch transformers"
            ) from None
        o = self.options
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(o.model)
            kwargs = dict(o.model_kwargs)
            if "dtype" not in kwargs and "torch_dtype" not in kwargs:
                # bf16 matmuls are slow on most CPUs; on a GPU keep the folder's dtype
                kwargs["dtype"] = "auto" if str(self.device).startswith("cuda") else torch.float32
            model: Any = AutoModelForCausalLM.from_pretrained(o.model, **kwargs)
            self.model = model.to(self.device)
        except (OSError, ValueError) as e:
            raise IfharnessError(f"transformers could not load {o.model}: {e}") from None
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if o.chat_template is not None:
            self.tokenizer.chat_template = o.chat_template

    def close(self) -> None:
        self.model = self.tokenizer = None

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        template = self.tokenizer.chat_template if self.tokenizer is not None else None
        return {
            "backend": "hf",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "device": self.device,
            "dtype": str(getattr(self.model, "dtype", "")).replace("torch.", ""),
            "batch_size": self.options.batch_size,
            "seed": self.options.seed,
            "padding_side": "left",
            "chat_template_kwargs": self.options.chat_template_kwargs,
            "engine_chat_template_sha256": (
                hashlib.sha256(template.encode()).hexdigest() if isinstance(template, str) else None
            ),
        }

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        if self.model is None:
            raise IfharnessError("the hf runner was not started")
        for part in chunked(list(requests), chunk_size):
            out: list[Completion] = []
            # one batch holds requests with the same sampling settings
            groups: dict[Any, list[Request]] = {}
            for r in part:
                groups.setdefault(r.sampling, []).append(r)
            for reqs in groups.values():
                for batch in chunked(reqs, self.options.batch_size):
                    out.extend(self._batch(list(batch)))
            order = {str(r.key): i for i, r in enumerate(part)}
            out.sort(key=lambda c: (order[str(c.key)], c.index))
            yield Chunk(out)

    def render(self, request: Request) -> str:
        return self.tokenizer.apply_chat_template(
            request.messages,
            tokenize=False,
            add_generation_prompt=True,
            **self.options.chat_template_kwargs,
        )

    def _batch(self, batch: list[Request]) -> list[Completion]:
        import torch

        s = batch[0].sampling
        tok = self.tokenizer
        prompts = [self.render(r) for r in batch]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "pad_token_id": tok.pad_token_id,
            "num_return_sequences": s.n,
        }
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
            torch.manual_seed(request_seed(s.seed, batch[0].seed_key, namespace="hf"))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=tok)
        with torch.inference_mode():
            generated = self.model.generate(**enc, **kwargs)
        new = generated[:, enc["input_ids"].shape[1] :].tolist()
        eos = _eos_ids(self.model, tok)
        out = []
        for row, ids in enumerate(new):
            request = batch[row // s.n]
            ids, finish = _trim(ids, eos, tok.pad_token_id, s.max_tokens)
            text = tok.decode(ids, skip_special_tokens=True)
            text, stopped = _cut_stop(text, s.stop)
            if stopped:
                finish = "stop"
            out.append(
                to_completion(
                    request.key,
                    row % s.n,
                    text,
                    self.options.reasoning,
                    finish_reason=finish,
                    n_tokens=len(ids),
                )
            )
        return out


def _eos_ids(model: Any, tok: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return ids


def _trim(ids: list[int], eos: set[int], pad: int | None, max_tokens: int) -> tuple[list[int], str]:
    """The answer's tokens up to and including the one that ended it, and why it ended.

    Rows that ended early are padded on the right by ``generate``; the pad id may equal EOS.
    """
    for i, t in enumerate(ids):
        if t in eos:
            return ids[: i + 1], "stop"
    while ids and pad is not None and ids[-1] == pad and pad not in eos:
        ids = ids[:-1]
    return ids, "length" if len(ids) >= max_tokens else "stop"


def _cut_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut the text at the first stop string (not kept, as vLLM does)."""
    at = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    if at < 0:
        return text, False
    return text[:at], True
