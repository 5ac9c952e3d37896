"""Engine settings the vLLM runner picks for the machine and the work, each with its reason.

vLLM's defaults are made for a GPU server. On a CPU build three of them cost the most, and
this module replaces them (measured on two AMD EPYC cores, SmolLM2-135M-Instruct, numbers in
``bench/bench_run.py``'s docstring):

* **dtype** — a checkpoint saved in bfloat16 is served in bfloat16 (``dtype="auto"``). Where
  the CPU has no native bf16 (no ``avx512_bf16``/``amx_bf16``: AVX2-only parts), vLLM's
  oneDNN linear cannot be created ("Failed to create oneDNN linear, fallback to torch
  linear") and generation runs about 3x slower than in float32. So: bf16 where the CPU has
  it, float32 where it does not.
* **cores** — the CPU build reserves one core per worker for the engine's scheduler process
  and binds the worker's OpenMP threads to the rest: on two cores the model runs on one.
  The scheduler mostly waits on the worker, so the worker gets every core the process may
  use (``VLLM_CPU_NUM_OF_RESERVED_CPU=0``) unless that was measured slower.
* **KV cache** — the CPU build sizes its KV cache from ``VLLM_CPU_KVCACHE_SPACE`` (GiB) or
  ``kv_cache_memory_bytes``; too small and requests are preempted and recomputed, too big
  and the engine refuses to start on a small machine. It is sized for the work: the answers
  that can be in flight × (prompt + max_tokens) × the model's KV bytes per token, at least
  one ``max_model_len`` sequence and 1 GiB, at most a share of the memory available now.

Whatever the user set wins: an ``--engine-arg`` (``dtype=…``, ``kv_cache_memory_bytes=…``,
``max_num_seqs=…``) or a ``VLLM_CPU_*`` variable in the environment. Every choice is recorded
with its reason in ``run.json`` (``engine.tuning``). Pure functions of their inputs (the
``/proc/cpuinfo`` text, the model's ``config.json``, the requests), so they are tested
without an engine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 1 << 30
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
KV_MIN_BYTES = GIB  # what the runner gave every CPU engine before it sized the cache
KV_MEMORY_SHARE = 0.5  # of the memory available when the run starts
KV_MARGIN = 1.2  # prompt lengths are estimated, and blocks round every sequence up
BLOCK_TOKENS = 16
MAX_NUM_SEQS_CAP = 256  # vLLM's own default for LLM() on a CPU build
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


@dataclass(frozen=True)
class Choice:
    """One setting the runner chose and why (``run.json``: ``engine.tuning.<name>``)."""

    value: Any
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "why": self.why}


@dataclass
class EnginePlan:
    """``LLM(...)`` keyword arguments and environment the runner adds, and why each."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    choices: dict[str, Choice] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {name: c.to_json() for name, c in self.choices.items()}


# ----------------------------------------------------------------------------- dtype


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first processor in a ``/proc/cpuinfo`` text."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def choose_cpu_dtype(flags: set[str], checkpoint_dtype: str | None) -> Choice:
    """bfloat16 where the CPU computes it natively, float32 where it does not.

    A checkpoint in float32 stays float32 (nothing to gain from rounding it); a float16 one
    is treated as bf16 (vLLM's CPU kernels are bf16/fp32 first). No flags known: vLLM's
    own choice (``auto``).
    """
    native = sorted(f for f in NATIVE_BF16_FLAGS if f in flags)
    if not flags:
        return Choice("auto", "CPU flags unknown (no /proc/cpuinfo): vLLM's choice")
    if checkpoint_dtype in ("float32", "float"):
        return Choice("float32", "the checkpoint is float32")
    if native:
        return Choice("bfloat16", f"the CPU computes bf16 natively ({', '.join(native)})")
    return Choice(
        "float32",
        "the CPU has no native bf16 (no avx512_bf16/amx_bf16): vLLM's oneDNN bf16 linear "
        "falls back to torch and runs ~3x slower than float32",
    )


