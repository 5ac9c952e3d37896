"""The ``multiif`` task on a CSV in Multi-IF's schema, and the ``multiif`` profile's counts.

Multi-IF's data is CC BY-NC and never bundled: the three rows here are ours, written in its
release's layout (``multiIF_20241018.csv``: one row per conversation, ``turn_k_prompt`` as
JSON text of a user message, ``turn_k_instruction_id_list`` as JSON text, ``turn_k_kwargs``
as JSON text of a list of JSON strings, a missing turn as ``None``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import ifharness
from ifharness.errors import DataError
from ifharness.loader import load_task
from ifharness.scoring import judge
from ifharness.verifiers import get_profile, require_suite
from ifharness.verifiers.registry import ResourceUnavailable

require_suite("ifeval")  # registers the multiif profile

from ifharness.verifiers.ifeval import multiif_counts  # noqa: E402

COLUMNS = ["key", "turn_index", "language", "turns", "responses"] + [
    f"turn_{k}_{f}" for k in (1, 2, 3) for f in ("prompt", "instruction_id_list", "kwargs")
]


def user(text: str) -> str:
    return json.dumps({"role": "user", "content": text}, ensure_ascii=False)


def kwargs_cell(*objs: dict) -> str:
    """Multi-IF's encoding: a JSON list whose items are JSON strings."""
    return json.dumps([json.dumps(o) for o in objs])


WORDS_5 = {"num_words": 5, "relation": "at least"}
ROWS = [
    {
        "key": "1001:1:en",
        "language": "English",
        "turn_1_prompt": user("Write about rivers."),
        "turn_1_instruction_id_list": json.dumps(["punctuation:no_comma"]),
        "turn_1_kwargs": kwargs_cell({}),
        "turn_2_prompt": user("Add a title."),
        "turn_2_instruction_id_list": json.dumps(
            ["punctuation:no_comma", "detectable_format:title"]
        ),
        "turn_2_kwargs": kwargs_cell({}, {}),
        "turn_3_prompt": user("Now mention the sea."),
        "turn_3_instruction_id_list": json.dumps(
            ["punctuation:no_comma", "detectable_format:title", "keywords:existence"]
        ),
        "turn_3_kwargs": kwargs_cell({}, {}, {"keywords": ["sea"]}),
    },
    {
        "key": "1002:1:zh",
        "language": "Chinese",
        "turn_1_prompt": user("写一段关于猫的话。"),
        "turn_1_instruction_id_list": json.dumps(["length_constraints:number_words"]),
        "turn_1_kwargs": kwargs_cell(WORDS_5),
        "turn_2_prompt": user("再写短一点。"),
        "turn_2_instruction_id_list": json.dumps(
            ["length_constraints:number_words", "length_constraints:number_sentences"]
        ),
        "turn_2_kwargs": kwargs_cell(WORDS_5, {"num_sentences": 2, "relation": "at least"}),
        "turn_3_prompt": "None",
        "turn_3_instruction_id_list": "None",
        "turn_3_kwargs": "None",
    },
    {
        "key": "1003:1:hi",
        "language": "Hindi",
        "turn_1_prompt": user("नदी के बारे में लिखिए।"),
        "turn_1_instruction_id_list": json.dumps(["length_constraints:number_sentences"]),
        "turn_1_kwargs": kwargs_cell({"num_sentences": 3, "relation": "at least"}),
        "turn_2_prompt": "",
        "turn_2_instruction_id_list": "",
        "turn_2_kwargs": "",
        "turn_3_prompt": "",
        "turn_3_instruction_id_list": "",
        "turn_3_kwargs": "",
    },
]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({"turn_index": 0, "turns": "[]", "responses": "[]", **r})
    return path


@pytest.fixture
def csv_path(tmp_path) -> Path:
    return write_csv(tmp_path / "multiIF_fixture.csv", ROWS)


def test_the_csv_loads_as_conversations(csv_path):
    task = load_task("multiif", data=csv_path)
    assert task.spec.turns == "conversation" and task.spec.accumulate == "cumulative"
    assert task.profile.name == "multiif" and task.spec.metric == "if_avg4"
    # missing turns ("None", empty) are skipped: 3 + 2 + 1 samples
    assert [s.uid for s in task.samples] == [
        "1001:1:en turn 1",
        "1001:1:en turn 2",
        "1001:1:en turn 3",
        "1002:1:zh turn 1",
        "1002:1:zh turn 2",
        "1003:1:hi turn 1",
    ]
    third = task.samples[2]
    assert third.messages[0].role == "user" and third.messages[0].content == "Now mention the sea."
    # cumulative data: turn 3's list as given, nothing added twice; kwargs decoded twice
    assert third.instruction_ids == [
        "punctuation:no_comma",
        "detectable_format:title",
        "keywords:existence",
    ]
    assert third.instructions[2].kwargs["keywords"] == ["sea"]
    assert task.samples[4].instructions[1].kwargs["num_sentences"] == 2
    assert task.samples[3].meta["language"] == "Chinese"
    assert task.samples[0].source_line == 2 and task.samples[5].source_line == 4


