"""The trainer adapters of ``ifharness.reward``, each called the way its framework calls it.

* TRL: through ``GRPOTrainer._calculate_rewards`` itself (TRL's own code, on a stand-in
  trainer object), plain and conversational completions, the reward-function name.
* verl: loaded by verl's own ``get_custom_reward_fn`` from ``pkg://ifharness.reward.verl``
  and driven by its reward managers (``naive``, the reward loop's ``naive``, ``batch``) over
  a ``DataProto`` of tokenised samples.
* OpenRLHF: cutting the response out of the query (prefix, chat-template markers, end
  tokens), and the whole round trip through OpenRLHF's ``SingleTurnAgentExecutor`` with a
  stand-in vLLM engine.
* open-instruct: every case of ``rl_verifier_cases.jsonl`` reproduces the reference score.

A framework that is not installed skips its tests (``make install`` installs them).
"""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path
from typing import Any

import pytest

from tests.support.data import read_jsonl, shared
from tests.support.models import embedded_model_or_skip

NO_COMMA = {"id": "punctuation:no_comma", "kwargs": {}}
WORDS = {
    "id": "length_constraints:number_words",
    "kwargs": {"relation": "at least", "num_words": 5},
}
LABEL = str(
    [
        {
            "instruction_id": ["punctuation:no_comma", "change_case:english_lowercase"],
            "kwargs": [None, None],
        }
    ]
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(embedded_model_or_skip()))


# ---------------------------------------------------------------------------------- TRL


def trl_calculate_rewards(reward_func, inputs, prompts, completions, completion_ids):
    """TRL's ``GRPOTrainer._calculate_rewards`` run on a stand-in for the trainer."""
    pytest.importorskip("trl")
    from accelerate import Accelerator
    from transformers import TrainerState
    from trl import GRPOTrainer
    from trl.trainer.utils import get_callable_name

    metrics: dict[str, list[float]] = {}
    trainer = types.SimpleNamespace(
        accelerator=Accelerator(cpu=True),
        args=types.SimpleNamespace(report_to=[]),
        state=TrainerState(),
        reward_funcs=[reward_func],
        reward_processing_classes=[None],
        reward_func_names=[get_callable_name(reward_func)],
        environments=None,
        _log_completion_extra=lambda column, values: None,
        _log_metric=lambda name, value: metrics.setdefault(name, []).append(value),
    )
    rewards = GRPOTrainer._calculate_rewards(trainer, inputs, prompts, completions, completion_ids)
    return rewards, trainer.reward_func_names[0], metrics


def test_trl_reward_through_grpo_calculate_rewards():
    from ifharness.reward.trl import make_reward_func

    ifeval_reward = make_reward_func(suite="ifeval", workers=0)
    inputs = [
        {
            "prompt": "Describe cats without commas.",
            "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
            # a Hugging Face dataset pads every kwargs dict to the union of keys with None
            "kwargs": [
                {"relation": None, "num_words": None},
                {"relation": "at least", "num_words": 5},
            ],
        }
    ] * 2
    prompts = [row["prompt"] for row in inputs]
    completions = [
        "Cats are small quiet animals that nap a lot.",  # both followed
        "<think>Commas, maybe.</think>Cats, dogs.",  # reasoning removed; both broken
    ]
    rewards, name, metrics = trl_calculate_rewards(
        ifeval_reward, inputs, prompts, completions, [[1, 2], [3]]
    )
    assert rewards.shape == (2, 1)
    assert rewards[:, 0].tolist() == [1.0, 0.0]
    assert name == "ifeval_reward"
    assert metrics["ifeval_reward/followed_all"] == [0.5]
    assert metrics["ifeval_reward/over_budget"] == [0.0]


def test_trl_conversational_completions_and_label_column():
    from ifharness.reward.trl import make_reward_func

    ifeval_reward = make_reward_func(
        suite="ifevalg", constraints_column="ground_truth", name="ifevalg", workers=0
    )
    inputs = [
        {"prompt": [{"role": "user", "content": "Write in lowercase."}], "ground_truth": LABEL}
    ]
    inputs = inputs * 3
    completions = [
        [{"role": "assistant", "content": "all lowercase and no commas"}],
        [{"role": "assistant", "content": "Upper Case here"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "lower, but a comma"}]}],
    ]
    rewards, name, _ = trl_calculate_rewards(
        ifeval_reward, inputs, [r["prompt"] for r in inputs], completions, [[1]] * 3
    )
    assert rewards[:, 0].tolist() == [1.0, 0.5, 0.5]
    assert name == "ifevalg"


