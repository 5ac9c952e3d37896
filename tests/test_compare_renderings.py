"""`ifharness compare` pairs two renderings of one generated set sample by sample.

The renderings' prompts differ (so their ``dataset_hash`` and task names do), but their keys
and constraints are the same; the comparison pairs on the ``set_id`` recorded in ``run.json``
and refuses two different sets with both ids in the message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ifharness.cli import main
from ifharness.compare import compare_runs
from ifharness.errors import DataError
from ifharness.generate import GENERATOR_VERSION
from ifharness.generate.io import set_id, write_task
from ifharness.generate.render import render
from ifharness.loader import load_task
from ifharness.rundir import RunFolder, load_run
from ifharness.verifiers.registry import get

N = 30
PLANTED = 10  # the first PLANTED answers of B carry a comma: only A follows no_comma there
BASES = ("Describe a quiet morning in a harbour town.", "Write a note to a new neighbour.")


def _constraints(i: int, keyword: str) -> list[tuple[str, dict[str, Any]]]:
    cons: list[tuple[str, dict[str, Any]]] = [
        ("punctuation:no_comma", {}),
        ("keywords:existence", {"keywords": [keyword]}),
    ]
    if i % 2:
        cons.append(("length_constraints:number_words", {"num_words": 3, "relation": "at least"}))
    return cons


def write_generated(
    out: Path, name: str, rendering: str, n: int = N, level: bool = False, keyword: str = "lantern"
) -> Path:
    """A generated task in the contract's format, written by the generator's own ``write_task``
    (rows worded by ``render``, the set id over the rendering-free content)."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        cons = _constraints(i, keyword)
        row: dict[str, Any] = {
            "key": f"g{i:03d}",
            "base_task": f"base-{i % len(BASES)}",
            "instruction_id_list": [c for c, _ in cons],
            "kwargs": [kw for _, kw in cons],
        }
        if level:
            row["level"] = len(cons)
        rows.append(row)
    sid = set_id(rows)
    for i, row in enumerate(rows):
        cons = _constraints(i, keyword)
        base = BASES[i % len(BASES)]
        row["prompt"] = render(base, [(get(c, "ifeval"), kw) for c, kw in cons], rendering)
        row["rendering"] = rendering
        row["generator"] = {"version": GENERATOR_VERSION, "seed": 0, "set_id": sid}
    spec = {
        "suite": "ifeval",
        "description": f"generated test set, {rendering}",
        "generated": {
            "generator": "ifharness",
            "version": GENERATOR_VERSION,
            "family": "compose",
            "seed": 0,
            "rendering": rendering,
            "set_id": sid,
            "args": {"suite": "ifeval", "n": n, "min_constraints": 2, "max_constraints": 3},
            "vocabulary": None,
        },
    }
    return write_task(out, name, rows, spec)


def set_of(task: Path) -> str:
    return yaml.safe_load(task.read_text())["generated"]["set_id"]


