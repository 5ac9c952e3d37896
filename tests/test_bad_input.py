"""Bad input gets one clear message naming the file and line or the sample key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ifharness.cli import main
from tests.support.data import write_jsonl

PROMPTS = [
    {
        "key": 1,
        "prompt": "Say hi without commas.",
        "instruction_id_list": ["punctuation:no_comma"],
        "kwargs": [{}],
    },
    {
        "key": 2,
        "prompt": "Write 3+ words.",
        "instruction_id_list": ["length_constraints:number_words"],
        "kwargs": [{"num_words": 3, "relation": "at least"}],
    },
    {
        "key": 3,
        "prompt": "Shout.",
        "instruction_id_list": ["change_case:english_capital", "punctuation:no_comma"],
        "kwargs": [{}, {}],
    },
]


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["score", "--task", "ifeval", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_malformed_response_line_names_file_and_line(tmp_path, data, capsys):
    resp = write_jsonl(
        tmp_path / "r.jsonl", [{"key": 1, "response": "hi"}, '{"key": 2, "response": "oops"']
    )
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2
    assert f"{resp}:2: not valid JSON" in err
    assert not (tmp_path / "o").exists()


def test_response_not_utf8(tmp_path, data, capsys):
    resp = tmp_path / "r.jsonl"
    resp.write_bytes(b'{"key": 1, "response": "ok"}\n{"key": 2, "response": "caf\xe9"}\n')
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2 and f"{resp}:2: not UTF-8" in err and "re-encode" in err


def test_response_field_of_wrong_type(tmp_path, data, capsys):
    resp = write_jsonl(tmp_path / "r.jsonl", [{"key": 1, "response": None}])
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2 and f"{resp}:1: field 'response' must be a string, got a NoneType" in err


def test_unknown_constraint_id_named_with_line_and_key(tmp_path, capsys):
    bad = dict(PROMPTS[0], key=7, instruction_id_list=["punctuation:no_commas"])
    data = write_jsonl(tmp_path / "p.jsonl", [PROMPTS[1], bad])
    resp = write_jsonl(tmp_path / "r.jsonl", [{"key": 7, "response": "x"}])
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2
    assert f"{data}:2 (key 7): instruction 0: unknown constraint id 'punctuation:no_commas'" in err
    assert "Did you mean 'punctuation:no_comma'" in err


def test_kwarg_of_wrong_type_named(tmp_path, capsys):
    bad = dict(PROMPTS[1], kwargs=[{"num_words": "three", "relation": "at least"}])
    data = write_jsonl(tmp_path / "p.jsonl", [bad, dict(PROMPTS[0], key=9, kwargs=[{"x": 1}])])
    resp = write_jsonl(tmp_path / "r.jsonl", [{"key": 2, "response": "x"}])
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2
    assert "2 invalid sample(s)" in err  # every problem reported at once
    assert f"{data}:1 (key 2): instruction 0: length_constraints:number_words: num_words:" in err
    assert (
        f"{data}:2 (key 9): instruction 0: punctuation:no_comma: x: Extra inputs are not permitted"
        in err
    )


def test_malformed_data_line(tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", [PROMPTS[0], "not json"])
    resp = write_jsonl(tmp_path / "r.jsonl", [{"key": 1, "response": "x"}])
    code, _, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 2 and f"{data}:2: not valid JSON" in err


def test_missing_empty_and_huge_answers_are_scored(tmp_path, data, capsys):
    huge = "THE WEATHER IS FINE TODAY " * 40_000  # 1 MB of English capitals
    resp = write_jsonl(
        tmp_path / "r.jsonl", [{"key": 1, "response": ""}, {"prompt": "Shout.", "response": huge}]
    )
    code, out, err = run(capsys, "--data", data, "--responses", resp, "--out", tmp_path / "o")
    assert code == 0
    assert "1 prompt(s) have no answer" in err and "keys 2" in err
    rows = [
        json.loads(line) for line in (tmp_path / "o" / "verdicts.jsonl").read_text().splitlines()
    ]
    assert rows[0] == {
        "key": 1,
        "instruction_id_list": ["punctuation:no_comma"],
        "strict": [False],
        "loose": [False],
    }
    assert rows[1]["missing"] is True and rows[1]["strict"] == [False]
    assert rows[2]["strict"] == [True, True]
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["missing"] == [2] and metrics["prompt_level_strict_acc"] == pytest.approx(1 / 3)
    assert "prompt_level_strict_acc" in out


def test_unknown_task_and_missing_files(tmp_path, data, capsys):
    code = main(["score", "--task", "nope", "--responses", str(data), "--out", str(tmp_path)])
    assert code == 2 and "unknown task 'nope'" in capsys.readouterr().err
    code, _, err = run(
        capsys, "--data", data, "--responses", tmp_path / "absent.jsonl", "--out", tmp_path / "o"
    )
    assert code == 2 and "response file not found" in err


def test_verify_command(capsys):
    assert main(["verify", "punctuation:no_comma", "no commas"]) == 0
    assert json.loads(capsys.readouterr().out)["strict"] is True
    assert (
        main(
            [
                "verify",
                "length_constraints:number_words",
                "--kwargs",
                '{"num_words": "x", "relation": "at least"}',
                "hi",
            ]
        )
        == 2
    )
    assert "num_words" in capsys.readouterr().err


def test_constraints_command_lists_all(capsys):
    assert main(["constraints", "--suite", "ifeval"]) == 0
    out = capsys.readouterr().out
    assert "25 constraints" in out and "keywords:letter_frequency" in out