def test_trl_missing_columns_say_what_is_needed():
    from ifharness.reward.trl import reward_func

    with pytest.raises(KeyError, match="instruction_id_list.*'answer'"):
        reward_func(prompts=["p"], completions=["c"], completion_ids=[[1]], answer=["42"])


def test_trl_reward_func_pickles_without_its_pool():
    import pickle

    from ifharness.reward.trl import make_reward_func

    fn = make_reward_func(suite="ifeval", workers=0)
    fn(
        prompts=["p"],
        completions=["no commas"],
        instruction_id_list=[["punctuation:no_comma"]],
        kwargs=[[{}]],
    )
    again = pickle.loads(pickle.dumps(fn))
    assert again.__name__ == "ifeval_reward"
    assert again(
        prompts=["p"],
        completions=["a, b"],
        instruction_id_list=[["punctuation:no_comma"]],
        kwargs=[[{}]],
    ) == [0.0]


# ---------------------------------------------------------------------------------- verl


def verl_batch(tokenizer, prompts: list[str], responses: list[str], truths: list[Any]):
    """A ``DataProto`` as verl's rollout leaves it: left-padded prompts, right-padded
    responses (ending in EOS), one attention mask, the parquet columns as non-tensors."""
    import numpy as np
    import torch
    from verl import DataProto

    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    p_ids = [tokenizer(p)["input_ids"] for p in prompts]
    r_ids = [tokenizer(r)["input_ids"] + [eos] for r in responses]
    P, R = max(map(len, p_ids)), max(map(len, r_ids)) + 2
    prompt_t = torch.full((len(prompts), P), pad)
    response_t = torch.full((len(prompts), R), pad)
    mask = torch.zeros(len(prompts), P + R, dtype=torch.long)
    for i, (a, b) in enumerate(zip(p_ids, r_ids)):
        prompt_t[i, P - len(a) :] = torch.tensor(a)
        mask[i, P - len(a) : P] = 1
        response_t[i, : len(b)] = torch.tensor(b)
        mask[i, P : P + len(b)] = 1
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_t,
            "responses": response_t,
            "input_ids": torch.cat([prompt_t, response_t], dim=1),
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array(["ifeval"] * len(prompts), dtype=object),
            "reward_model": np.array([{"ground_truth": t} for t in truths], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(prompts))], dtype=object),
        },
    )


def verl_reward_fn(name: str, **reward_kwargs: Any):
    """The custom reward function as verl 0.9.1 loads it from its config."""
    pytest.importorskip("verl")
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://ifharness.reward.verl",
                    "name": name,
                    "reward_kwargs": reward_kwargs,
                }
            }
        }
    )
    return get_custom_reward_fn(config)


VERL_CASES = (
    # (response, ground truth as stored in the parquet, reward)
    ("cats are small quiet animals that nap", json.dumps([NO_COMMA, WORDS]), 1.0),
    ("Cats, dogs.", json.dumps([NO_COMMA, WORDS]), 0.0),
    ("<think>plan, plan</think>no commas at all here", LABEL, 1.0),
    ("Upper Case without commas", LABEL, 0.5),
)


def test_verl_naive_reward_manager_calls_compute_score(tokenizer):
    fn = verl_reward_fn("compute_score", suite="ifeval", workers=0)
    from verl.workers.reward_manager.naive import NaiveRewardManager

    responses, truths, want = zip(*VERL_CASES)
    data = verl_batch(tokenizer, ["Write."] * len(responses), list(responses), list(truths))
    out = NaiveRewardManager(tokenizer, 0, fn)(data, return_dict=True)
    assert out["reward_tensor"].sum(dim=1).tolist() == list(want)
    info = out["reward_extra_info"]
    assert info["score"] == list(want)
    assert info["acc"] == [1.0, 0.0, 1.0, 0.0]
    assert info["num_constraints"] == [2, 2, 2, 2]
    verdicts = json.loads(info["verdicts"][3])
    assert [v["followed"] for v in verdicts] == [True, False]


