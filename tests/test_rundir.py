"""The run folder's owner: what `score` writes, what readers accept, how old folders read."""

from __future__ import annotations

import json

import pytest

import ifharness
from ifharness.cli import main
from ifharness.errors import DataError
from ifharness.results import write_score_run
from ifharness.rundir import SCHEMA_VERSION, RunFolder, load_run

ANSWERS = {1: "all lowercase, no trouble here.", 2: "NO COMMAS AT ALL", 3: ""}


@pytest.fixture(scope="module")
def default_task():
    return ifharness.load_task("default").limit(6)


@pytest.fixture
def scored(tmp_path, default_task):
    keys = [s.key for s in default_task.samples]
    texts = {keys[0]: "a short answer", keys[1]: "Another, with a comma.", keys[2]: ""}
    result = ifharness.score(default_task, texts)
    write_score_run(tmp_path / "run", result)
    return tmp_path / "run", default_task, texts


def test_score_folder_is_complete_and_self_describing(scored):
    path, task, texts = scored
    folder = RunFolder(path)
    info = folder.read_run()
    assert info is not None and info.schema_version == SCHEMA_VERSION
    assert info.kind == "score" and info.metric == task.spec.metric
    assert info.n_samples == len(task.samples) and info.dataset_hash == task.data_hash
    # every answer is in completions.jsonl, a missing one is not invented
    comps = folder.read_completions()
    assert [c["key"] for c in comps] == list(texts)
    assert comps[1]["response"] == texts[task.samples[1].key]
    # the task as scored, with the bound kwargs, so no reader reloads the task
    samples = folder.read_samples()
    assert list(samples) == [str(s.key) for s in task.samples]
    s0 = task.samples[0]
    assert samples[str(s0.key)]["instructions"] == [i.model_dump() for i in s0.instructions]
    run = folder.load()
    assert run.headline_metric(["prompt_level_strict_acc"]) == "prompt_level_strict_acc"
    assert len(run.verdicts) == len(task.samples) and run.metrics is not None


def test_score_cli_writes_the_report_inputs(scored, tmp_path):
    path, _, _ = scored
    assert main(["report", str(path)]) == 0
    page = (path / "report.html").read_text(encoding="utf-8")
    assert "a short answer" in page  # the answer, from completions.jsonl
    assert "not shown" not in page  # prompts and answers both came from the folder


def _write_v1(path, task_name="ifbench-multiturn"):
    """A scored folder exactly as ifharness 0.1.0 wrote it: no schema_version, no samples,
    no completions, no metric in run.json."""
    path.mkdir(parents=True)
    run = {
        "kind": "score",
        "task": task_name,
        "suite": "ifbench",
        "data": "x.jsonl",
        "dataset_hash": "a" * 64,
        "n_samples": 2,
        "profile": {"name": "reference", "flags": [], "description": "d"},
        "langdetect": {"backend": "langdetect", "seed": 0},
        "versions": {"ifharness": "0.1.0"},
        "platform": "Linux",
    }
    (path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    rows = [
        {
            "key": 1,
            "instruction_id_list": ["count:word_count_range"],
            "strict": [True],
            "loose": [True],
        },
        {
            "key": 2,
            "instruction_id_list": ["count:word_count_range"],
            "strict": [False],
            "loose": [True],
        },
    ]
    (path / "verdicts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_v1_folder_stays_readable(tmp_path):
    path = _write_v1(tmp_path / "old")
    run = load_run(path)
    assert run.info.schema_version == 1
    # 0.1.0 ranked a scored folder by its task's metric: the same one is found
    assert (
        run.headline_metric(["prompt_level_strict_acc", "prompt_level_loose_acc"])
        == "prompt_level_loose_acc"
    )
    assert main(["report", str(path)]) == 0
    page = (path / "report.html").read_text(encoding="utf-8")
    assert "re-score it with `ifharness score`" in page
    assert main(["leaderboard", str(path), "--format", "csv"]) == 0


def test_v1_folder_of_unknown_task_names_the_way_out(tmp_path, capsys):
    path = _write_v1(tmp_path / "old", task_name="gone-task")
    with pytest.raises(DataError, match="pass --metric, or re-score"):
        load_run(path).headline_metric(["prompt_level_strict_acc"])
    assert (
        main(["leaderboard", str(path), "--metric", "prompt_level_strict_acc", "--format", "csv"])
        == 0
    )


def test_newer_schema_is_refused_with_a_message(scored):
    path, _, _ = scored
    run = json.loads((path / "run.json").read_text())
    run["schema_version"] = SCHEMA_VERSION + 1
    (path / "run.json").write_text(json.dumps(run))
    with pytest.raises(DataError, match="newer than this ifharness reads"):
        load_run(path)


def test_unknown_run_json_field_is_refused_naming_it(scored):
    path, _, _ = scored
    run = json.loads((path / "run.json").read_text())
    run["samplng"] = {"temperature": 0}
    (path / "run.json").write_text(json.dumps(run))
    with pytest.raises(DataError, match=r"run\.json.*samplng"):
        load_run(path)


def test_bad_verdict_and_completion_rows_name_file_and_line(scored):
    path, _, _ = scored
    lines = (path / "verdicts.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["strict"] = row["strict"] + [True]
    lines[1] = json.dumps(row)
    (path / "verdicts.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"verdicts\.jsonl:2: 'strict' must be"):
        load_run(path)
    (path / "completions.jsonl").write_text('{"key": 1, "sample": "zero", "response": "x"}\n')
    with pytest.raises(DataError, match=r"completions\.jsonl:1: sample"):
        RunFolder(path).read_completions()


def test_failures_are_appended_then_settled(tmp_path):
    from ifharness.runners.base import Failure

    folder = RunFolder(tmp_path)
    folder.record_failure(Failure("a", "HTTP 500", 3, 500))
    folder.record_failure(Failure("b", "timed out", 7, None))
    assert folder.failed_keys() == {"a", "b"}
    assert folder.failures()["a"]["attempts"] == 3 and "at" in folder.failures()["a"]
    assert folder.settle_failures({"a"}) == ["b"]
    assert folder.failed_keys() == {"b"}
    assert folder.settle_failures({"a", "b"}) == []
    assert not (tmp_path / "failed.jsonl").exists()


def test_lmeval_rescore_folder_records_its_source(tmp_path, default_task):
    """`score --from-lmeval` writes the same complete folder, marked as coming from lm-eval."""
    from ifharness.lmeval.hooks import task_docs

    docs = task_docs("default")[:3]
    log = tmp_path / "samples_ifharness_default.jsonl"
    log.write_text(
        "".join(
            json.dumps(
                {"doc_id": i, "doc": d, "resps": [["an answer"]], "filtered_resps": ["an answer"]}
            )
            + "\n"
            for i, d in enumerate(docs)
        )
    )
    out = tmp_path / "lm"
    assert main(["score", "--task", "default", "--from-lmeval", str(log), "--out", str(out)]) == 0
    info = RunFolder(out).read_run()
    assert info is not None and info.source == "lm-eval" and info.lmeval is not None
    assert info.lmeval["samples"]["path"] == str(log)
    assert len(RunFolder(out).read_completions()) == 3
    assert info.metric == default_task.spec.metric
