"""``ifharness.reward``: the constraints forms, their errors, and reward == ``ifharness score``."""

from __future__ import annotations

import json

import pytest

from ifharness.reward import (
    ConstraintsError,
    ConstraintVerdict,
    RewardResult,
    parse_constraints,
    reward,
    reward_batch,
)
from ifharness.verifiers import Text, constraint, unregister_suite
from tests.support.data import read_jsonl, shared

WORDS = {"relation": "at least", "num_words": 3}
EXPECTED = [("punctuation:no_comma", {}), ("length_constraints:number_words", WORDS)]
LABEL = {
    "instruction_id": ["punctuation:no_comma", "length_constraints:number_words"],
    "kwargs": [{}, WORDS],
}


@pytest.mark.parametrize(
    "form",
    [
        [
            {"id": "punctuation:no_comma", "kwargs": {}},
            {"id": "length_constraints:number_words", "kwargs": WORDS},
        ],
        [{"id": "punctuation:no_comma"}, ("length_constraints:number_words", WORDS)],
        LABEL,
        {"instruction_id_list": LABEL["instruction_id"], "kwargs": LABEL["kwargs"]},
        str([LABEL]),
        str([json.dumps(LABEL)]),
        json.dumps(LABEL),
        json.dumps([LABEL]),
        json.dumps(
            [
                {"id": "punctuation:no_comma", "kwargs": {}},
                {"id": "length_constraints:number_words", "kwargs": WORDS},
            ]
        ),
        # HF's padded union schema: None values are dropped
        {
            "instruction_id": LABEL["instruction_id"],
            "kwargs": [{"num_words": None}, {**WORDS, "keyword": None}],
        },
    ],
)
def test_every_form_parses_the_same(form):
    assert parse_constraints(form) == EXPECTED
    assert reward("one two three", form).score == 1.0
    assert reward("one, two three", form).score == 0.5


def test_first_label_of_a_list_is_used():
    other = {"instruction_id": ["punctuation:no_comma"], "kwargs": [{}]}
    assert parse_constraints(str([LABEL, other])) == EXPECTED


def test_binding_draws_like_the_loader():
    # keywords:letter_frequency with a symbol letter draws from Random(0), in order
    label = {
        "instruction_id": ["keywords:letter_frequency", "keywords:letter_frequency"],
        "kwargs": [{"letter": "#", "let_frequency": 1, "let_relation": "at least"}] * 2,
    }
    first, second = parse_constraints(label)
    assert first[1]["letter"] != second[1]["letter"]
    assert parse_constraints(label) == [first, second]  # cached, and copies


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ("", "empty"),
        ("[{'instruction_id': ", "neither JSON nor a Python literal"),
        ("__import__('os').system('true')", "neither JSON nor a Python literal"),
        ([], "empty"),
        (42, "must be a list, a dict or a string"),
        ({"ids": []}, "needs 'instruction_id'"),
        ({"instruction_id": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "one object per"),
        ({"instruction_id": "punctuation:no_comma", "kwargs": ["x"]}, "kwargs must be an object"),
        ([{"id": "punctuation:no_comma", "kwarg": {}}], "unexpected keys ['kwarg']"),
        ([{"name": "x"}], "constraint 0 must be"),
        ([{"id": "punctuation:no_coma"}], "Did you mean 'punctuation:no_comma'"),
        ([{"id": "length_constraints:number_words", "kwargs": {"num_words": "many"}}], "num_words"),
        (
            [{"id": "length_constraints:number_words", "kwargs": {"relation": "at least"}}],
            "num_words",
        ),
    ],
)
def test_bad_constraints_name_the_problem(form, message):
    with pytest.raises(ConstraintsError, match=None) as info:
        parse_constraints(form)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_ambiguous_id_asks_for_a_suite():
    @constraint("punctuation:no_comma", instruction="x", suite="reward-test-dup")
    def other(t: Text) -> bool:
        return True

    try:
        with pytest.raises(ConstraintsError, match="suite="):
            parse_constraints([{"id": "punctuation:no_comma"}], suite=None)
        assert reward("a, b", [{"id": "punctuation:no_comma"}], suite="reward-test-dup").score == 1
        assert reward("a, b", [{"id": "punctuation:no_comma"}], suite="ifeval").score == 0
    finally:
        unregister_suite("reward-test-dup")


