"""One real GRPO optimisation step (TRL's ``GRPOTrainer``) on CPU, rewarded by our verifiers.

The embedded SmolLM2-135M-Instruct generates a few tokens for each of four IFEval-style
prompts (two completions each), :func:`ifharness.reward.trl.make_reward_func` scores them
from the dataset's ``instruction_id_list`` / ``kwargs`` columns, and the trainer takes one
optimiser step. Checked: the step ran, our reward saw the trainer's whole batch with the
dataset columns, and the policy's weights moved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.models import embedded_model_or_skip

pytestmark = pytest.mark.slow

PROMPTS = [
    ("Describe a cat in one sentence. Do not use any commas.", "punctuation:no_comma", {}),
    ("Say hello. Your entire answer must be in lowercase.", "change_case:english_lowercase", {}),
    (
        "Name a colour. Answer with at least 3 words.",
        "length_constraints:number_words",
        {"relation": "at least", "num_words": 3},
    ),
    ("Greet me. Do not use any commas.", "punctuation:no_comma", {}),
]


def test_grpo_takes_one_step_with_our_reward(tmp_path: Path):
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from ifharness.reward.trl import make_reward_func

    folder = str(embedded_model_or_skip())
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": text}],
                "instruction_id_list": [cid],
                "kwargs": [kwargs],
            }
            for text, cid, kwargs in PROMPTS
        ]
    )
    ifeval_reward = make_reward_func(suite="ifeval", workers=0)
    calls: list[dict] = []

    def recorded(prompts, completions, completion_ids=None, **columns):
        calls.append({"completions": completions, "columns": columns})
        return ifeval_reward(prompts, completions, completion_ids, **columns)

    recorded.__name__ = ifeval_reward.__name__

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=8,  # completions: 4 prompts x 2 generations
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[recorded],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()

    assert trainer.state.global_step == 1
    assert calls, "the trainer never called the reward"
    batch = calls[0]
    assert len(batch["completions"]) == 8
    assert batch["completions"][0][0]["role"] == "assistant"  # conversational completions
    assert sorted(batch["columns"]["instruction_id_list"])[0] == ["change_case:english_lowercase"]
    assert len(batch["columns"]["kwargs"]) == 8
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and "rewards/ifeval_reward/mean" in logged[0]
    moved = any(not torch.equal(before[n], p.detach()) for n, p in trainer.model.named_parameters())
    assert moved, "one optimisation step left every weight unchanged"