def test_verl_reward_loop_naive_manager(tokenizer):
    fn = verl_reward_fn("compute_score", suite="ifeval")
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

    manager = get_reward_manager_cls("naive")(config=None, tokenizer=tokenizer, compute_score=fn)
    responses, truths, want = zip(*VERL_CASES)
    got = []
    for r, t in zip(responses, truths):
        data = verl_batch(tokenizer, ["Write."], [r], [t])
        got.append(manager.loop.run_until_complete(manager.run_single(data)))
    assert [g["reward_score"] for g in got] == list(want)
    assert got[0]["reward_extra_info"]["acc"] == 1.0


def test_verl_batch_reward_manager_calls_compute_score_batch(tokenizer):
    fn = verl_reward_fn("compute_score_batch", suite="ifeval", workers=0)
    from verl.workers.reward_manager.batch import BatchRewardManager

    responses, truths, want = zip(*VERL_CASES)
    data = verl_batch(tokenizer, ["Write."] * len(responses), list(responses), list(truths))
    out = BatchRewardManager(tokenizer, 0, fn)(data, return_dict=True)
    assert out["reward_tensor"].sum(dim=1).tolist() == list(want)
    assert out["reward_extra_info"]["acc"] == [1.0, 0.0, 1.0, 0.0]


def test_verl_compute_score_forms_without_verl():
    from ifharness.reward.verl import compute_score, compute_score_batch, make_compute_score

    truth = json.dumps([NO_COMMA])
    assert compute_score("ifeval", "a, b", truth, None, workers=0, return_dict=False) == 0.0
    assert compute_score("ifeval", "a b", truth, {}, workers=0)["score"] == 1.0
    bound = make_compute_score(batch=True, suite="ifeval", workers=0, return_dict=False)
    assert bound.__name__ == "compute_score_batch"
    assert bound(["x", "x"], ["a b", "a, b"], [truth, truth], [{}, {}]) == [1.0, 0.0]
    assert compute_score_batch([], [], [], []) == []


# ---------------------------------------------------------------------------------- OpenRLHF


def test_openrlhf_cuts_the_prompt_out_of_the_query(tokenizer):
    from ifharness.reward.openrlhf import response_of

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write without commas."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    answer = "cats nap all day"
    query = prompt + answer + "<|im_end|>"
    assert response_of(query, prompt) == answer
    # prompt truncated on the left to fit max_len: the template marker is the fallback
    assert response_of(query[40:], prompt) == answer
    # other templates; end-of-turn and padding tokens stripped
    assert response_of("<|user|>\nhi\n<|assistant|>\nhello there</s>", None) == "hello there"
    assert (
        response_of(
            "<|start_header_id|>assistant<|end_header_id|>\n\nhey<|eot_id|><|end_of_text|>", "x"
        )
        == "hey"
    )
    assert response_of("[INST] hi [/INST] hello</s></s>", "nope") == " hello"
    # nothing to go by: the whole query
    assert response_of("just text", "other") == "just text"


def test_openrlhf_reward_func_returns_tensors(tokenizer):
    import torch

    from ifharness.reward.openrlhf import make_reward_func

    reward_func = make_reward_func(suite="ifevalg", workers=0)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Lowercase, no commas."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    out = reward_func(
        [prompt + "Upper, and commas<|im_end|>", prompt + "lower only<|im_end|>"],
        [prompt, prompt],
        [LABEL, LABEL],
    )
    assert isinstance(out["rewards"], torch.Tensor)
    assert out["rewards"].tolist() == [0.0, 1.0]
    assert out["scores"].tolist() == [0.0, 1.0]
    assert out["extra_logs"]["followed_all"].tolist() == [0.0, 1.0]
    listed = make_reward_func(suite="ifevalg", workers=0, tensors=False)
    assert listed([prompt + "lower only"], [prompt], [LABEL])["rewards"] == [1.0]


OPENRLHF_REWARD_FILE = """\
# reward.py: pass it to OpenRLHF as --remote_rm_url reward.py
from ifharness.reward.openrlhf import make_reward_func

reward_func = make_reward_func(suite="ifevalg", mode="strict", reduce="fraction")
"""


