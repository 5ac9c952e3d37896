"""Conversations as work units (``turns: conversation``) without an engine.

A scripted runner stands in for the model: it answers each (key, turn) with a text we
choose and records every request, so the tests can check what the model would have been
shown (its own earlier answers), which turns were asked on a resumed run, and the per-turn
metrics. tests/test_conversations_smollm2.py runs the same paths on the embedded SmolLM2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import ifharness
from ifharness.errors import DataError, IfharnessError
from ifharness.loader import load_task
from ifharness.run import RunConfig, conversation_messages, execute
from ifharness.rundir import CompletionStore, RunFolder
from ifharness.runners.base import Completion, Request
from tests.support.data import write_jsonl

TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"


def task_yaml(tmp_path: Path, accumulate: str = "cumulative", name: str = "conv") -> Path:
    path = tmp_path / f"{name}-{accumulate}.yaml"
    path.write_text(
        f"name: {name}\nsuite: ifeval\nsource: {{}}\nturns: conversation\n"
        f"accumulate: {accumulate}\nmetric: if_avg4\n",
        encoding="utf-8",
    )
    return path


def turn(prompt: str, *pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "instruction_id_list": [p[0] for p in pairs],
        "kwargs": [p[1] for p in pairs],
    }


NO_COMMA = ("punctuation:no_comma", {})
LOWER = ("change_case:english_lowercase", {})
DOG = ("keywords:existence", {"keywords": ["dog"]})


def conversations(n: int = 4) -> list[dict[str, Any]]:
    """``n`` three-turn conversations; turn k adds one constraint (listed only at turn k)."""
    return [
        {
            "key": f"c{i}",
            "language": "English" if i % 2 else "French",
            "turns": [
                turn(f"Conversation {i}: describe a cat.", NO_COMMA),
                turn(f"Conversation {i}: now in lower case.", LOWER),
                turn(f"Conversation {i}: mention a dog.", DOG),
            ],
        }
        for i in range(n)
    ]


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "conv.jsonl", conversations())


@pytest.fixture
def model_dir(tmp_path) -> Path:
    d = tmp_path / "fake-model"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    (d / "chat_template.jinja").write_text(TEMPLATE)
    (d / "model.safetensors").write_bytes(b"")
    return d


def scripted(key: Any, t: int | None) -> str:
    """Turn 1 keeps no_comma; turn 2 is lower case without commas except in c0; turn 3
    mentions a dog, in lower case, except in c1 (which uses capitals)."""
    if t == 1:
        return f"a calm cat named {key} sleeps"
    if t == 2:
        return (
            f"the cat {key}, as always, is sleeping in the sun by the window"
            if key == "c0"
            else f"the cat {key} is sleeping in the sun by the window all day"
        )
    return (
        f"The Dog met the cat {key} in the garden and they played there all day long"
        if key == "c1"
        else f"a small dog met the cat {key} in the garden and they played there all day long"
    )


class ScriptedRunner:
    """Answers from :func:`scripted`; records each request; can stop like Ctrl-C."""

    name = "scripted"

    def __init__(self, stop_at: tuple[int, int] | None = None):
        self.stop_at = stop_at  # (turn, chunks of that turn written before the stop)
        self.requests: list[Request] = []
        self.chunks: dict[int, int] = {}

    def start(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[list[Completion]]:
        for start in range(0, len(requests), chunk_size):
            part = requests[start : start + chunk_size]
            t = part[0].turn or 0
            if self.stop_at is not None and self.stop_at == (t, self.chunks.get(t, 0)):
                raise KeyboardInterrupt
            self.chunks[t] = self.chunks.get(t, 0) + 1
            self.requests.extend(part)
            yield [Completion(r.key, 0, scripted(r.key, r.turn), None, "stop", 4) for r in part]


def run(data: Path, model_dir: Path, out: Path, runner: ScriptedRunner, **kw: Any):
    cfg = RunConfig(
        model=str(model_dir),
        task=str(kw.pop("task", None) or task_yaml(out.parent)),
        data=str(data),
        out=str(out),
        max_tokens=16,
        chunk_size=kw.pop("chunk_size", 3),
        **kw,
    )
    return execute(cfg, lambda c, m, p: runner)


def rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- loading


def test_rows_become_one_sample_per_turn(tmp_path, data):
    task = load_task(str(task_yaml(tmp_path)), data=data)
    assert task.conversational and len(task.samples) == 12
    assert [(s.key, s.turn) for s in task.samples[:3]] == [("c0", 1), ("c0", 2), ("c0", 3)]
    assert [s.uid for s in task.samples[:2]] == ["c0 turn 1", "c0 turn 2"]
    # a turn's messages are its own user message; the history is built at run time
    assert [m.content for m in task.samples[1].messages] == ["Conversation 0: now in lower case."]
    assert task.samples[0].meta == {"language": "French"}
    assert task.limit(2).samples[-1].uid == "c1 turn 3" and len(task.limit(2).samples) == 6


def test_cumulative_and_per_turn_constraints(tmp_path, data):
    cumulative = load_task(str(task_yaml(tmp_path)), data=data)
    per_turn = load_task(str(task_yaml(tmp_path, "per_turn")), data=data)
    assert [s.instruction_ids for s in cumulative.samples[:3]] == [
        ["punctuation:no_comma"],
        ["punctuation:no_comma", "change_case:english_lowercase"],
        ["punctuation:no_comma", "change_case:english_lowercase", "keywords:existence"],
    ]
    assert [s.instruction_ids for s in per_turn.samples[:3]] == [
        ["punctuation:no_comma"],
        ["change_case:english_lowercase"],
        ["keywords:existence"],
    ]
    assert cumulative.data_hash != per_turn.data_hash


def test_cumulative_data_that_lists_earlier_ids_again_adds_nothing(tmp_path):
    """Multi-IF's lists are cumulative already: the later turn's kwargs win, no id twice."""
    row = {
        "key": "m",
        "turns": [
            turn(
                "one", ("length_constraints:number_words", {"num_words": 5, "relation": "at least"})
            ),
            turn(
                "two",
                ("length_constraints:number_words", {"num_words": 9, "relation": "at least"}),
                NO_COMMA,
            ),
        ],
    }
    task = load_task(str(task_yaml(tmp_path)), data=write_jsonl(tmp_path / "m.jsonl", [row]))
    second = task.samples[1]
    assert second.instruction_ids == ["length_constraints:number_words", "punctuation:no_comma"]
    assert second.instructions[0].kwargs["num_words"] == 9


def test_every_turn_is_validated_and_named(tmp_path):
    bad = conversations(2)
    bad[1]["turns"][1]["instruction_id_list"] = ["punctuation:no_such_thing"]
    bad[1]["turns"][2]["kwargs"] = [{"keywords": "dog", "nope": 1}]
    path = write_jsonl(tmp_path / "bad.jsonl", bad)
    with pytest.raises(DataError) as e:
        load_task(str(task_yaml(tmp_path)), data=path)
    text = str(e.value)
    assert "2 invalid sample(s)" in text
    assert f"{path}:2 (key c1) turn 2: instruction 1" in text and "no_such_thing" in text
    assert f"{path}:2 (key c1) turn 3: instruction" in text


def test_a_row_without_turns_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "none.jsonl", [{"key": "x", "prompt": "hi"}])
    with pytest.raises(DataError, match=r"none.jsonl:1 \(key x\): field 'turns' is missing"):
        load_task(str(task_yaml(tmp_path)), data=path)


# ----------------------------------------------------------------------------- running


def test_each_turn_is_sent_with_the_models_own_earlier_answers(tmp_path, data, model_dir):
    out = tmp_path / "run"
    runner = ScriptedRunner()
    outcome = run(data, model_dir, out, runner, system_prompt="Be brief.")
    # turn by turn: every turn 1 before any turn 2
    assert [r.turn for r in runner.requests] == [1] * 4 + [2] * 4 + [3] * 4
    third = next(r for r in runner.requests if r.key == "c2" and r.turn == 3)
    assert third.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Conversation 2: describe a cat."},
        {"role": "assistant", "content": scripted("c2", 1)},
        {"role": "user", "content": "Conversation 2: now in lower case."},
        {"role": "assistant", "content": scripted("c2", 2)},
        {"role": "user", "content": "Conversation 2: mention a dog."},
    ]
    # the stored request of each turn is the one sent, and holds the answer to the turn before
    stored = {(r["key"], r["turn"]): r for r in rows(out)}
    assert len(stored) == 12 == len(rows(out))
    for (key, t), row in stored.items():
        sent = next(r for r in runner.requests if r.key == key and r.turn == t)
        assert row["messages"] == sent.messages
        if t > 1:
            assert row["messages"][-2] == {
                "role": "assistant",
                "content": stored[(key, t - 1)]["response"],
            }
    assert outcome.run.status == "complete"


def test_per_turn_verdicts_and_metrics(tmp_path, data, model_dir):
    out = tmp_path / "run"
    outcome = run(data, model_dir, out, ScriptedRunner())
    verdicts = [json.loads(x) for x in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [(v["key"], v["turn"]) for v in verdicts[:3]] == [("c0", 1), ("c0", 2), ("c0", 3)]
    m = outcome.result.metrics
    t1, t2, t3 = (m["per_turn"][k] for k in ("1", "2", "3"))
    assert t1["prompt_level_strict_acc"] == 1.0 and t1["n_prompts"] == 4
    # turn 2: c0 has a comma (no_comma broken, lower case kept)
    assert t2["prompt_level_strict_acc"] == 0.75 and t2["inst_level_strict_acc"] == 7 / 8
    # turn 3: c1 is not lower case
    assert t3["prompt_level_strict_acc"] == 0.75 and t3["inst_level_strict_acc"] == 11 / 12
    for entry in (t1, t2, t3):
        four = [
            entry[n]
            for n in (
                "prompt_level_strict_acc",
                "inst_level_strict_acc",
                "prompt_level_loose_acc",
                "inst_level_loose_acc",
            )
        ]
        assert entry["if_avg4"] == pytest.approx(sum(four) / 4)
        assert "per_turn" not in entry
    # overall: pooled over the 12 (conversation, turn) rows, clustered by conversation
    assert m["n_rows"] == 12 and m["n_prompts"] == 4
    assert m["prompt_level_strict_acc"] == pytest.approx(10 / 12)
    assert m["if_avg4"] == pytest.approx(m["mean4"])
    # forgetting / correction against the previous turn, paired by instruction id
    assert "forgetting" not in t1
    f2, f3 = t2["forgetting"]["strict"], t3["forgetting"]["strict"]
    assert (f2["followed_before"], f2["forgotten"], f2["forgetting_ratio"]) == (4, 1, 0.25)
    assert f2["correction_ratio"] is None  # nothing was missed at turn 1
    assert (f3["followed_before"], f3["forgotten"]) == (7, 1)  # c1 drops lower case
    assert (f3["missed_before"], f3["corrected"], f3["correction_ratio"]) == (1, 1, 1.0)
    assert set(t2["per_language"]) == {"English", "French"}
    assert t2["per_language"]["French"]["prompt_level_strict_acc"] == 0.5  # c0 and c2
    assert json.loads((out / "metrics.json").read_text())["per_turn"]["3"]["n_prompts"] == 4


def test_killed_between_turns_resumes_at_the_next_turn(tmp_path, data, model_dir):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(data, model_dir, out, ScriptedRunner(stop_at=(2, 0)))
    before = rows(out)
    assert {r["turn"] for r in before} == {1} and len(before) == 4
    again = ScriptedRunner()
    outcome = run(data, model_dir, out, again)
    assert {(r.key, r.turn) for r in again.requests} == {
        (f"c{i}", t) for i in range(4) for t in (2, 3)
    }
    after = rows(out)
    assert after[:4] == before  # turn 1 read back, never regenerated or rewritten
    assert sorted((r["key"], r["turn"]) for r in after) == sorted(
        (f"c{i}", t) for i in range(4) for t in (1, 2, 3)
    )
    assert outcome.run.status == "complete"
    assert outcome.run.sessions[-1]["resumed_samples"] == 4


def test_killed_inside_a_turn_generates_only_what_is_missing(tmp_path, data, model_dir):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # chunks of 1: stop after 2 turn-2 answers
        run(data, model_dir, out, ScriptedRunner(stop_at=(2, 2)), chunk_size=1)
    before = rows(out)
    assert [r["turn"] for r in before] == [1, 1, 1, 1, 2, 2]
    done_t2 = {r["key"] for r in before if r["turn"] == 2}
    again = ScriptedRunner()
    run(data, model_dir, out, again, chunk_size=2)
    asked_t2 = {r.key for r in again.requests if r.turn == 2}
    assert asked_t2 == {f"c{i}" for i in range(4)} - done_t2
    assert not [r for r in again.requests if r.turn == 1]
    after = rows(out)
    assert after[:6] == before
    ids = [(r["key"], r["turn"]) for r in after]
    assert len(ids) == len(set(ids)) == 12
    # the resumed turn-3 requests were built on the turn-2 answers written before the kill
    for r in again.requests:
        if r.turn == 3 and r.key in done_t2:
            old = next(x for x in before if x["key"] == r.key and x["turn"] == 2)
            assert r.messages[-2]["content"] == old["response"]


def test_turn_store_keeps_turns_apart(tmp_path):
    path = tmp_path / "c.jsonl"
    store = CompletionStore(path)
    msgs = {"a": [{"role": "user", "content": "q"}]}
    view = store.for_turn(1, msgs)
    assert view.done == set()
    view.append([Completion("a", 0, "one")])
    assert view.done == {"a"} and store.for_turn(2, msgs).done == set()
    store.for_turn(2, msgs).append([Completion("a", 0, "two")])
    with pytest.raises(IfharnessError, match="a turn 2 twice"):
        store.for_turn(2, msgs).append([Completion("a", 0, "again")])
    resumed = CompletionStore(path).resume()
    assert resumed.done == {"a turn 1", "a turn 2"}
    assert [r["turn"] for r in resumed.rows] == [1, 2] and resumed.rows[0]["messages"] == msgs["a"]


def test_replay_joins_each_turn_by_key_and_turn(tmp_path, data, model_dir):
    answers = [
        {"key": f"c{i}", "turn": t, "response": scripted(f"c{i}", t)}
        for i in range(4)
        for t in (1, 2, 3)
        if (i, t) != (3, 2)  # c3 has no turn-2 answer: turn 3 cannot be asked either
    ]
    responses = write_jsonl(tmp_path / "answers.jsonl", answers)
    cfg = RunConfig(
        task=str(task_yaml(tmp_path)),
        data=str(data),
        out=str(tmp_path / "replayed"),
        backend="replay",
        options={"responses": str(responses)},
    )
    outcome = execute(cfg)
    m = outcome.result.metrics
    assert m["per_turn"]["2"]["prompt_level_strict_acc"] == 0.5  # c0 fails, c3 missing
    assert sorted(m["missing"]) == ["c3 turn 2", "c3 turn 3"]
    assert outcome.run.generation["missing_answers"] == 2 and outcome.run.status == "complete"
    stored = rows(tmp_path / "replayed")
    c2 = next(r for r in stored if r["key"] == "c2" and r["turn"] == 3)
    assert c2["messages"][-2]["content"] == scripted("c2", 2)


def test_score_joins_answers_by_key_and_turn(tmp_path, data):
    task = load_task(str(task_yaml(tmp_path)), data=data)
    answers = [
        {"key": s.key, "turn": s.turn, "response": scripted(s.key, s.turn)} for s in task.samples
    ]
    result = ifharness.score(task, answers)
    assert [v["turn"] for v in result.verdicts[:3]] == [1, 2, 3]
    assert result.metrics["per_turn"]["1"]["prompt_level_strict_acc"] == 1.0
    assert result.metrics["missing"] == []


def test_repeated_samples_are_refused(tmp_path, data, model_dir):
    with pytest.raises(IfharnessError, match="conversation task"):
        run(data, model_dir, tmp_path / "run", ScriptedRunner(), n=2, temperature=0.7)


def test_conversation_messages_put_the_system_prompt_first(tmp_path, data):
    task = load_task(str(task_yaml(tmp_path)), data=data)
    sent = conversation_messages(task.samples[:2], ["first answer"], "sys")
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert RunFolder(tmp_path).read_samples() == {}


def test_openai_backend_sends_each_turn_with_the_servers_own_answers(
    tmp_path, data, fake_upstream, monkeypatch
):
    """Over HTTP, with concurrency: the server's turn-1 reply is in its turn-2 request."""
    from ifharness.cli import main
    from tests.support.fake_openai import reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake = fake_upstream(key_of=lambda prompt: None)
    out = tmp_path / "served"
    args = ["run", "--backend", "openai", "--base-url", fake.base_url, "--model", "tiny"]
    args += ["--task", str(task_yaml(tmp_path)), "--data", str(data), "--out", str(out)]
    assert main([*args, "--max-tokens", "64", "--concurrency", "4"]) == 0
    chats = fake.chats()
    assert len(chats) == 12
    by_last = {h.body["messages"][-1]["content"]: h.body["messages"] for h in chats}
    sent = by_last["Conversation 1: mention a dog."]
    first, second = "Conversation 1: describe a cat.", "Conversation 1: now in lower case."
    assert sent[:4] == [
        {"role": "user", "content": first},
        {"role": "assistant", "content": reply(first)},
        {"role": "user", "content": second},
        {"role": "assistant", "content": reply(second)},
    ]
    # turn by turn: no turn-2 request before every turn-1 answer came back
    turn_of = {h.at: len(h.body["messages"]) // 2 + 1 for h in chats}
    times = sorted(turn_of)
    assert [turn_of[t] for t in times] == sorted(turn_of[t] for t in times)
    assert {(r["key"], r["turn"]) for r in rows(out)} == {
        (f"c{i}", t) for i in range(4) for t in (1, 2, 3)
    }


# ----------------------------------------------------------------------------- IFBench multi-turn


def ifbench_mt_row(ids: list[str], kwargs: list[dict[str, Any]]) -> dict[str, Any]:
    """A row in allenai/IFBench_multi-turn's schema (spec §3): kwargs padded to the union of
    argument names with nulls, ints stored as floats, a fixed assistant turn."""
    union = {"N": None, "keyword": None, "num_words": None, "relation": None}
    return {
        "id": 7,
        "key": 7,
        "prompt": "Describe the sea in one paragraph.",
        "instruction_id_list": ids,
        "kwargs": [{**union, "prompt_to_repeat": None, **kw} for kw in kwargs],
        "messages": [
            {"role": "user", "content": "Describe the sea in one paragraph."},
            {"role": "assistant", "content": "The sea is wide and blue."},
            {"role": "user", "content": "Rewrite it so that it follows the constraints."},
        ],
    }


def test_ifbench_multiturn_rows_drop_null_kwargs_and_keep_the_prompt(tmp_path):
    row = ifbench_mt_row(["count:numbers"], [{"N": 3.0}])
    task = load_task("ifbench-multiturn", data=write_jsonl(tmp_path / "mt.jsonl", [row]))
    sample = task.samples[0]
    assert sample.instructions[0].kwargs == {"N": 3}  # nulls dropped, 3.0 taken as 3
    assert sample.meta["prompt"] == "Describe the sea in one paragraph."
    assert sample.prompt == "Rewrite it so that it follows the constraints."
    assert task.spec.generation.max_tokens == 2048  # olmo-eval's, recorded in the task


def test_ifbench_multiturn_ifeval_sibling(tmp_path):
    row = ifbench_mt_row(
        ["combination:repeat_prompt", "length_constraints:number_words"],
        [{}, {"num_words": 5.0, "relation": "at least"}],
    )
    task = load_task("ifbench-multiturn-ifeval", data=write_jsonl(tmp_path / "mt.jsonl", [row]))
    assert task.spec.suite == "ifeval" and task.spec.source.hf.name == "ifeval_constraints"
    first, second = task.samples[0].instructions
    # a missing prompt_to_repeat is the row's own prompt (olmo-eval's fallback)
    assert first.kwargs["prompt_to_repeat"] == "Describe the sea in one paragraph."
    assert second.kwargs == {"num_words": 5, "relation": "at least"}
    answer = "Describe the sea in one paragraph. The sea is wide and blue today."
    assert ifharness.score(task, {7: answer}).verdicts[0]["strict"] == [True, True]


def test_ifharness_score_writes_a_per_turn_folder(tmp_path, data, capsys):
    from ifharness.cli import main
    from ifharness.rundir import load_run

    task = load_task(str(task_yaml(tmp_path)), data=data)
    responses = write_jsonl(
        tmp_path / "answers.jsonl",
        [{"key": s.key, "turn": s.turn, "response": scripted(s.key, s.turn)} for s in task.samples],
    )
    out = tmp_path / "scored"
    args = ["score", "--task", str(task_yaml(tmp_path)), "--data", str(data)]
    assert main([*args, "--responses", str(responses), "--out", str(out)]) == 0
    run = load_run(out)
    assert len(run.verdicts) == 12 and len(run.completions) == 12
    assert run.completions[("c1 turn 3", 0)]["turn"] == 3
    assert set(RunFolder(out).read_samples()) == {s.uid for s in task.samples}
    assert run.metrics is not None and run.metrics["per_turn"]["2"]["n_prompts"] == 4
    assert "turn    n prompt strict" in capsys.readouterr().out
    # report.html finds each turn's prompt (samples are keyed by key and turn)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "prompt not available" not in html


class FailingRunner(ScriptedRunner):
    """Gives up on (key, turn) pairs in ``fail`` (a server error after its retries)."""

    def __init__(self, fail: set[tuple[str, int]]):
        super().__init__()
        self.fail = fail

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Any]:
        from ifharness.runners.base import Chunk, Failure

        self.requests.extend(requests)
        chunk = Chunk()
        for r in requests:
            if (str(r.key), r.turn) in self.fail:
                chunk.failures.append(Failure(r.key, "HTTP 500", 3, 500))
            else:
                chunk.completions.append(Completion(r.key, 0, scripted(r.key, r.turn)))
        yield chunk


def test_a_failed_turn_holds_back_the_rest_of_its_conversation_until_retried(
    tmp_path, data, model_dir
):
    out = tmp_path / "run"
    first = run(data, model_dir, out, FailingRunner({("c2", 1)}))
    assert first.run.status == "incomplete"
    failed = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert [(f["key"], f["turn"]) for f in failed] == [("c2", 1)]
    assert sorted(first.result.metrics["missing"]) == ["c2 turn 1", "c2 turn 2", "c2 turn 3"]
    assert not [r for r in rows(out) if r["key"] == "c2"]
    again = ScriptedRunner()
    second = run(data, model_dir, out, again)
    assert [(r.key, r.turn) for r in again.requests] == [("c2", 1), ("c2", 2), ("c2", 3)]
    assert second.run.status == "complete" and not (out / "failed.jsonl").exists()
    assert second.result.metrics["missing"] == []


def test_turn_columns_must_be_numbered(tmp_path):
    path = tmp_path / "cols.yaml"
    path.write_text(
        "name: cols\nsuite: ifeval\nsource: {}\nturns: conversation\n"
        "fields: {turn_columns: turn_}\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"must hold \{n\}"):
        load_task(str(path), data=tmp_path / "x.csv")
