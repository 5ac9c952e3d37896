"""The IFEval verifiers on the quirks the reference has (shared/specs/ifeval.md §2)."""

from __future__ import annotations

import random

import pytest

from ifharness.scoring import judge
from ifharness.verifiers import REFERENCE, KwargsError, check, get, get_profile, load_all

LT, GE = "less than", "at least"

CASES = [
    # keywords
    ("keywords:existence", {"keywords": ["art"]}, "Let us start.", True),  # no word boundary
    ("keywords:existence", {"keywords": ["art", "zebra"]}, "Art only", False),
    (
        "keywords:frequency",
        {"keyword": "war", "frequency": 2, "relation": GE},
        "War and software",
        True,
    ),
    (
        "keywords:frequency",
        {"keyword": "war", "frequency": 2, "relation": LT},
        "War and software",
        False,
    ),
    ("keywords:forbidden_words", {"forbidden_words": ["check"]}, "I checked it twice", True),
    ("keywords:forbidden_words", {"forbidden_words": ["check"]}, "Check!", False),
    (
        "keywords:letter_frequency",
        {"letter": "A", "let_frequency": 3, "let_relation": GE},
        "a banana",
        True,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 1, "let_relation": LT},
        "no zed",
        False,
    ),
    # language
    (
        "language:response_language",
        {"language": "de"},
        "Das ist ein kleiner deutscher Satz über das Wetter.",
        True,
    ),
    (
        "language:response_language",
        {"language": "de"},
        "This is an English sentence about the weather.",
        False,
    ),
    ("language:response_language", {"language": "de"}, "12345 !!!", True),  # no features: followed
    # length
    (
        "length_constraints:number_words",
        {"num_words": 3, "relation": LT},
        "don't stop",
        False,
    ),  # 3 words
    (
        "length_constraints:number_words",
        {"num_words": 3, "relation": LT},
        "self-expression",
        True,
    ),  # 2
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": LT},
        "Dr. Smith came home. He slept.",
        False,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": LT},
        "* one\n* two\n* three",
        True,
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\nb", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "***\na\n***\nb\n***", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a ****** b", False),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Hello"},
        "x\n\nhello, there",
        True,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "hello"},
        "x\n\n\n\nhello",
        False,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "hello"},
        "x\n\nHello: there",
        False,
    ),
    # content
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[a] and [](link)", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 1}, "[a\nb]", False),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Hi. P.S. mid sentence, then more",
        True,
    ),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi\nP.S no dot", False),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi\nP. P. S here", True),
    # format
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n- b\n**bold**\n1. c", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "---", True),
    ("detectable_format:constrained_response", {}, "Well. My answer is yes. Really", True),
    ("detectable_format:constrained_response", {}, "my answer is yes.", False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* **b**", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "** **", False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1 a Section 2 b Section 3",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 1},
        "Section One",
        False,
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', True),
    ("detectable_format:json_format", {}, "NaN", True),
    ("detectable_format:json_format", {}, "```jsonc\n{}\n```", False),
    ("detectable_format:title", {}, "x <<a>> y <<b>>", True),
    ("detectable_format:title", {}, "<< >>", False),
    # combination
    ("combination:two_responses", {}, "one\n******\ntwo", True),
    ("combination:two_responses", {}, "same\n******\nsame", False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "  say HI. then more", True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "Request: Say hi.", False),
    # startend
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"...any other questions?"',
        True,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        "Any other questions?**",
        False,
    ),
    ("startend:quotation", {}, '  "quoted"  ', True),
    ("startend:quotation", {}, "\u201ccurly\u201d", False),
    # case
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 3, "capital_relation": GE},
        "NASA's U.S. OK",
        True,
    ),
    ("change_case:english_capital", {}, "THIS IS ALL CAPS ENGLISH TEXT ABOUT THE WEATHER", True),
    ("change_case:english_capital", {}, "THIS IS ALMOST ALL CAPS pH", False),
    (
        "change_case:english_lowercase",
        {},
        "this is all lowercase english text about the weather",
        True,
    ),
    ("change_case:english_lowercase", {}, "12345", False),
    # punctuation
    ("punctuation:no_comma", {}, "full-width\uff0c is not a comma", True),
    ("punctuation:no_comma", {}, "a, b", False),
]


def test_registry_has_the_25_ifeval_ids():
    ids = {c.id for c in load_all().values() if c.suite == "ifeval"}
    assert len(ids) == 25
    assert {cid for cid, *_ in CASES} == ids