# ----------------------------------------------------------------------------- KV cache


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part of a ``config.json`` (multimodal ones nest it)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def kv_bytes_per_token(config: Mapping[str, Any], dtype: str) -> int | None:
    """Bytes of K and V one token takes over all layers; None when the config does not say."""
    c = text_config(config)
    try:
        layers = int(c["num_hidden_layers"])
        heads = int(c["num_attention_heads"])
        kv_heads = int(c.get("num_key_value_heads") or heads)
        head_dim = int(c.get("head_dim") or int(c["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    width = DTYPE_BYTES.get(dtype)
    if width is None:
        return None
    return 2 * layers * kv_heads * head_dim * width


def prompt_tokens_estimate(messages: Sequence[Mapping[str, Any]]) -> int:
    """An upper-side guess of a rendered prompt's length without a tokenizer: three
    characters a token (English BPE averages about four) and a few tokens of template
    per message."""
    chars = sum(len(str(m.get("content", ""))) for m in messages)
    return chars // 3 + 8 * len(messages) + 16


def kv_tokens_for(work: Sequence[tuple[int, int, int]], max_num_seqs: int) -> int:
    """KV tokens the longest ``max_num_seqs`` sequences in flight together need.

    ``work`` is one ``(prompt_tokens, max_tokens, n)`` per request; each of the ``n``
    samples is a sequence of its own.
    """
    seqs: list[int] = []
    for prompt, max_tokens, n in work:
        per = -(-(prompt + max_tokens) // BLOCK_TOKENS) * BLOCK_TOKENS
        seqs.extend([per] * max(n, 1))
    seqs.sort(reverse=True)
    return sum(seqs[:max_num_seqs])


def size_kv_cache(
    need_tokens: int,
    per_token: int,
    max_model_len: int | None,
    available_bytes: int | None,
) -> Choice:
    """Bytes of KV cache: what the work needs (with a margin), at least one full-length
    sequence and ``KV_MIN_BYTES``, at most ``KV_MEMORY_SHARE`` of the available memory."""
    need = int(need_tokens * per_token * KV_MARGIN)
    floor = max(KV_MIN_BYTES, (max_model_len or 0) * per_token)
    size = max(need, floor)
    why = (
        f"{need_tokens} tokens in flight x {per_token} B/token x {KV_MARGIN} margin = "
        f"{need / GIB:.2f} GiB"
    )
    if size > need:
        why += f", raised to {size / GIB:.2f} GiB (1 GiB or one max_model_len sequence)"
    if available_bytes is not None:
        cap = int(available_bytes * KV_MEMORY_SHARE)
        if size > cap and cap >= floor:
            why += (
                f", capped at {KV_MEMORY_SHARE:.0%} of the {available_bytes / GIB:.1f} GiB "
                "available (requests beyond it wait or are preempted)"
            )
            size = cap
    return Choice(size, why)


def available_memory(meminfo: str) -> int | None:
    """``MemAvailable`` of a ``/proc/meminfo`` text, in bytes."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


# ----------------------------------------------------------------------------- the plan


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def model_config(model: str) -> dict[str, Any]:
    path = Path(model) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def plan_cpu_engine(
    model: str,
    work: Sequence[tuple[int, int, int]] | None,
    engine_args: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    cpuinfo: str | None = None,
    meminfo: str | None = None,
    cores: int | None = None,
) -> EnginePlan:
    """What the runner sets on a CPU build for this model and work (``work``: one
    ``(prompt_tokens, max_tokens, n)`` per request; None when not known yet). The user's
    engine arguments and ``VLLM_CPU_*`` variables are never overridden."""
    plan = EnginePlan()
    config = model_config(model)
    cpuinfo = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    meminfo = read_text("/proc/meminfo") if meminfo is None else meminfo
    cores = len(os.sched_getaffinity(0)) if cores is None else cores

    # dtype
    checkpoint = text_config(config).get("torch_dtype") or text_config(config).get("dtype")
    if "dtype" in engine_args:
        dtype = str(engine_args["dtype"])
        plan.choices["dtype"] = Choice(dtype, "--engine-arg dtype (the user's)")
    else:
        choice = choose_cpu_dtype(cpu_flags(cpuinfo), checkpoint)
        plan.choices["dtype"] = choice
        dtype = choice.value
        if choice.value != "auto":
            plan.kwargs["dtype"] = choice.value
    if dtype == "auto":
        dtype = str(checkpoint or "bfloat16")
    dtype = dtype.replace("torch.", "")

    # cores
    if "VLLM_CPU_NUM_OF_RESERVED_CPU" in environ or "VLLM_CPU_OMP_THREADS_BIND" in environ:
        plan.choices["threads"] = Choice(
            None, "VLLM_CPU_NUM_OF_RESERVED_CPU / VLLM_CPU_OMP_THREADS_BIND from the environment"
        )
    else:
        plan.env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
        plan.choices["threads"] = Choice(
            cores,
            f"all {cores} core(s) for the model's OpenMP threads (VLLM_CPU_NUM_OF_RESERVED_CPU"
            "=0): vLLM reserves one for its scheduler process by default, which mostly waits",
        )

    # how many sequences at once: every one of a small run
    n_seqs = sum(max(n, 1) for _, _, n in work) if work else None
    if "max_num_seqs" in engine_args:
        max_num_seqs = int(engine_args["max_num_seqs"])
        plan.choices["max_num_seqs"] = Choice(max_num_seqs, "--engine-arg max_num_seqs")
    else:
        max_num_seqs = MAX_NUM_SEQS_CAP
        if n_seqs is not None and n_seqs <= MAX_NUM_SEQS_CAP:
            why = f"vLLM's CPU default, which holds all {n_seqs} sequences of this run at once"
        else:
            why = "vLLM's CPU default; more sequences than this wait their turn"
        plan.choices["max_num_seqs"] = Choice(max_num_seqs, why)

    # KV cache
    if "kv_cache_memory_bytes" in engine_args:
        plan.choices["kv_cache_bytes"] = Choice(
            engine_args["kv_cache_memory_bytes"], "--engine-arg kv_cache_memory_bytes"
        )
    elif environ.get("VLLM_CPU_KVCACHE_SPACE"):
        plan.choices["kv_cache_bytes"] = Choice(
            int(environ["VLLM_CPU_KVCACHE_SPACE"]) * GIB, "VLLM_CPU_KVCACHE_SPACE (GiB)"
        )
    else:
        per_token = kv_bytes_per_token(config, dtype)
        max_len = engine_args.get("max_model_len") or text_config(config).get(
            "max_position_embeddings"
        )
        if per_token is None or not work:
            why = "1 GiB: " + (
                "the model's config.json does not give its KV size"
                if per_token is None
                else "the work is not known before the engine starts"
            )
            choice = Choice(KV_MIN_BYTES, why)
        else:
            choice = size_kv_cache(
                kv_tokens_for(work, max_num_seqs),
                per_token,
                int(max_len) if max_len else None,
                available_memory(meminfo),
            )
        plan.kwargs["kv_cache_memory_bytes"] = choice.value
        plan.choices["kv_cache_bytes"] = choice
    return plan
