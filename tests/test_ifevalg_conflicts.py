"""The IFEvalG conflict table (shared/specs/ifevalg.md §6): raw as shipped, and symmetrised."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from ifharness.verifiers import load_all
from ifharness.verifiers.ifevalg.conflicts import (
    conflicting_pairs,
    conflicts,
    raw_table,
    symmetric_table,
)

EVERYTHING = (
    "detectable_format:constrained_response",
    "copy:copy",
    "new:copy_span_idx",
    "copy:copying_simple",
    "copy:copying_multiple",
)


def test_one_entry_per_ifevalg_id_and_each_lists_itself():
    raw = raw_table()
    ids = {c.id for c in load_all() if c.suite == "ifevalg"}
    assert len(raw) == 54 and set(raw) == ids
    assert all(cid in listed for cid, listed in raw.items())
    assert all(set(listed) <= ids for listed in raw.values())


def test_json_file_is_the_raw_table_in_registry_order():
    text = (resources.files("ifharness.verifiers.ifevalg") / "conflicts.json").read_text()
    data = json.loads(text)
    assert list(data)[:3] == [
        "keywords:existence",
        "keywords:frequency",
        "keywords:forbidden_words",
    ]
    assert list(data)[25] == "copy:repeat_phrase" and list(data)[-1] == "keywords:start_end"
    assert {k: frozenset(v) for k, v in data.items()} == dict(raw_table())


def test_pair_counts():
    raw = raw_table()
    one_way = sum(1 for a, listed in raw.items() for b in listed if a != b and a not in raw[b])
    assert one_way == 376
    assert len(conflicting_pairs()) == 408


def test_all_and_all_but_sets():
    raw = raw_table()
    every = set(raw)
    for cid in EVERYTHING:
        assert raw[cid] == every, cid
    assert every - raw["detectable_format:json_format"] == {
        "keywords:existence",
        "keywords:forbidden_words",
    }
    assert every - raw["combination:two_responses"] == {
        "keywords:forbidden_words",
        "keywords:existence",
        "language:response_language",
        "detectable_format:title",
        "punctuation:no_comma",
    }
    assert every - raw["combination:repeat_prompt"] == {
        "keywords:existence",
        "detectable_format:title",
        "punctuation:no_comma",
    }


@pytest.mark.parametrize(
    ("cid", "others"),
    [
        (
            "language:response_language",
            {
                "change_case:english_capital",
                "change_case:english_lowercase",
                "detectable_format:multiple_sections",
                "keywords:existence",
                "keywords:forbidden_words",
                "keywords:frequency",
                "startend:end_checker",
            },
        ),
        (
            "length_constraints:number_paragraphs",
            {"length_constraints:nth_paragraph_first_word", "length_constraints:number_sentences"},
        ),
        ("length_constraints:nth_paragraph_first_word", {"length_constraints:number_paragraphs"}),
        (
            "detectable_format:multiple_sections",
            {"detectable_format:number_highlighted_sections", "language:response_language"},
        ),
        (
            "change_case:capital_word_frequency",
            {"change_case:english_capital", "change_case:english_lowercase"},
        ),
        ("change_case:english_lowercase", {"change_case:english_capital"}),
        ("startend:quotation", {"detectable_format:title"}),
        ("paragraphs:paragraphs", {"paragraphs:paragraphs2"}),
        ("paragraphs:paragraphs2", {"paragraphs:paragraphs"}),
        ("first_word:first_word_sent", {"first_word:first_word_answer"}),
        ("first_word:first_word_answer", {"first_word:first_word_sent"}),
        (
            "count:counting_composition",
            {
                "count:count_increment_word",
                "count:count_unique",
                "paragraphs:paragraphs",
                "paragraphs:paragraphs2",
                "keywords:letter_frequency",
                "keywords:frequency",
            },
        ),
        ("keywords:palindrome", set()),
        ("punctuation:no_comma", set()),
        ("copy:repeat_phrase", set()),
    ],
)
def test_explicit_sets(cid: str, others: set[str]):
    assert raw_table()[cid] == others | {cid}


def test_symmetrised_form():
    sym = symmetric_table()
    assert all(a in sym[b] for a, listed in sym.items() for b in listed)
    assert all(cid in listed for cid, listed in sym.items())
    assert all(raw <= sym[cid] for cid, raw in raw_table().items())
    # One-way in the raw table, both ways after symmetrising:
    assert "keywords:existence" not in raw_table()["startend:end_checker"]
    assert conflicts("startend:end_checker", "language:response_language")
    assert conflicts("keywords:palindrome", "copy:copy") and conflicts(
        "copy:copy", "keywords:palindrome"
    )
    # Title goes with two_responses and repeat_prompt, but not with json_format.
    assert not conflicts("detectable_format:title", "combination:two_responses")
    assert conflicts("detectable_format:title", "detectable_format:json_format")
    assert not conflicts("punctuation:no_comma", "keywords:palindrome")
    assert conflicts("keywords:palindrome", "keywords:palindrome")


def test_unknown_id_is_named():
    with pytest.raises(KeyError, match="not an IFEvalG id"):
        conflicts("punctuation:no_comma", "count:pronouns")


def test_generator_map_adds_the_pairs_the_reference_table_misses():
    """conflicts_extra.json is merged by conflict_map (what the generator reads); the
    reference table itself stays as published."""
    from ifharness.verifiers.conflicts import conflict_map, conflicts, raw_conflicts

    a, b = "detectable_format:square_brackets", "keywords:palindrome"
    raw = raw_conflicts("ifevalg")
    assert b not in raw[a] and a not in raw[b]
    assert conflicts("ifevalg", a, b) and conflicts("ifevalg", b, a)
    table = conflict_map("ifevalg")
    assert all(x in table[y] for x, ys in table.items() for y in ys)  # still symmetric