def test_result_fields_and_dict():
    r = reward("one, two three", LABEL, reduce="all")
    assert r.score == 0.0 and not r.followed_all
    assert r.verdicts == (
        ConstraintVerdict("punctuation:no_comma", False),
        ConstraintVerdict("length_constraints:number_words", True),
    )
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["verdicts"][0] == {"id": "punctuation:no_comma", "followed": False, "reason": None}
    assert reward("one two three", LABEL, reduce="all").followed_all


def test_reasoning_is_removed_and_unterminated_is_empty():
    label = [{"id": "punctuation:no_comma"}]
    assert reward("<think>a, b</think>no commas", label).score == 1.0
    assert reward("<think>a, b</think>no commas", label, reasoning="none").score == 0.0
    cut = reward("<think>still thinking, no end", label)
    assert cut.score == 0.0 and cut.empty_answer and cut.unterminated_reasoning
    assert cut.verdicts == (ConstraintVerdict("punctuation:no_comma", False),)
    blank = reward("<think>done</think>  \n", label)
    assert blank.empty_answer and not blank.unterminated_reasoning and blank.score == 0.0
    batch = reward_batch(["<think>x", "<think>x</think>ok", "<think>y"], label, workers=0)
    assert sum(r.unterminated_reasoning for r in batch) == 2


def test_unscorable_counts_as_not_followed():
    @constraint("test:boom", instruction="x", suite="reward-test-boom")
    def boom(t: Text) -> bool:
        raise RuntimeError("no resource")

    try:
        label = [{"id": "test:boom"}, {"id": "punctuation:no_comma"}]
        r = reward("fine", label, suite=None)
        assert r.score == 0.5
        assert r.verdicts[0] == ConstraintVerdict("test:boom", None, "RuntimeError: no resource")
        assert not r.over_budget
    finally:
        unregister_suite("reward-test-boom")


def test_max_chars():
    label = [{"id": "punctuation:no_comma"}]
    r = reward("x" * 101, label, max_chars=100)
    assert r.over_budget and r.score == 0.0
    assert r.budget_reason == "answer has 101 chars, max_chars is 100"
    assert r.verdicts[0].followed is None and r.verdicts[0].reason == r.budget_reason
    assert reward("x" * 101, label, max_chars=100, over_budget_score=-1.0).score == -1.0
    assert reward("<think>" + "y" * 500 + "</think>ok", label, max_chars=100).score == 1.0
    assert reward("x" * 101, label, max_chars=None).score == 1.0


def test_bad_options():
    with pytest.raises(ValueError, match="mode"):
        reward("x", LABEL, mode="lenient")
    with pytest.raises(ValueError, match="reduce"):
        reward("x", LABEL, reduce="mean")
    with pytest.raises(Exception, match="reasoning parser"):
        reward("x", LABEL, reasoning="nope")
    with pytest.raises(ConstraintsError, match="2 responses but 3"):
        reward_batch(["a", "b"], [str([LABEL])] * 3, workers=0)


def _fraction(verdicts) -> float:
    return sum(v is True for v in verdicts) / len(verdicts)


@pytest.fixture(scope="module")
def gpt4_labels(gpt4_path):
    rows = {r["key"]: r for r in read_jsonl(shared("ifeval/input_data.jsonl"))}
    answers = read_jsonl(gpt4_path)
    labels = [
        str(
            [
                {
                    "instruction_id": rows[a["key"]]["instruction_id_list"],
                    "kwargs": rows[a["key"]]["kwargs"],
                }
            ]
        )
        for a in answers
    ]
    return answers, labels


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_reward_equals_ifharness_score(mode, gpt4_labels, gpt4_result):
    answers, labels = gpt4_labels
    by_key = {v["key"]: v for v in gpt4_result.verdicts}
    texts = [a["response"] for a in answers]
    fraction = reward_batch(texts, labels, mode=mode, workers=0, max_chars=None)
    prompt = reward_batch(texts, labels, mode=mode, reduce="all", workers=0, max_chars=None)
    assert len(fraction) == 540
    for a, f, p in zip(answers, fraction, prompt):
        row = by_key[a["key"]]
        assert "unscorable" not in row
        assert [v.followed for v in f.verdicts] == row[mode], a["key"]
        assert [v.id for v in f.verdicts] == row["instruction_id_list"]
        assert f.score == _fraction(row[mode])
        assert p.score == (1.0 if all(row[mode]) else 0.0)
        assert p.followed_all == all(row[mode])
        assert isinstance(f, RewardResult)
    # one by one, through reward(), on a sample
    for a, label in list(zip(answers, labels))[::25]:
        assert reward(a["response"], label, mode=mode).score == _fraction(by_key[a["key"]][mode])