def test_a_bad_cell_names_line_key_and_turn(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[1] = {**rows[1], "turn_2_kwargs": json.dumps(["{}", "not json"])}
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=r"bad.csv:3 \(key 1002:1:zh\) turn 2: .*not a JSON"):
        load_task("multiif", data=path)


def test_multiif_scores_per_turn_and_language(csv_path):
    task = load_task("multiif", data=csv_path)
    answers = {
        "1001:1:en turn 1": "Rivers run to the sea and carry the rain home",
        "1001:1:en turn 2": "<<Rivers>>\nRivers run far",
        "1001:1:en turn 3": "<<Rivers>>\nRivers, at last, reach the sea",
        "1002:1:zh turn 1": "我喜欢猫。",  # 4 characters: fewer than 5 words
        "1002:1:zh turn 2": "我很喜欢小猫。它们很可爱！",  # 10 words, 2 sentences
        "1003:1:hi turn 1": "नदी बहती है। पानी ठंडा है! क्या तुमने देखा?",
    }
    result = ifharness.score(task, answers)
    per_turn = result.metrics["per_turn"]
    assert per_turn["1"]["prompt_level_strict_acc"] == pytest.approx(2 / 3)
    assert per_turn["2"]["prompt_level_strict_acc"] == 1.0
    assert per_turn["3"]["prompt_level_strict_acc"] == 0.0  # the comma at turn 3
    assert per_turn["3"]["n_prompts"] == 1
    assert per_turn["1"]["per_language"]["Chinese"]["if_avg4"] == 0.0
    assert per_turn["1"]["per_language"]["Hindi"]["if_avg4"] == 1.0


def test_chinese_and_japanese_counts():
    zh = "我喜欢猫。它们很可爱！我们每天都和它们一起玩。😀"
    assert multiif_counts.language(zh).startswith("zh")
    assert multiif_counts.word_count(zh) == 4 + 5 + 11 + 1  # characters, plus the emoji
    assert multiif_counts.sentence_count(zh) == 4  # the emoji run is a sentence of its own
    ja = "私は猫が好きです。とても可愛いです。"
    assert multiif_counts.language(ja) == "ja"
    assert multiif_counts.word_count(ja) == 16 and multiif_counts.sentence_count(ja) == 2


def test_hindi_sentences_split_after_danda():
    text = "नदी बहती है। पानी ठंडा है! क्या तुमने देखा?"
    assert multiif_counts.language(text) == "hi"
    assert multiif_counts.sentence_count(text) == 3


def test_other_languages_count_as_ifeval():
    text = "The cat sat. The dog ran away from it."
    assert multiif_counts.word_count(text) == 9 and multiif_counts.sentence_count(text) == 2


def test_thai_needs_pythainlp(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pythainlp(name, *args, **kwargs):
        if name.startswith("pythainlp"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pythainlp)
    monkeypatch.setattr(multiif_counts, "language", lambda text: "th")
    with pytest.raises(ResourceUnavailable, match="pip install pythainlp"):
        multiif_counts.word_count("แมวนอนหลับ")
    # scored: unscorable with that reason, never an English count
    row = judge(
        [("length_constraints:number_words", {"num_words": 2, "relation": "at least"})],
        "แมวนอนหลับ",
        get_profile("multiif"),
        "ifeval",
    )
    assert row["strict"] == [None] and "pythainlp" in row["unscorable"]["0"]


def test_the_profile_changes_only_the_two_counts():
    """Under the reference profile a Chinese answer is counted as IFEval counts it."""
    bound = [("length_constraints:number_words", {"num_words": 8, "relation": "at least"})]
    zh = "我很喜欢小猫。它们很可爱！"  # IFEval's \\w+: 2 words; Multi-IF: 10
    assert judge(bound, zh, get_profile("reference"), "ifeval")["strict"] == [False]
    assert judge(bound, zh, get_profile("multiif"), "ifeval")["strict"] == [True]


def test_multiif_profile_takes_curly_and_corner_quotes():
    from ifharness.verifiers import Text, get, get_profile

    quotation = get("startend:quotation", "ifeval")
    for text in ('"hi"', "\u201chi\u201d", "\u300chi\u300d"):
        assert quotation(Text(text, get_profile("multiif")))
    assert not quotation(Text("\u201chi\u201d", get_profile("reference")))  # IFEval's rule
    assert not quotation(Text("\u201chi\u300d", get_profile("multiif")))  # not a pair