def _answers(path: Path, n: int, with_comma: int) -> Path:
    lines = []
    for i in range(n):
        text = "The lantern glows over the water tonight"
        if i < with_comma:
            text = "The lantern glows, over the water tonight"
        lines.append(json.dumps({"key": f"g{i:03d}", "response": text}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _score(tmp: Path, task: Path, answers: Path, out: str) -> Path:
    assert (
        main(["score", "--task", str(task), "--responses", str(answers), "--out", str(tmp / out)])
        == 0
    )
    return tmp / out


@pytest.fixture
def sid(tmp_path: Path) -> str:
    prose = write_generated(tmp_path / "set", "gen-prose", "prose")
    code = write_generated(tmp_path / "set", "gen-pseudocode", "pseudocode")
    assert set_of(prose) == set_of(code)  # one set, two wordings
    _score(tmp_path, prose, _answers(tmp_path / "a.jsonl", N, 0), "run-prose")
    _score(tmp_path, code, _answers(tmp_path / "b.jsonl", N, PLANTED), "run-code")
    return set_of(prose)


@pytest.fixture
def pair(tmp_path: Path, sid: str) -> tuple[Path, Path]:
    return tmp_path / "run-prose", tmp_path / "run-code"


def test_two_renderings_of_one_set_pair_sample_by_sample(pair, sid) -> None:
    a, b = (load_run(p) for p in pair)
    assert a.dataset_hash != b.dataset_hash and a.task != b.task  # today's refusal, lifted
    result = compare_runs(a, b, n_resamples=200)
    assert result["generated"] == {
        "set_id": sid,
        "a_rendering": "prose",
        "b_rendering": "pseudocode",
        "family": "compose",
    }
    assert result["paired"]["rows"] == result["paired"]["prompts"] == N
    assert result["paired"]["only_a"] == result["paired"]["only_b"] == 0
    strict = result["metrics"]["prompt_level_strict_acc"]
    assert strict["test"] == "mcnemar_exact"
    assert strict["mcnemar"]["a_only"] == PLANTED and strict["mcnemar"]["b_only"] == 0
    assert strict["delta"] == pytest.approx(-PLANTED / N)
    by_id = {r["constraint"]: r for r in result["constraints"]}
    assert by_id["punctuation:no_comma"]["delta"] == pytest.approx(-PLANTED / N)
    assert by_id["punctuation:no_comma"]["a_only"] == PLANTED
    assert by_id["keywords:existence"]["delta"] == 0
    assert by_id["length_constraints:number_words"]["n"] == N // 2


def test_compare_command_names_both_renderings(pair, sid, tmp_path, capsys) -> None:
    out_json = tmp_path / "cmp.json"
    md = tmp_path / "cmp.md"
    assert (
        main(
            ["compare", str(pair[0]), str(pair[1]), "--json", str(out_json), "--markdown", str(md)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"(prose vs pseudocode, set {sid})" in text
    assert f"{N} prompts" in text and "mcnemar_exact" in text
    assert "punctuation:no_comma" in text
    assert json.loads(out_json.read_text())["generated"]["set_id"] == sid
    assert f"prose vs pseudocode, set {sid}" in md.read_text()


def test_different_sets_are_refused_with_both_set_ids(tmp_path) -> None:
    prose = write_generated(tmp_path / "s1", "one-prose", "prose")
    other = write_generated(tmp_path / "s2", "two-pseudocode", "pseudocode", keyword="pebble")
    one, two = set_of(prose), set_of(other)
    assert one != two
    answers = _answers(tmp_path / "a.jsonl", N, 0)
    a = load_run(_score(tmp_path, prose, answers, "a"))
    b = load_run(_score(tmp_path, other, answers, "b"))
    with pytest.raises(DataError, match="different generated sets") as e:
        compare_runs(a, b, n_resamples=50)
    assert one in str(e.value) and two in str(e.value)
    assert "--rendering all" in str(e.value)


def test_a_generated_run_and_an_authored_one_still_need_the_same_task(pair, tmp_path) -> None:
    info = json.loads((pair[1] / "run.json").read_text())
    del info["generated"]
    (pair[1] / "run.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="different tasks"):
        compare_runs(load_run(pair[0]), load_run(pair[1]), n_resamples=50)


def test_run_json_and_samples_record_the_generator(pair, sid) -> None:
    info = RunFolder(pair[1]).read_run()
    assert info is not None and info.generated is not None
    assert info.generated["set_id"] == sid
    assert info.generated["rendering"] == "pseudocode" and info.generated["seed"] == 0
    assert info.generated["args"]["max_constraints"] == 3
    assert info.schema_version == 2
    row = RunFolder(pair[1]).read_samples()["g000"]
    assert row["meta"]["rendering"] == "pseudocode"
    assert row["meta"]["generator"]["set_id"] == sid
    assert row["meta"]["base_task"] == "base-0"


def test_a_run_json_without_generated_still_loads(pair) -> None:
    path = pair[0] / "run.json"
    info = json.loads(path.read_text())
    del info["generated"]
    path.write_text(json.dumps(info))
    loaded = RunFolder(pair[0]).read_run()
    assert loaded is not None and loaded.generated is None


def test_loader_keeps_the_generated_block_and_each_rows_level(tmp_path) -> None:
    path = write_generated(tmp_path, "lv-json", "json", n=4, level=True)
    task = load_task(str(path))
    assert task.spec.generated is not None
    assert task.spec.generated.set_id == set_of(path)
    assert task.spec.generated.args["n"] == 4
    assert [s.meta["level"] for s in task.samples] == [2, 3, 2, 3]
    assert all(s.meta["rendering"] == "json" for s in task.samples)
    plain = load_task("default").samples[0]
    assert plain.meta == {}


def test_a_generated_block_missing_its_set_id_is_refused(tmp_path) -> None:
    path = write_generated(tmp_path, "bad", "prose", n=2)
    spec = yaml.safe_load(path.read_text())
    del spec["generated"]["set_id"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match="set_id"):
        load_task(str(path))
