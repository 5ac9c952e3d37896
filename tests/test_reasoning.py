"""Reasoning parsers: the trace is split off, the answer is what gets checked."""

from __future__ import annotations

import pickle

import pytest

from ifharness import reasoning
from ifharness.errors import IfharnessError
from ifharness.reasoning import for_model, get


def split(name: str, text: str) -> tuple[str | None, str]:
    s = get(name).split(text)
    return s.reasoning, s.answer


def test_think_tags():
    assert split("think", "<think>\nplan it\n</think>\n\nThe answer.") == ("plan it", "The answer.")


def test_missing_opening_tag():
    # templates that open <think> in the prompt: the text starts inside the block
    assert split("think", "plan it</think>The answer.") == ("plan it", "The answer.")
    assert split("think-open", "plan it\n</think>\nThe answer.") == ("plan it", "The answer.")


def test_several_end_tags_answer_after_the_last():
    text = "<think>a</think> draft <think>b</think>\nfinal answer"
    reasoning_text, answer = split("think", text)
    assert answer == "final answer"
    assert reasoning_text.startswith("a</think> draft") and reasoning_text.endswith("b")


def test_end_tag_variants_and_mixed():
    assert split("think", "<reasoning>r</reasoning>ans") == ("r", "ans")
    assert split("think", "<thinking>r</thinking>ans") == ("r", "ans")
    assert split("think", "x</think>y</reasoning>ans")[1] == "ans"  # the last end tag wins


def test_no_tags_is_all_answer():
    assert split("think", "Just an answer, no trace.") == (None, "Just an answer, no trace.")
    assert split("none", "<think>x</think>y") == (None, "<think>x</think>y")


def test_cut_off_while_thinking_gives_an_empty_answer():
    assert split("think", "<think>still thinking when max_tokens hit") == (
        "still thinking when max_tokens hit",
        "",
    )
    assert split("think-open", "still thinking") == ("still thinking", "")


def test_answer_keeps_its_own_trailing_text_exactly():
    # only the whitespace right after the tag goes; the answer's end is the model's
    assert split("think", "<think>t</think>\n\nEnd with P.S. hi \n")[1] == "End with P.S. hi \n"


def test_harmony_with_and_without_special_tokens():
    raw = (
        "<|channel|>analysis<|message|>Think here.<|end|><|start|>assistant"
        "<|channel|>final<|message|>Answer here.<|return|>"
    )
    assert split("harmony", raw) == ("Think here.", "Answer here.")
    assert split("harmony", "analysisThink here.assistantfinalAnswer here.") == (
        "Think here.",
        "Answer here.",
    )
    assert split("harmony", "analysisstill thinking") == ("still thinking", "")
    assert split("harmony", "plain answer about an assistantfinal thing") == (
        None,
        "plain answer about an assistantfinal thing",
    )


def test_other_families():
    assert split("seed-think", "<seed:think>r</seed:think>a") == ("r", "a")
    assert split("granite", "Here is my thought process: r Here is my response: a") == ("r", "a")


@pytest.mark.parametrize(
    "model, parser",
    [
        ("Qwen/Qwen3-8B", "think"),
        ("QwQ-32B", "think"),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "think-open"),
        ("openai/gpt-oss-20b", "harmony"),
        ("SmolLM2-135M-Instruct llama", "think"),
        ("ByteDance-Seed/Seed-OSS-36B", "seed-think"),
    ],
)
def test_family_registry(model, parser):
    assert for_model(model).name == parser


def test_explicit_choice_and_unknown_name():
    assert for_model("Qwen3-8B", "none").name == "none"
    with pytest.raises(IfharnessError, match="unknown reasoning parser 'nope'"):
        for_model("x", "nope")


def test_parsers_pickle_for_replicas():
    for name in reasoning.names():
        p = get(name)
        assert pickle.loads(pickle.dumps(p)).split("<think>a</think>b") == p.split(
            "<think>a</think>b"
        )


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError):
        reasoning.register(reasoning.TagParser("think"))
