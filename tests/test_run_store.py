"""The run machinery without an engine: completions file, resume, run folder, bad input.

A fake runner stands in for vLLM, so these are fast; tests/test_run_vllm.py runs the same
paths on a real engine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import ifharness
from ifharness import models
from ifharness.cli import main
from ifharness.errors import IfharnessError
from ifharness.reasoning import get as get_parser
from ifharness.run import RunConfig, execute
from ifharness.rundir import CompletionStore, FolderLock
from ifharness.runners.base import Completion, Progress, Request, SamplingSettings, drive
from ifharness.runners.vllm import to_completions
from tests.support.data import write_jsonl

TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def prompts(n: int = 10) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        ids, kwargs = ["punctuation:no_comma"], [{}]
        if i % 2:
            ids.append("length_constraints:number_words")
            kwargs.append({"num_words": 4, "relation": "at least"})
        rows.append(
            {
                "key": 100 + i,
                "prompt": f"Prompt {i}: write without commas.",
                "instruction_id_list": ids,
                "kwargs": kwargs,
            }
        )
    return rows


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", prompts())


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A folder that passes model checks (config + chat template); the fake runner needs no
    weights."""
    d = tmp_path / "fake-model"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    (d / "chat_template.jinja").write_text(TEMPLATE)
    (d / "model.safetensors").write_bytes(b"")
    return d


class FakeRunner:
    """Answers derived from the key; can stop (like Ctrl-C) after some chunks."""

    name = "fake"

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.seen: list[str] = []
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True

    def describe(self) -> dict[str, Any]:
        return {"backend": "fake"}

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[list[Completion]]:
        for n, start in enumerate(range(0, len(requests), chunk_size)):
            if self.stop_after is not None and n >= self.stop_after:
                raise KeyboardInterrupt
            out = []
            for r in requests[start : start + chunk_size]:
                self.seen.append(str(r.key))
                for i in range(r.sampling.n):
                    text = (
                        f"answer number {r.key} sample {i} plainly"
                        if (int(r.key) + i) % 3
                        else f"answer {r.key}, with a comma"
                    )
                    out.append(Completion(r.key, i, text, None, "stop" if i else "length", 5))
            yield out


def factory(runner: FakeRunner):
    return lambda cfg, model, parser: runner


def cfg(data: Path, model_dir: Path, out: Path, **kw: Any) -> RunConfig:
    return RunConfig(
        model=str(model_dir),
        task="ifeval",
        data=str(data),
        out=str(out),
        max_tokens=16,
        chunk_size=3,
        **kw,
    )


# ----------------------------------------------------------------------------- the file


def comp(key: int, index: int = 0, text: str = "x") -> Completion:
    return Completion(key, index, text, None, "stop", 3)


def test_append_then_resume(tmp_path):
    store = CompletionStore(tmp_path / "c.jsonl")
    store.append([comp(1), comp(2)])
    store.append([comp(3)])
    again = CompletionStore(tmp_path / "c.jsonl")
    resumed = again.resume()
    assert resumed.done == {"1", "2", "3"} and resumed.dropped_lines == 0
    assert [r["key"] for r in resumed.rows] == [1, 2, 3]
    assert resumed.rows[0] == {
        "key": 1,
        "sample": 0,
        "response": "x",
        "reasoning": None,
        "finish_reason": "stop",
        "n_tokens": 3,
    }


def test_torn_last_line_is_dropped_and_the_file_repaired(tmp_path):
    path = tmp_path / "c.jsonl"
    store = CompletionStore(path)
    store.append([comp(1), comp(2)])
    with open(path, "ab") as f:
        f.write(b'{"key": 3, "sample": 0, "resp')  # kill -9 in the middle of a write
    resumed = CompletionStore(path).resume()
    assert resumed.done == {"1", "2"} and resumed.dropped_lines == 1
    assert path.read_bytes().endswith(b"\n") and path.read_text().count("\n") == 2
    store = CompletionStore(path)
    store.resume()
    store.append([comp(3)])
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_a_key_with_missing_samples_is_redone(tmp_path):
    path = tmp_path / "c.jsonl"
    CompletionStore(path, 2).append([comp(1, 0), comp(1, 1), comp(2, 0)])
    resumed = CompletionStore(path, 2).resume()
    assert resumed.done == {"1"} and resumed.dropped_lines == 1
    assert len(path.read_text().splitlines()) == 2


