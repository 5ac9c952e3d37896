"""The bundled default task (`tasks/default.yaml` + `tasks/default.jsonl`).

It is what `ifharness run` scores when no task is given, so it must load cleanly, cover every
IFEval constraint, and never ask for something its prompt does not say: a model is scored on
kwargs it can only learn from the prompt text. Each instruction's prompt must therefore
mention what its kwargs encode (the number, the word, the phrase, the language).
"""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources

import pytest

import ifharness
from ifharness.verifiers import load_all

NUMBER_WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
}
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
RELATION_WORDS = {
    "less than": r"(?:less than|fewer than|under|below)",
    "at least": r"at least",
}
LANGUAGE_NAMES = {
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
    "hi": "Hindi",
    "ja": "Japanese",
    "ko": "Korean",
    "zh-cn": "Chinese",
    "ar": "Arabic",
}


@pytest.fixture(scope="module")
def task():
    return ifharness.load_task("default")


def _number(n: int) -> str:
    """A pattern for n written as digits or, for small n, as a word."""
    word = NUMBER_WORDS.get(n)
    return rf"(?:\b{n}\b|\b{word}\b)" if word else rf"\b{n}\b"


def _has(prompt: str, pattern: str) -> bool:
    return re.search(pattern, prompt, flags=re.IGNORECASE) is not None


def _says_count(prompt: str, relation: str, n: int, noun: str = "") -> bool:
    """The prompt states the relation and the number together, and names the counted thing."""
    return _has(prompt, RELATION_WORDS[relation] + r"\s+" + _number(n)) and (
        not noun or _has(prompt, noun)
    )


def _mentions(prompt: str, cid: str, kw: dict) -> bool:  # noqa: C901 - one branch per id
    """Whether ``prompt`` states instruction ``cid`` with the given (bound) kwargs."""
    p = prompt
    if cid == "keywords:existence":
        return all(_has(p, re.escape(k)) for k in kw["keywords"])
    if cid == "keywords:frequency":
        return _has(p, re.escape(kw["keyword"])) and _says_count(p, kw["relation"], kw["frequency"])
    if cid == "keywords:forbidden_words":
        return all(_has(p, rf"\b{re.escape(w)}\b") for w in kw["forbidden_words"])
    if cid == "keywords:letter_frequency":
        return _has(p, rf"letter\s+['\"]?{re.escape(kw['letter'])}\b") and _says_count(
            p, kw["let_relation"], kw["let_frequency"]
        )
    if cid == "language:response_language":
        return LANGUAGE_NAMES[kw["language"]] in p
    if cid == "length_constraints:number_sentences":
        return _says_count(p, kw["relation"], kw["num_sentences"], "sentence")
    if cid == "length_constraints:number_words":
        return _says_count(p, kw["relation"], kw["num_words"], "word")
    if cid == "length_constraints:number_paragraphs":
        return _has(p, _number(kw["num_paragraphs"]) + r"\s+paragraphs?") and "***" in p
    if cid == "length_constraints:nth_paragraph_first_word":
        return (
            _has(p, _number(kw["num_paragraphs"]) + r"\s+paragraphs?")
            and _has(p, rf"\b{ORDINALS[kw['nth_paragraph']]} paragraph")
            and _has(p, rf"\bword\s+{re.escape(kw['first_word'])}\b")
            and _has(p, "two new lines")
        )
    if cid == "detectable_content:number_placeholders":
        return _says_count(p, "at least", kw["num_placeholders"], "placeholder") and _has(
            p, r"square brackets"
        )
    if cid == "detectable_content:postscript":
        return _has(p, "postscript") and kw["postscript_marker"] in p
    if cid == "detectable_format:number_bullet_lists":
        return _has(p, rf"exactly\s+{_number(kw['num_bullets'])}\s+markdown bullet points?")
    if cid == "detectable_format:constrained_response":
        return all(o in p for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))
    if cid == "detectable_format:number_highlighted_sections":
        return _has(p, "highlight") and _says_count(p, "at least", kw["num_highlights"])
    if cid == "detectable_format:multiple_sections":
        return kw["section_spliter"] in p and _has(p, _number(kw["num_sections"]))
    if cid == "detectable_format:json_format":
        return "JSON" in p
    if cid == "detectable_format:title":
        return _has(p, r"title") and re.search(r"<<[^\n>]+>>", p) is not None
    if cid == "combination:two_responses":
        return "******" in p and _has(p, r"\btwo\b")
    if cid == "combination:repeat_prompt":
        return kw["prompt_to_repeat"] in p and _has(p, r"\brepeat") and _has(p, "word for word")
    if cid == "startend:end_checker":
        return _has(p, r"exact phrase") and f'"{kw["end_phrase"]}"' in p
    if cid == "startend:quotation":
        return _has(p, r"double quotation marks")
    if cid == "change_case:capital_word_frequency":
        return _says_count(p, kw["capital_relation"], kw["capital_frequency"]) and _has(
            p, "capital letters"
        )
    if cid == "change_case:english_capital":
        return _has(p, r"\bEnglish\b") and _has(p, "capital letters")
    if cid == "change_case:english_lowercase":
        return _has(p, "lowercase")
    if cid == "punctuation:no_comma":
        return _has(p, r"\bcommas\b")
    raise AssertionError(f"no mention rule for {cid}; add one to this test")


def test_default_task_loads_with_enough_samples(task):
    assert task.name == "default"
    assert task.spec.suite == "ifeval"
    assert task.spec.generation.max_tokens == 512
    assert task.spec.generation.temperature == 0.0
    assert task.spec.metric == "prompt_level_strict_acc"
    assert len(task.samples) >= 100


def test_keys_are_unique_and_in_order(task):
    keys = [s.key for s in task.samples]
    assert len(set(keys)) == len(keys)
    assert keys == [f"default-{i:03d}" for i in range(1, len(keys) + 1)]


def test_every_ifeval_constraint_is_covered(task):
    ifeval_ids = {cid for cid, c in load_all().items() if c.suite == "ifeval"}
    assert len(ifeval_ids) == 25
    counts = Counter(i.id for s in task.samples for i in s.instructions)
    assert set(counts) <= ifeval_ids
    thin = {cid: counts.get(cid, 0) for cid in ifeval_ids if counts.get(cid, 0) < 3}
    assert not thin, f"constraints in fewer than 3 prompts: {thin}"


def test_each_prompt_carries_one_to_three_instructions(task):
    for s in task.samples:
        assert 1 <= len(s.instructions) <= 3, s.key
        assert len(s.messages) == 1 and s.messages[0].role == "user"


@pytest.mark.parametrize("index", range(len(ifharness.load_task("default").samples)))
def test_prompt_states_each_instruction(task, index):
    sample = task.samples[index]
    for instruction in sample.instructions:
        assert _mentions(sample.prompt, instruction.id, instruction.kwargs), (
            f"{sample.key}: the prompt does not state {instruction.id} {instruction.kwargs}"
        )


def test_data_file_ships_as_package_data():
    root = resources.files("ifharness.tasks")
    assert (root / "default.yaml").is_file()
    assert (root / "default.jsonl").is_file()
