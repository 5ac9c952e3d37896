"""Task loading: bundled YAML, local JSONL, and the Hugging Face path through `datasets`."""

from __future__ import annotations

import json

import pytest
import yaml

import ifharness
from ifharness.errors import DataError

ROWS = [
    {
        "key": 1,
        "prompt": "Say hi.",
        "instruction_id_list": ["punctuation:no_comma"],
        "kwargs": [{}],
    },
    {
        "key": 2,
        "prompt": "Count.",
        "instruction_id_list": ["length_constraints:number_words", "keywords:frequency"],
        "kwargs": [
            {"num_words": 5.0, "relation": "less than"},
            {"keyword": "a", "frequency": 2, "relation": "at least"},
        ],
    },
]


def padded(row):
    """A row as the hub serves IFEval: every kwargs dict carries every key, unused ones null."""
    keys = {k for kw in row["kwargs"] for k in kw} | {"num_highlights", "language"}
    return dict(row, kwargs=[{k: kw.get(k) for k in sorted(keys)} for kw in row["kwargs"]])


def test_hf_source_is_read_through_datasets(tmp_path):
    pytest.importorskip("datasets")
    ds_dir = tmp_path / "ds"
    ds_dir.mkdir()
    (ds_dir / "train.jsonl").write_text("".join(json.dumps(padded(r)) + "\n" for r in ROWS))
    spec = yaml.safe_load(
        (ifharness.loader.resources.files("ifharness.tasks") / "ifeval.yaml").read_text()
    )
    spec["source"]["hf"] = {"path": str(ds_dir), "revision": "main", "split": "train"}
    task_file = tmp_path / "mine.yaml"
    task_file.write_text(yaml.safe_dump(spec))

    from_hf = ifharness.load_task(str(task_file))
    local = tmp_path / "local.jsonl"
    local.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    from_file = ifharness.load_task("ifeval", data=local)

    assert from_hf.data_origin == f"hf:{ds_dir}@main"
    assert [s.key for s in from_hf.samples] == [1, 2]
    assert from_hf.samples[1].instructions[0].kwargs == {"num_words": 5, "relation": "less than"}
    # Null padding and float ints do not change what is scored, nor the dataset hash.
    assert from_hf.data_hash == from_file.data_hash


def test_hf_errors_say_to_use_data(tmp_path):
    pytest.importorskip("datasets")
    spec = yaml.safe_load(
        (ifharness.loader.resources.files("ifharness.tasks") / "ifeval.yaml").read_text()
    )
    spec["source"]["hf"]["path"] = str(tmp_path / "nothing-here")
    task_file = tmp_path / "t.yaml"
    task_file.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="--data FILE"):
        ifharness.load_task(str(task_file))


def test_duplicate_keys_and_empty_files(tmp_path):
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps(r) + "\n" for r in [ROWS[0], ROWS[0]]))
    with pytest.raises(
        DataError, match=r"dup.jsonl:2 \(key 1\): duplicate key \(first at line 1\)"
    ):
        ifharness.load_task("ifeval", data=dup)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="holds no samples"):
        ifharness.load_task("ifeval", data=empty)


def test_bad_task_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsuite: ifeval\nsource: {}\nunknown_field: 1\n")
    with pytest.raises(DataError, match="not a valid task definition"):
        ifharness.load_task(str(bad))


def test_task_without_data_says_to_pass_data():
    """ifevalg ships no data (its sets live elsewhere): the error says what to pass."""
    with pytest.raises(DataError, match=r"task ifevalg ships no data .*--data FILE"):
        ifharness.load_task("ifevalg")
