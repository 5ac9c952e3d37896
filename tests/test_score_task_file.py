"""Scoring a task file at scale (``ifharness.stream``): the task's samples and the answers
read a range at a time by the pool. What it leaves in the folder equals loading the task and
``results.score_run`` byte for byte (run.json included), whatever the range sizes and the
number of processes; where it cannot do the same (answers joined by prompt text, a repeated
key, a hash collision, a bad file) the loaded path scores it or reports the error, in the
same words; invalid samples are all reported and nothing is left half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ifharness import stats, stream
from ifharness.errors import DataError
from ifharness.loader import load_task, task_file
from ifharness.results import score_run
from tests.support.data import shared

FILES = ("run.json", "samples.jsonl", "completions.jsonl", "verdicts.jsonl", "metrics.json")


def _loaded(out: Path, name: str, data: Path, answers: Path, profile: str | None = None):
    return score_run(out, load_task(name, data=data, profile=profile), answers)


def _streamed(out: Path, name: str, data: Path, answers: Path, processes: int = 1, **kw):
    tf = task_file(name, data=data, profile=kw.pop("profile", None))
    assert tf is not None
    return stream.score_file(out, tf, answers, processes=processes, **kw)


def _same_folders(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert not list(b.glob(".*")), "scratch files left behind"


@pytest.fixture
def small_ranges(monkeypatch):
    """Ranges of a few rows, so a small file is many jobs, and the bootstrap weights drawn
    ahead from the first prompt on."""
    monkeypatch.setattr(stream, "TASK_RANGE", 9_000)
    monkeypatch.setattr(stream, "ANSWER_RANGE", 20_000)
    monkeypatch.setattr(stream, "PREDRAW_FROM", 2)


def _elsewhere(monkeypatch) -> list[str]:
    """Record each time the stream hands a file to the loaded path."""
    calls: list[str] = []
    real = stream._loaded

    def loaded(*args, **kwargs):
        calls.append("loaded")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "_loaded", loaded)
    return calls


@pytest.mark.parametrize(
    ("task", "data", "answers", "profile"),
    [
        ("ifeval", "ifeval/input_data.jsonl", "ifeval/gpt4_responses.jsonl", None),
        ("ifbench", "ifbench/IFBench_test.jsonl", "ifbench/sample_output.jsonl", None),
        (
            "ifbench",
            "ifbench/IFBench_test_2025-07.jsonl",
            "ifbench/sample_output.jsonl",
            "ifbench-2025",
        ),
    ],
)
@pytest.mark.parametrize("processes", [1, 2])
def test_reference_sets_equal_the_loaded_path(
    tmp_path, small_ranges, monkeypatch, task, data, answers, profile, processes
):
    data_path, answers_path = shared(data), shared(answers)
    calls = _elsewhere(monkeypatch)
    _loaded(tmp_path / "loaded", task, data_path, answers_path, profile)
    result = _streamed(
        tmp_path / "streamed", task, data_path, answers_path, processes, profile=profile
    )
    assert not calls, "streamed, not handed to the loaded path"
    _same_folders(tmp_path / "loaded", tmp_path / "streamed")
    assert result.metrics == json.loads((tmp_path / "streamed" / "metrics.json").read_text())
    assert json.loads((tmp_path / "streamed" / "run.json").read_text())["n_samples"] == len(
        load_task(task, data=data_path, profile=profile).samples
    )


# -- a small task of our own: keys, blank lines, keyless rows, odd answer files


def _task_rows(n: int, keyless: tuple[int, ...] = ()) -> list[dict]:
    rows = []
    for i in range(n):
        row = {
            "key": 1000 + i,
            "prompt": f"Write about topic {i}. Do not use any commas.",
            "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
            "kwargs": [{}, {"relation": "less than", "num_words": 5 + i % 7}],
        }
        if i in keyless:
            del row["key"]
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict], blank_every: int = 0) -> Path:
    lines = []
    for i, r in enumerate(rows):
        lines.append(json.dumps(r))
        if blank_every and i % blank_every == 0:
            lines.append("   ")
    path.write_text("\n".join(lines) + "\n")
    return path


def _answers(rows: list[dict]) -> list[dict]:
    out = []
    for i, r in enumerate(rows):
        if i % 9 == 4:
            continue  # missing
        key = r.get("key", i)
        text = "short answer" if i % 2 else "a longer, answer, with commas in it"
        out.append({"key": key, "response": text, "finish_reason": "length" if i % 5 else "stop"})
    return out


def test_odd_files_equal_the_loaded_path(tmp_path, small_ranges, monkeypatch):
    rows = _task_rows(300, keyless=(7, 150))  # keyed by their index, as loading does
    data = _write(tmp_path / "task.jsonl", rows, blank_every=11)
    answers = _answers(rows)
    answers += [
        {"key": 1003, "response": "a later answer wins"},  # duplicates: the later row wins
        {"key": 1003, "response": "and a third one"},
        {"key": 1010, "response": "once more"},
        {"key": 99999, "response": "names no prompt"},  # unmatched
        {"key": "1020", "response": "a string key joins an int key"},
    ]
    answer_file = _write(tmp_path / "answers.jsonl", answers, blank_every=13)
    calls = _elsewhere(monkeypatch)
    a = _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    for processes in (1, 2):
        out = tmp_path / f"streamed-{processes}"
        b = _streamed(out, "ifeval", data, answer_file, processes)
        _same_folders(tmp_path / "loaded", out)
        assert b.joined.missing == a.joined.missing and len(a.joined.missing) == 33
        assert b.joined.duplicates == a.joined.duplicates and len(a.joined.duplicates) == 4
        assert b.joined.unmatched == a.joined.unmatched == 1
    assert not calls


def test_answers_joined_by_prompt_text_equal_the_loaded_path(tmp_path, small_ranges, monkeypatch):
    """IFBench's answer files name the prompt, not the key: exact text, then stripped; a key
    naming no prompt falls back to the prompt; the later row wins across both."""
    rows = _task_rows(120)
    rows[51]["prompt"] = rows[10]["prompt"]  # two prompts alike: the first one is joined
    data = _write(tmp_path / "task.jsonl", rows)
    answers = []
    for i, r in enumerate(rows):
        if i % 9 == 4:
            continue
        text = "short answer" if i % 2 else "a longer, answer, with commas in it"
        if i % 3 == 0:
            answers.append({"prompt": r["prompt"], "response": text})
        elif i % 3 == 1:
            answers.append({"prompt": f"  {r['prompt']}\n", "response": text})  # stripped
        else:
            answers.append({"key": r["key"], "prompt": "ignored", "response": text})
    answers.append({"key": "no such key", "prompt": rows[7]["prompt"], "response": "by prompt"})
    answers.append({"key": 1012, "response": "a later row for a prompt-joined one"})
    answers.append({"prompt": "a prompt of no task", "response": "unmatched"})
    answer_file = _write(tmp_path / "answers.jsonl", answers)
    calls = _elsewhere(monkeypatch)
    a = _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    for processes in (1, 2):
        out = tmp_path / f"streamed-{processes}"
        b = _streamed(out, "ifeval", data, answer_file, processes)
        _same_folders(tmp_path / "loaded", out)
        assert b.joined.duplicates == a.joined.duplicates
        assert len(a.joined.duplicates) == 3  # keys 1007, 1012 and 1010 (row 51's prompt)
        assert b.joined.unmatched == a.joined.unmatched == 1
        assert b.joined.missing == a.joined.missing
    assert not calls


def test_hash_collisions_never_pair_a_wrong_answer(tmp_path, small_ranges, monkeypatch):
    """Two texts with one 64-bit hash: between two task keys the index sees a repeated key;
    between an answer's key (or prompt) and a task's, reading the answer back finds the
    other text. All go to the loaded path, so the scores are right."""
    rows = _task_rows(30)
    data = _write(tmp_path / "task.jsonl", rows)
    answers = _answers(rows)
    answers.append({"key": "zz", "response": "names no prompt, hashes like key 1003"})
    real = stream.key_hash
    prompt = rows[3]["prompt"]
    answers.append({"prompt": prompt + "!", "response": "hashes like the prompt of key 1003"})
    answer_file = _write(tmp_path / "answers.jsonl", answers)
    _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    clashes = ({"1003", "zz"}, {"1003", "1004"}, {prompt, prompt + "!"})
    for i, clash in enumerate(clashes):
        monkeypatch.setattr(stream, "key_hash", lambda k, c=clash: 7 if k in c else real(k))
        calls = _elsewhere(monkeypatch)
        out = tmp_path / f"streamed-{i}"
        _streamed(out, "ifeval", data, answer_file)
        assert calls == ["loaded"], clash
        _same_folders(tmp_path / "loaded", out)


def test_invalid_samples_are_all_reported_and_nothing_is_written(tmp_path, small_ranges):
    rows = _task_rows(200)
    rows[3]["instruction_id_list"] = ["no:such_constraint"]
    rows[3]["kwargs"] = [{}]
    rows[120]["kwargs"] = [{}]  # one object for two ids
    rows[199]["kwargs"][1] = {"relation": "sideways", "num_words": 3}
    data = _write(tmp_path / "task.jsonl", rows)
    answer_file = _write(tmp_path / "answers.jsonl", _answers(rows))
    with pytest.raises(DataError) as loaded:
        load_task("ifeval", data=data)
    out = tmp_path / "run"
    out.mkdir()
    (out / "verdicts.jsonl").write_text("earlier work\n")
    for processes in (1, 2):
        with pytest.raises(DataError) as streamed:
            _streamed(out, "ifeval", data, answer_file, processes)
        assert str(streamed.value) == str(loaded.value)
        assert str(streamed.value).startswith("3 invalid sample(s)")
        assert [p.name for p in out.iterdir()] == ["verdicts.jsonl"]
        assert (out / "verdicts.jsonl").read_text() == "earlier work\n"


@pytest.mark.parametrize(
    "damage",
    [
        ("task", 5, "{not json"),
        ("task", 9, json.dumps({**_task_rows(10)[0], "key": 1002})),  # a repeated key
        ("answers", 6, json.dumps({"key": 1001, "response": 3})),
        ("answers", 2, "[1, 2]"),
    ],
)
def test_bad_files_raise_what_loading_raises(tmp_path, small_ranges, damage):
    which, line, text = damage
    rows = _task_rows(60)
    data = _write(tmp_path / "task.jsonl", rows)
    answer_file = _write(tmp_path / "answers.jsonl", _answers(rows))
    target = data if which == "task" else answer_file
    lines = target.read_text().splitlines()
    lines[line - 1] = text
    target.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as loaded:
        _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    with pytest.raises(DataError) as streamed:
        _streamed(tmp_path / "streamed", "ifeval", data, answer_file, 2)
    assert str(streamed.value) == str(loaded.value)
    assert f":{line}" in str(streamed.value)
    assert not (tmp_path / "streamed").exists() or not list((tmp_path / "streamed").iterdir())


def test_empty_files_behave_as_when_loaded(tmp_path, small_ranges):
    rows = _task_rows(20)
    data = _write(tmp_path / "task.jsonl", rows)
    nothing = tmp_path / "empty.jsonl"
    nothing.write_text("")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    for empty in (nothing, blank):  # no answers: every prompt missing, scored as not followed
        a = _loaded(tmp_path / "loaded", "ifeval", data, empty)
        b = _streamed(tmp_path / "streamed", "ifeval", data, empty, 2)
        _same_folders(tmp_path / "loaded", tmp_path / "streamed")
        assert b.joined.missing == a.joined.missing == [r["key"] for r in rows]
        with pytest.raises(DataError, match="holds no samples") as loaded:
            load_task("ifeval", data=empty)
        with pytest.raises(DataError) as streamed:
            _streamed(tmp_path / "none", "ifeval", empty, data, 2)
        assert str(streamed.value) == str(loaded.value)


def test_tasks_that_are_not_one_jsonl_file_are_loaded(tmp_path):
    assert task_file("ifeval") is None  # Hugging Face
    csv = tmp_path / "t.csv"
    csv.write_text("key,prompt\n1,hi\n")
    assert task_file("ifeval", data=csv) is None
    array = tmp_path / "t.json"
    array.write_text(json.dumps(_task_rows(2)))
    assert task_file("ifeval", data=array) is None
    assert task_file("ifeval", data=tmp_path / "absent.jsonl") is None  # loading says so
    jsonl = _write(tmp_path / "t.jsonl", _task_rows(2))
    tf = task_file("ifeval", data=jsonl, profile="reference")
    assert tf is not None and tf.name == "ifeval" and tf.data_origin == str(jsonl)
    assert [s.key for s in tf.load().samples] == [1000, 1001]


def test_weights_drawn_ahead_are_the_draws(tmp_path, monkeypatch):
    for n, resamples in ((2, 7), (1500, 260), (40_000, 30)):
        path = stats.draw_weights(tmp_path / "w", n, resamples, seed=3)
        assert path is not None
        ahead = list(stats.read_weights(path, n, resamples))
        now = list(stats.resample_weights(n, resamples, seed=3))
        assert [w.shape for w in ahead] == [w.shape for w in now]
        assert all(np.array_equal(a, b) for a, b in zip(ahead, now))
    # a weight above one byte: nothing kept, and the stream draws at the end instead
    big = np.array([[300.0, 0.0]])
    monkeypatch.setattr(stats, "resample_weights", lambda n, r, s: iter([big]))
    assert stats.draw_weights(tmp_path / "w", 2, 1, 0) is None


def test_weights_that_do_not_fit_a_byte_are_drawn_at_the_end(tmp_path, small_ranges, monkeypatch):
    rows = _task_rows(50)
    data = _write(tmp_path / "task.jsonl", rows)
    answer_file = _write(tmp_path / "answers.jsonl", _answers(rows))
    _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    drawn = []

    def refuse(path, n, resamples, seed):
        drawn.append(n)
        return None

    monkeypatch.setattr(stats, "draw_weights", refuse)
    _streamed(tmp_path / "streamed", "ifeval", data, answer_file, 1)  # in-process: sees the patch
    _same_folders(tmp_path / "loaded", tmp_path / "streamed")
    assert drawn == []  # one process draws at the end anyway
    monkeypatch.setattr(stream, "_pool", lambda processes: stream._Here())
    _streamed(tmp_path / "streamed2", "ifeval", data, answer_file, 2)
    assert drawn == [50]
    _same_folders(tmp_path / "loaded", tmp_path / "streamed2")


def test_keyless_table_equals_the_keyed_one():
    rows = [
        {"key": k, "instruction_id_list": ["a:x", "b:y"][: 1 + k % 2], "strict": s, "loose": lo}
        for k, s, lo in [
            (1, [True], [True]),
            (2, [False, None], [True, None]),
            (3, [True], [False]),
            (4, [None, True], [True, True]),
        ]
    ]
    keyed = stats.build_table(rows)
    chunk = stats.TableBuilder()
    for r in rows[2:]:
        chunk.add(r)
    keyless = stats.TableBuilder(keyed=False)
    for r in rows[:2]:
        keyless.add(r)
    keyless.merge(chunk)
    table = keyless.build()
    assert table.keys == [] and table.n_prompts == keyed.n_prompts == 4
    for name in keyed.num:
        assert np.array_equal(table.num[name], keyed.num[name])
        assert np.array_equal(table.den[name], keyed.den[name])
    assert stats.bootstrap_intervals(table, 50, 1) == stats.bootstrap_intervals(keyed, 50, 1)
    with pytest.raises(ValueError, match="keyed"):
        stats.TableBuilder().merge(keyless)


def test_cli_score_streams_a_task_file(tmp_path):
    rows = _task_rows(25)
    data = _write(tmp_path / "task.jsonl", rows)
    answer_file = _write(tmp_path / "answers.jsonl", _answers(rows))
    _loaded(tmp_path / "loaded", "ifeval", data, answer_file)
    code = (
        "import sys; from ifharness import stream; from ifharness.cli import main\n"
        "real = stream._stream\n"
        "def spy(*a, **k):\n    print('streamed'); return real(*a, **k)\n"
        "stream._stream = spy\nsys.exit(main(sys.argv[1:]))\n"
    )
    args = ["score", "--task", "ifeval", "--data", str(data), "--responses", str(answer_file)]
    args += ["--out", str(tmp_path / "cli"), "--processes", "2"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("streamed")
    assert "3 prompt(s) have no answer" in done.stderr
    for name in FILES:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "loaded" / name).read_bytes()
    assert (tmp_path / "cli" / "report.html").is_file()