def test_garbage_before_the_last_line_is_an_error(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        ['{"key": 1, "response": "a"}', "not json", '{"key": 2, "response": "b"}'],
    )
    with pytest.raises(IfharnessError, match=r"c.jsonl:2: not a completion line"):
        CompletionStore(path).resume()


def test_a_key_is_never_written_twice(tmp_path):
    store = CompletionStore(tmp_path / "c.jsonl")
    store.append([comp(1)])
    with pytest.raises(IfharnessError, match="twice"):
        store.append([comp(1)])


def test_drive_resumes_where_it_stopped(tmp_path):
    s = SamplingSettings(max_tokens=8)
    requests = [Request(k, [{"role": "user", "content": str(k)}], s) for k in range(10)]
    store = CompletionStore(tmp_path / "c.jsonl")
    first = FakeRunner(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        drive(first, requests, store, chunk_size=3)
    store = CompletionStore(tmp_path / "c.jsonl")
    assert store.resume().done == {str(k) for k in range(6)}
    second = FakeRunner()
    stats = drive(second, requests, store, chunk_size=3)
    assert second.seen == [str(k) for k in range(6, 10)]
    assert (stats.skipped, stats.generated) == (6, 4)
    keys = [json.loads(line)["key"] for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert sorted(keys) == list(range(10))


def test_drive_refuses_a_chunk_with_part_of_a_request(tmp_path):
    class Partial(FakeRunner):
        def generate(self, requests, chunk_size):
            yield [comp(requests[0].key, 0)]  # n=2 asked, one sample returned

    s = SamplingSettings(max_tokens=8, temperature=0.7, n=2)
    with pytest.raises(IfharnessError, match="expected 0..1"):
        drive(Partial(), [Request(1, [], s)], CompletionStore(tmp_path / "c.jsonl", 2), 4)


def test_progress_line_has_rates(tmp_path):
    import io

    buf = io.StringIO()
    p = Progress(total=10, done=4, stream=buf)
    p.advance(3, 300)
    line = buf.getvalue()
    assert "7/10" in line and "answers/s" in line and "tok/s" in line


def test_folder_lock_is_exclusive(tmp_path):
    with (
        FolderLock(tmp_path / "run"),
        pytest.raises(IfharnessError, match="in use by another ifharness process"),
        FolderLock(tmp_path / "run"),
    ):
        pass
    with FolderLock(tmp_path / "run"):  # released
        pass


def test_to_completions_splits_reasoning():
    class Out:  # the parts of vLLM's CompletionOutput that are read
        def __init__(self, index, text):
            self.index, self.text, self.finish_reason, self.token_ids = index, text, "stop", [1] * 7

    class RO:
        def __init__(self, *outs):
            self.outputs = list(outs)

    s = SamplingSettings(max_tokens=8, temperature=1.0, n=2)
    reqs = [Request("a", [], s), Request("b", [], s)]
    got = to_completions(
        reqs,
        [RO(Out(1, "<think>t</think>B"), Out(0, "A")), RO(Out(0, "x"), Out(1, "y"))],
        get_parser("think"),
    )
    assert [(c.key, c.index, c.text, c.reasoning) for c in got] == [
        ("a", 0, "A", None),
        ("a", 1, "B", "t"),
        ("b", 0, "x", None),
        ("b", 1, "y", None),
    ]
    assert got[1].raw == "<think>t</think>B" and got[0].raw is None and got[0].n_tokens == 7


# ----------------------------------------------------------------------------- run folders


def test_run_writes_a_complete_self_describing_folder(tmp_path, data, model_dir):
    out = tmp_path / "run"
    runner = FakeRunner()
    outcome = execute(cfg(data, model_dir, out, system_prompt="Be brief."), factory(runner))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and runner.started and runner.closed
    assert run["model"]["name"] == "fake-model" and run["model"]["chat_template_sha256"]
    assert run["sampling"] == {
        "max_tokens": 16,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 0,
        "n": 1,
        "stop": [],
    }
    assert run["dataset_hash"] and run["task"] == "ifeval" and run["system_prompt"] == "Be brief."
    assert run["reasoning_parser"]["name"] == "think" and run["backend"]["chunk_size"] == 3
    assert run["engine"] == {"backend": "fake"} and run["generation"]["completions"] == 10
    assert {"python", "pydantic"} <= set(run["versions"])
    rows = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 10
    # the same answers through `ifharness score` give the same metrics
    task = ifharness.load_task("ifeval", data=data)
    expected = ifharness.score(task, rows).metrics
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(expected))
    assert outcome.result.metrics["truncation_rate"] == 1.0  # every sample 0 said "length"


def test_system_prompt_goes_first_unless_the_sample_has_one(data):
    from ifharness.run import build_requests

    task = ifharness.load_task("ifeval", data=data)
    reqs = build_requests(task, SamplingSettings(max_tokens=4), "SYS")
    assert reqs[0].messages[0] == {"role": "system", "content": "SYS"}
    assert reqs[0].messages[1]["role"] == "user"


def test_interrupted_run_resumes_to_the_same_result(tmp_path, data, model_dir):
    whole = execute(cfg(data, model_dir, tmp_path / "whole"), factory(FakeRunner()))
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        execute(cfg(data, model_dir, out), factory(FakeRunner(stop_after=2)))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and not (out / "metrics.json").exists()
    assert len((out / "completions.jsonl").read_text().splitlines()) == 6
    second = FakeRunner()
    resumed = execute(cfg(data, model_dir, out), factory(second))
    assert second.seen == [str(100 + i) for i in range(6, 10)]
    assert resumed.stats.skipped == 6 and resumed.stats.generated == 4
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and len(run["sessions"]) == 2
    assert (out / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    assert (out / "verdicts.jsonl").read_text() == (
        tmp_path / "whole" / "verdicts.jsonl"
    ).read_text()
    assert whole.result.metrics == resumed.result.metrics


def test_a_finished_run_rerun_generates_nothing(tmp_path, data, model_dir):
    execute(cfg(data, model_dir, tmp_path / "r"), factory(FakeRunner()))
    again = FakeRunner()
    outcome = execute(cfg(data, model_dir, tmp_path / "r"), factory(again))
    assert not again.started and outcome.stats.generated == 0 and outcome.stats.skipped == 10


def test_other_settings_are_refused_not_mixed(tmp_path, data, model_dir):
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        execute(cfg(data, model_dir, out), factory(FakeRunner(stop_after=1)))
    with pytest.raises(IfharnessError, match="other settings.*sampling.*--overwrite"):
        execute(cfg(data, model_dir, out, temperature=0.5), factory(FakeRunner()))
    with pytest.raises(IfharnessError, match="system_prompt"):
        execute(cfg(data, model_dir, out, system_prompt="hi"), factory(FakeRunner()))
    fresh = FakeRunner()
    execute(cfg(data, model_dir, out, temperature=0.5, overwrite=True), factory(fresh))
    assert len(fresh.seen) == 10


def test_limit_may_grow_between_attempts(tmp_path, data, model_dir):
    out = tmp_path / "r"
    execute(cfg(data, model_dir, out, limit=4), factory(FakeRunner()))
    more = FakeRunner()
    outcome = execute(cfg(data, model_dir, out, limit=7), factory(more))
    assert more.seen == ["104", "105", "106"] and outcome.result.metrics["n_prompts"] == 7


def test_n_samples_are_all_scored(tmp_path, data, model_dir):
    out = tmp_path / "r"
    outcome = execute(cfg(data, model_dir, out, n=2, temperature=0.7), factory(FakeRunner()))
    verdicts = [json.loads(x) for x in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdicts) == 20 and {v["sample"] for v in verdicts} == {0, 1}
    assert outcome.result.metrics["n_prompts"] == 10
    assert len((out / "completions.jsonl").read_text().splitlines()) == 20


def test_n_above_one_needs_sampling(tmp_path, data, model_dir):
    with pytest.raises(IfharnessError, match="identical greedy"):
        execute(cfg(data, model_dir, tmp_path / "r", n=3), factory(FakeRunner()))
    assert not (tmp_path / "r").exists()


def test_default_folder_is_results_model__task(tmp_path, data, model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = cfg(data, model_dir, tmp_path)
    c.out = None
    outcome = execute(c, factory(FakeRunner()))
    assert outcome.folder == Path("results") / "fake-model__ifeval"
    assert (tmp_path / "results" / "fake-model__ifeval" / "run.json").is_file()


def test_a_failing_runner_leaves_a_failed_run(tmp_path, data, model_dir):
    class Broken(FakeRunner):
        def start(self):
            raise IfharnessError("engine would not start")

    with pytest.raises(IfharnessError, match="would not start"):
        execute(cfg(data, model_dir, tmp_path / "r"), factory(Broken()))
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["status"] == "failed" and "would not start" in run["error"]


# ----------------------------------------------------------------------------- bad input


def cli(capsys, *args: Any) -> tuple[int, str]:
    code = main(["run", *map(str, args)])
    return code, capsys.readouterr().err


def test_model_path_that_does_not_exist(tmp_path, data, capsys):
    code, err = cli(
        capsys,
        "--model",
        tmp_path / "no-such-model",
        "--task",
        "ifeval",
        "--data",
        data,
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "not found: no such folder" in err
    assert not (tmp_path / "o").exists()


def test_model_given_as_a_file(tmp_path, data, capsys):
    f = tmp_path / "weights.gguf"
    f.write_bytes(b"GGUF")
    code, err = cli(
        capsys, "--model", f, "--task", "ifeval", "--data", data, "--out", tmp_path / "o"
    )
    assert code == 2 and "is a file; give a model folder" in err and not (tmp_path / "o").exists()


def test_folder_that_is_not_a_model(tmp_path, data, capsys):
    code, err = cli(
        capsys, "--model", tmp_path, "--task", "ifeval", "--data", data, "--out", tmp_path / "o"
    )
    assert code == 2 and "no config.json" in err and not (tmp_path / "o").exists()


def test_task_that_does_not_exist(tmp_path, model_dir, capsys):
    code, err = cli(
        capsys, "--model", model_dir, "--task", "no-such-task-xyz", "--out", tmp_path / "o"
    )
    assert code == 2 and "unknown task 'no-such-task-xyz'" in err and "bundled tasks are" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0", "-3"])
def test_limit_must_be_positive(tmp_path, data, model_dir, capsys, value):
    code, err = cli(
        capsys,
        "--model",
        model_dir,
        "--task",
        "ifeval",
        "--data",
        data,
        "--limit",
        value,
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "--limit must be at least 1" in err and not (tmp_path / "o").exists()


def test_model_folder_without_weights(tmp_path, data, model_dir, capsys):
    (model_dir / "model.safetensors").unlink()
    code, err = cli(
        capsys, "--model", model_dir, "--task", "ifeval", "--data", data, "--out", tmp_path / "o"
    )
    assert code == 2 and "holds no weights" in err and not (tmp_path / "o").exists()


def test_model_without_chat_template(tmp_path, data, model_dir, capsys):
    (model_dir / "chat_template.jinja").unlink()
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    code, err = cli(
        capsys, "--model", model_dir, "--task", "ifeval", "--data", data, "--out", tmp_path / "o"
    )
    assert code == 2 and "has no chat template" in err and "--chat-template FILE" in err
    assert not (tmp_path / "o").exists()


def test_chat_template_file_supplies_a_missing_template(tmp_path, model_dir):
    (model_dir / "chat_template.jinja").unlink()
    tpl = tmp_path / "t.jinja"
    tpl.write_text(TEMPLATE)
    ref = models.resolve(str(model_dir), str(tpl))
    assert (
        ref.chat_template == TEMPLATE and ref.details["chat_template_source"] == "--chat-template"
    )


def test_template_in_tokenizer_config_named_list(tmp_path, model_dir):
    (model_dir / "chat_template.jinja").unlink()
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "chat_template": [
                    {"name": "tool_use", "template": "T"},
                    {"name": "default", "template": "D"},
                ]
            }
        )
    )
    assert models.resolve(str(model_dir)).chat_template == "D"


def test_hub_id_not_cached_is_passed_on(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ref = models.resolve("some-org/some-model-xyz")
    assert (ref.source, ref.path, ref.name) == ("hub", "some-org/some-model-xyz", "some-model-xyz")


def test_bad_numbers(tmp_path, data, model_dir, capsys):
    for args, message in [
        (["--n", "0"], "--n must be"),
        (["--chunk-size", "0"], "--chunk-size"),
        (["--top-p", "0"], "--top-p"),
        (["--max-tokens", "0"], "--max-tokens"),
    ]:
        code, err = cli(
            capsys,
            "--model",
            model_dir,
            "--task",
            "ifeval",
            "--data",
            data,
            "--out",
            tmp_path / "o",
            *args,
        )
        assert code == 2 and message in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- model cache


def test_conversion_lock_lets_one_process_at_a_time(tmp_path):
    order: list[str] = []
    lock = tmp_path / ".convert.lock"
    waited = threading.Event()

    def second() -> None:
        with models._locked(lock, lambda msg: waited.set()):
            order.append("second")

    with models._locked(lock, print):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first")
    t.join(10)
    assert order == ["first", "second"] and waited.is_set()


def test_cache_root_follows_xdg_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("IFHARNESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_root() == tmp_path / "xdg" / "ifharness" / "models"
    monkeypatch.setenv("IFHARNESS_CACHE", str(tmp_path / "mine"))
    assert models.cache_root() == tmp_path / "mine" / "models"


# ----------------------------------------------------------------------------- stream schedule


class _FakeLLM:
    """Just enough of vllm.LLM for Engine.stream: queued requests finish after `steps` steps."""

    class _Out:
        def __init__(self, rid, text):
            self.request_id, self.finished = rid, True
            self.outputs = [
                type(
                    "O",
                    (),
                    {"index": 0, "text": text, "finish_reason": "stop", "token_ids": [0, 0]},
                )()
            ]

    def __init__(self, steps: int = 2, per_step: int = 3):
        self.queue: list[tuple[str, str, int]] = []
        self.counter = 0
        self.steps, self.per_step = steps, per_step
        self.max_in_engine = 0
        self.llm_engine = self

    def enqueue_chat(self, conversations, params, **kwargs):
        ids = []
        for conv in conversations:
            rid = f"{self.counter}-abc"  # vLLM returns "<n>-<suffix>" and reports "<n>"
            self.queue.append((rid, conv[-1]["content"], self.steps))
            ids.append(rid)
            self.counter += 1
        self.max_in_engine = max(self.max_in_engine, len(self.queue))
        return ids

    def step(self):
        running = self.queue[: self.per_step]
        self.queue = [(r, t, n - 1) for r, t, n in running] + self.queue[self.per_step :]
        done = [(r, t) for r, t, n in self.queue if n == 0]
        self.queue = [q for q in self.queue if q[2] > 0]
        return [self._Out(r.split("-")[0], f"answer to {t}") for r, t in done]


def _engine(fake, max_num_seqs=4):
    from ifharness.runners.vllm import Engine

    e = Engine.__new__(Engine)
    e.llm, e.max_num_seqs = fake, max_num_seqs
    e.options = type(
        "Opt",
        (),
        {"reasoning": get_parser("none"), "chat_template": None, "chat_template_kwargs": {}},
    )()
    e.sampling_params = lambda s, key: None
    return e


def test_stream_keeps_the_engine_fed_and_hands_back_every_chunk():
    from ifharness.runners.vllm import _NOTHING

    s = SamplingSettings(max_tokens=4)
    reqs = [Request(k, [{"role": "user", "content": f"q{k}"}], s) for k in range(11)]
    pending = [reqs[3:6], reqs[6:9], reqs[9:], None]
    fake = _FakeLLM()
    emitted: list[list[Completion]] = []
    more_calls = []

    def more():
        more_calls.append(1)
        return pending.pop(0) if pending else _NOTHING

    keep = _engine(fake).stream(reqs[:3], more, 3, emitted.append)
    assert keep is False  # the sentinel came through more()
    assert sorted(c.key for chunk in emitted for c in chunk) == list(range(11))
    assert all(len(chunk) >= 3 for chunk in emitted[:-1])
    assert {c.text for chunk in emitted for c in chunk} == {f"answer to q{k}" for k in range(11)}
    assert fake.max_in_engine <= 4 + 3  # max_num_seqs + chunk_size ahead, no more


def test_stream_takes_only_its_share_with_replicas():
    from ifharness.runners.vllm import _NOTHING

    s = SamplingSettings(max_tokens=4)
    reqs = [Request(k, [{"role": "user", "content": f"q{k}"}], s) for k in range(12)]
    pending = [reqs[2:4], reqs[4:6], reqs[6:8], reqs[8:10], reqs[10:]]
    fake = _FakeLLM(per_step=100)
    got = []
    _engine(fake, max_num_seqs=256).stream(
        reqs[:2], lambda: pending.pop(0) if pending else _NOTHING, 2, got.append, share=6
    )
    assert fake.max_in_engine <= 6 and len(pending) == 0  # took more as it drained, 6 at most