@pytest.mark.parametrize("cid,kwargs,text,expected", CASES)
def test_reference_semantics(cid, kwargs, text, expected):
    assert check(cid, text, **kwargs) is expected


def test_blank_answer_follows_nothing():
    for text in ["", "   \n\t "]:
        row = judge([("punctuation:no_comma", {})], text, REFERENCE)
        assert row == {"strict": [False], "loose": [False]}


def test_loose_rescues_markdown_and_first_line():
    end = ("startend:end_checker", {"end_phrase": "bye"})
    row = judge([end], "Sure!\n**Say bye**", REFERENCE)
    assert row == {"strict": [False], "loose": [True]}
    first = (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 1, "nth_paragraph": 1, "first_word": "hello"},
    )
    row = judge([first], "Here you go:\nhello world", REFERENCE)
    assert row == {"strict": [False], "loose": [True]}


def test_letter_symbol_is_drawn_like_the_seeded_reference():
    c = get("keywords:letter_frequency")
    kwargs = {"letter": "#", "let_frequency": 4, "let_relation": GE}
    expected = (
        random.Random(0).choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ").lower()
    )
    assert c.bind(kwargs)["letter"] == expected
    assert c.bind(kwargs, profile=get_profile("ifeval-fixes-v1"))["letter"] == "#"
    assert check("keywords:letter_frequency", "#a #b #c #d", **kwargs) is False  # counts the draw
    fixed = c.bind(kwargs, profile=get_profile("ifeval-fixes-v1"))
    assert c("#a #b #c #d", **fixed) is True


@pytest.mark.parametrize(
    "cid,kwargs,fragment",
    [
        ("length_constraints:number_words", {"num_words": "many", "relation": LT}, "num_words"),
        ("length_constraints:number_words", {"num_words": 3, "relation": "at most"}, "relation"),
        ("keywords:existence", {"keywords": ["a"], "extra": 1}, "extra"),
        ("combination:repeat_prompt", {"prompt_to_repeat": ""}, "prompt_to_repeat"),
        ("detectable_format:title", {"num": 1}, "num"),
        ("length_constraints:number_sentences", {"relation": LT}, "num_sentences"),
    ],
)
def test_malformed_kwargs_are_rejected_with_the_field_named(cid, kwargs, fragment):
    with pytest.raises(KwargsError, match=fragment):
        get(cid).bind(kwargs)


def test_null_padded_and_float_kwargs_are_accepted():
    c = get("length_constraints:number_words")
    assert c.bind({"num_words": 5.0, "relation": LT, "keywords": None}) == {
        "num_words": 5,
        "relation": LT,
    }


def test_verifiers_never_raise_on_odd_answers():
    huge = ("word, " * 200_000)[:1_000_000]
    odd = [
        "",
        " ",
        huge,
        "\x00\x01",
        "日本語のみ",
        "🙂🙂🙂",
        "**unclosed *md [link](",
        "\r\n\r\n",
        "{" * 5000,
    ]
    for c in load_all().values():
        if c.suite != "ifeval":
            continue
        kwargs = {name: _example(name) for name in c.kwargs_model.model_fields}
        bound = c.bind({k: v for k, v in kwargs.items() if v is not None})
        for text in odd:
            row = judge([(c.id, bound)], text, REFERENCE)
            assert row["strict"][0] in (True, False), (c.id, text[:20], row)


def test_every_instruction_and_pseudo_template_renders():
    for c in load_all().values():
        if c.suite != "ifeval":
            continue
        bound = c.bind(
            {k: v for k in c.kwargs_model.model_fields if (v := _example(k)) is not None}
        )
        text, code = c.render(bound), c.render(bound, pseudo=True)
        assert text and code and "{" not in text
    words = get("length_constraints:number_words").render(
        {"num_words": 9, "relation": LT}, pseudo=True
    )
    assert words.endswith("< 9")


def _example(name: str):
    return {
        "keywords": ["x"],
        "forbidden_words": ["x"],
        "keyword": "x",
        "frequency": 1,
        "relation": GE,
        "letter": "a",
        "let_frequency": 1,
        "let_relation": GE,
        "language": "en",
        "num_sentences": 1,
        "num_paragraphs": 1,
        "num_words": 1,
        "nth_paragraph": 1,
        "first_word": "x",
        "num_placeholders": 1,
        "postscript_marker": "P.S.",
        "num_bullets": 1,
        "num_highlights": 1,
        "section_spliter": "Section",
        "num_sections": 1,
        "prompt_to_repeat": "x",
        "end_phrase": "x",
        "capital_frequency": 1,
        "capital_relation": GE,
    }.get(name)