def test_openrlhf_agent_executor_loads_and_calls_reward_func(tokenizer, tmp_path: Path):
    pytest.importorskip("openrlhf.utils.agent")
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    answer = "lower case and no commas at all"
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    answer_ids += tokenizer("<|im_end|>", add_special_tokens=False)["input_ids"]

    class Engine:  # stands in for OpenRLHF's vLLM engine actor
        async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
            out = types.SimpleNamespace(token_ids=answer_ids, finish_reason="stop", logprobs=None)
            return types.SimpleNamespace(outputs=[out])

    reward_file = tmp_path / "reward.py"
    reward_file.write_text(OPENRLHF_REWARD_FILE, encoding="utf-8")
    executor = SingleTurnAgentExecutor(remote_rm_url=str(reward_file))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Lowercase, no commas."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    params = types.SimpleNamespace(max_tokens=32, logprobs=None)
    out = asyncio.run(executor.execute(prompt, LABEL, params, 256, tokenizer, Engine()))
    assert out["reward"].tolist() == [1.0]
    assert out["scores"].tolist() == [1.0]
    assert out["extra_logs"]["num_constraints"].tolist() == [2.0]


# ---------------------------------------------------------------------------------- open-instruct


def test_open_instruct_verifier_reproduces_every_reference_score():
    from ifharness.reward.open_instruct import IFEvalVerifier, IFEvalVerifierError

    cases = read_jsonl(shared("ifevalg/rl_verifier_cases.jsonl"))
    verifier = IFEvalVerifier(workers=0)
    wrong, errors = [], 0
    for case in cases:
        if case.get("error"):
            errors += 1
            with pytest.raises(IFEvalVerifierError, match="count:count_increment_word"):
                verifier(None, case["prediction"], case["label"])
            continue
        got = verifier(None, case["prediction"], case["label"]).score
        if got != pytest.approx(case["score"], abs=1e-12):
            wrong.append((case["key"], case["wrapping"], got, case["score"]))
    assert not wrong, wrong
    assert errors == 1 and len(cases) == 90


def test_open_instruct_batch_and_async_agree_with_the_call():
    from ifharness.reward.open_instruct import IFEvalVerifier, VerificationResult

    cases = [c for c in read_jsonl(shared("ifevalg/rl_verifier_cases.jsonl")) if not c.get("error")]
    verifier = IFEvalVerifier(workers=2)
    batch = verifier.verify_batch([c["prediction"] for c in cases], [c["label"] for c in cases])
    assert [r.score for r in batch] == pytest.approx([c["score"] for c in cases])

    async def gather():
        return await asyncio.gather(
            *(verifier.async_call(None, c["prediction"], c["label"]) for c in cases[:6])
        )

    got = asyncio.run(gather())
    assert all(isinstance(r, VerificationResult) for r in got)
    assert [r.score for r in got] == pytest.approx([c["score"] for c in cases[:6]])


def test_open_instruct_label_rules():
    from ifharness.reward.open_instruct import (
        IFEvalVerifier,
        IFEvalVerifierError,
        parse_label,
        remove_thinking_section,
    )

    assert (
        remove_thinking_section("<|assistant|><think>a</think>b</think> <answer>c</answer> ") == "c"
    )
    assert remove_thinking_section("<think>never closed") == "<think>never closed"
    # zip truncation; None kwargs and None-valued keys dropped, other falsy values kept
    zipped = str([{"instruction_id": ["a:b", "c:d", "e:f"], "kwargs": [None, {"x": None, "y": 0}]}])
    assert parse_label(zipped) == [{"id": "a:b", "kwargs": {}}, {"id": "c:d", "kwargs": {"y": 0}}]
    with pytest.raises(ValueError, match="must be a string"):
        parse_label([{"instruction_id": [], "kwargs": []}])
    verifier = IFEvalVerifier(workers=0)
    # the snippet of docs/rewards/open-instruct.md
    label = "[{'instruction_id': ['punctuation:no_comma'], 'kwargs': [None]}]"
    snippet = "<think>plan, plan</think><answer>no commas here</answer>"
    assert verifier(None, snippet, label).score == 1.0
    assert verifier(None, "", LABEL).score == 0.0
    assert verifier(None, "<think>all of it</think>  ", LABEL).score == 0.0
    assert verifier(None, "text", str([{"instruction_id": [], "kwargs": []}])).score == 0.0
    unknown = str([{"instruction_id": ["no:such_id"], "kwargs": [{}]}])
    with pytest.raises(IFEvalVerifierError, match="no:such_id"):
        verifier(None, "text", unknown)
    assert IFEvalVerifier(workers=0, on_error="zero")(None, "text", unknown).score == 0.0
