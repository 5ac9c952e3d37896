"""The backend registry and the one driver: a backend from outside the package, found through
the public API and through the ``ifharness.backends`` entry point group, run by ``ifharness
run`` with no other edit; flags, validation and identity derived from its options model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifharness.cli import main
from ifharness.errors import IfharnessError
from ifharness.models import ModelRef
from ifharness.reasoning import get as get_parser
from ifharness.rundir import CompletionStore
from ifharness.runners import registry
from ifharness.runners.base import (
    Chunk,
    Completion,
    Failure,
    Request,
    SamplingSettings,
    drive,
    request_seed,
    to_completion,
)
from tests.support.data import KEY_BASE, read_jsonl, write_prompts

# A backend as a third party writes it: one module, the registry's public API only.
TOY_BACKEND = """
from typing import Literal

from pydantic import Field

from ifharness.models import ModelRef
from ifharness.runners.base import Chunk, Failure, chunked, to_completion
from ifharness.runners.registry import BackendOptions, register_backend


class ToyOptions(BackendOptions):
    style: Literal["plain", "shout"] = Field("plain", description="how the toy answers")
    fail_key: int | None = Field(None, description="a key the toy gives up on, once")
    think: bool = Field(True, description="wrap a trace in <think> tags before the answer")
    marker: str = Field(description="a file the toy writes into when it fails, once")


class ToyRunner:
    name = "toy"

    def __init__(self, options, parser):
        self.options, self.parser = options, parser

    def start(self):
        pass

    def close(self):
        pass

    def describe(self):
        return {"backend": "toy", "style": self.options.style}

    def generate(self, requests, chunk_size):
        from pathlib import Path

        marker = Path(self.options.marker)
        for part in chunked(list(requests), chunk_size):
            chunk = Chunk()
            for r in part:
                if r.key == self.options.fail_key and not marker.exists():
                    marker.write_text("failed once")
                    chunk.failures.append(Failure(r.key, "the toy says no", attempts=2))
                    continue
                text = f"toy answer {r.key} in plain words"
                if self.options.style == "shout":
                    text = text.upper()
                if self.options.think:
                    text = "<think>hmm</think>" + text
                chunk.completions.append(to_completion(r.key, 0, text, self.parser,
                                                       finish_reason="stop", n_tokens=4))
            yield chunk


def toy_model(options, model, chat_template):
    return ModelRef(model or "toy-model", "toy://" + (model or "toy-model"), "toy", None)


@register_backend("toy", options=ToyOptions, summary="answers from nowhere",
                  resolve_model=toy_model)
def toy(options, run, model, parser):
    return ToyRunner(options, parser)
"""


@pytest.fixture
def outside_module(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh module name on sys.path holding TOY_BACKEND, forgotten afterwards."""
    name = f"toy_backend_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / f"{name}.py").write_text(TOY_BACKEND)
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def data(tmp_path) -> Path:
    return write_prompts(tmp_path / "prompts.jsonl", 7)


def test_a_backend_from_outside_runs_through_ifharness_run(tmp_path, data, outside_module, capsys):
    out = tmp_path / "run"
    marker = tmp_path / "failed-once"
    args = [
        "run",
        "--backend",
        "toy",
        "--task",
        "ifeval",
        "--data",
        str(data),
        "--out",
        str(out),
        "--style",
        "shout",
        "--fail-key",
        str(KEY_BASE + 2),
        "--marker",
        str(marker),
        "--chunk-size",
        "3",
    ]
    with registry.temporary_backends():
        __import__(outside_module)
        assert main(args) == 3, capsys.readouterr().err  # scored, one sample failed
        run = json.loads((out / "run.json").read_text())
        assert run["status"] == "incomplete"
        assert run["backend"] == {
            "name": "toy",
            "style": "shout",
            "fail_key": KEY_BASE + 2,
            "think": True,
            "marker": str(marker),
            "chunk_size": 3,
            "engine_args": {},
        }
        assert run["identity"]["backend"] == "toy" and run["engine"] == {
            "backend": "toy",
            "style": "shout",
        }
        rows = read_jsonl(out / "completions.jsonl")
        assert len(rows) == 6 and rows[0]["response"].startswith("TOY ANSWER")
        assert rows[0]["reasoning"] == "hmm" and rows[0]["raw"].startswith("<think>")
        failed = read_jsonl(out / "failed.jsonl")
        assert [(r["key"], r["error"], r["attempts"]) for r in failed] == [
            (KEY_BASE + 2, "the toy says no", 2)
        ]

        # the same command again asks only for the failed sample, which now succeeds
        assert main(args) == 0
        assert not (out / "failed.jsonl").exists()
        assert json.loads((out / "run.json").read_text())["status"] == "complete"
        assert sorted(r["key"] for r in read_jsonl(out / "completions.jsonl")) == [
            KEY_BASE + i for i in range(7)
        ]

        # its flags are its own: another backend's flag is refused, naming its backend
        assert (
            main(
                [
                    "run",
                    "--backend",
                    "toy",
                    "--task",
                    "ifeval",
                    "--data",
                    str(data),
                    "--marker",
                    "m",
                    "--concurrency",
                    "2",
                    "--out",
                    str(tmp_path / "x"),
                ]
            )
            == 2
        )
        assert "--concurrency belongs to the openai backend" in capsys.readouterr().err
        assert (
            main(
                [
                    "run",
                    "--style",
                    "shout",
                    "--task",
                    "ifeval",
                    "--data",
                    str(data),
                    "--out",
                    str(tmp_path / "x"),
                ]
            )
            == 2
        )
        assert "--style belongs to the toy backend" in capsys.readouterr().err
        # validation from the options model, one line naming the flag
        assert (
            main(
                [
                    "run",
                    "--backend",
                    "toy",
                    "--task",
                    "ifeval",
                    "--data",
                    str(data),
                    "--out",
                    str(tmp_path / "x"),
                ]
            )
            == 2
        )
        assert "--backend toy needs --marker" in capsys.readouterr().err
        # a default-True bool is turned off by --no-<name>
        opts = registry.get_backend("toy").parse_options({"marker": "m", "think": False})
        assert opts.think is False and opts.to_json()["think"] is False
        assert not (tmp_path / "x").exists()
    # the registration did not outlive the block
    with pytest.raises(IfharnessError, match="unknown backend 'toy'"):
        registry.get_backend("toy")
    assert "toy" not in registry.backend_names()


def _dist(site: Path, module: str, entry_points: str) -> None:
    info = site / "toy-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_backend_is_found_through_the_entry_point_group(tmp_path, monkeypatch):
    module = f"toy_plugin_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{module}.py").write_text(
        TOY_BACKEND
        + textwrap.dedent("""
        from ifharness.runners.registry import Backend

        def make():
            return Backend("toy-made", ToyOptions, toy, summary="made by a callable")
    """)
    )
    _dist(
        site,
        module,
        textwrap.dedent(f"""
        [ifharness.backends]
        toy = {module}
        toy-made = {module}:make
        broken = {module}_no_such_module
    """),
    )
    monkeypatch.syspath_prepend(str(site))
    try:
        with registry.temporary_backends():
            with pytest.warns(RuntimeWarning, match="broken.*skipped: ModuleNotFoundError"):
                registry.load_entry_points()
            assert {"toy", "toy-made"} <= set(registry.backend_names())
            assert registry.get_backend("toy").module == module
            assert registry.get_backend("toy-made").summary == "made by a callable"
        assert "toy" not in registry.backend_names()
    finally:
        sys.modules.pop(module, None)


def test_builtin_backends_and_their_flags():
    assert registry.backend_names()[0] == "vllm"
    assert {"vllm", "openai", "hf", "replay"} <= set(registry.backend_names())
    openai = registry.get_backend("openai").parse_options({"base_url": "http://h/v1"})
    assert openai.to_json() == {
        "base_url": "http://h/v1",
        "api_key_env": None,
        "concurrency": 8,
        "request_timeout": 600.0,
        "max_retries": 6,
        "retry_backoff": 1.0,
        "request_seed": True,
    }
    parser = __import__("ifharness.cli", fromlist=["build_parser"]).build_parser()
    args = parser.parse_args(
        [
            "run",
            "--backend",
            "openai",
            "--base-url",
            "http://h/v1",
            "--no-request-seed",
            "--api-key-env",
            "MY_KEY",
        ]
    )
    opts = registry.options_from_args(args, "openai")
    assert opts.request_seed is False and opts.api_key_env == "MY_KEY"
    with pytest.raises(IfharnessError, match=r"--concurrency must be at least 1 \(got 0\)"):
        registry.get_backend("openai").parse_options({"base_url": "http://h", "concurrency": 0})
    with pytest.raises(IfharnessError, match="registered twice"):
        registry.register_backend("vllm", options=registry.BackendOptions)(lambda *a: None)


def test_identities_are_those_older_folders_were_made_with(tmp_path):
    """vllm adds nothing, other backends their name, replay the file's sha256 too."""
    from ifharness.loader import load_task
    from ifharness.run import RunConfig, identity, parser_for, resolve_model

    data = write_prompts(tmp_path / "p.jsonl", 2)
    task = load_task("ifeval", data=str(data))
    s = SamplingSettings(max_tokens=4)
    model = ModelRef("m", "/models/m", "local", "T")
    common = [
        "model",
        "chat_template_sha256",
        "task",
        "dataset_hash",
        "profile",
        "sampling",
        "system_prompt",
        "chat_template_kwargs",
        "reasoning_parser",
    ]
    vllm = identity(model, task, s, RunConfig(), get_parser("think"))
    assert list(vllm) == common
    hf = identity(model, task, s, RunConfig(backend="hf"), get_parser("think"))
    assert list(hf) == [*common, "backend"] and hf["backend"] == "hf"
    answers = tmp_path / "a.jsonl"
    answers.write_text('{"key": 1, "response": "x"}\n')
    cfg = RunConfig(backend="replay", options={"responses": str(answers)})
    ref = resolve_model(cfg)
    assert parser_for(cfg, ref).name == "none"
    replay = identity(ref, task, s, cfg, parser_for(cfg, ref))
    assert list(replay) == [*common, "backend", "responses_sha256"]
    assert replay["responses_sha256"] == ref.details["sha256"]


def test_importing_the_registry_and_cli_stays_light():
    code = (
        "import sys, ifharness.cli as c; c.build_parser(); "
        "print([m for m in ('vllm', 'torch', 'transformers', 'httpx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the driver


class Scripted:
    name = "scripted"

    def __init__(self, *chunks: Chunk | list[Completion]):
        self.chunks = chunks

    def generate(self, requests, chunk_size):
        yield from self.chunks


class Failures:
    def __init__(self) -> None:
        self.rows: list[Failure] = []

    def record_failure(self, failure: Failure) -> None:
        self.rows.append(failure)


def _requests(*keys: int) -> list[Request]:
    return [
        Request(k, [{"role": "user", "content": str(k)}], SamplingSettings(max_tokens=4))
        for k in keys
    ]


def test_one_driver_writes_completions_and_hands_over_failures(tmp_path):
    store, sink = CompletionStore(tmp_path / "c.jsonl"), Failures()
    runner = Scripted(
        Chunk([Completion(1, 0, "a")], [Failure(2, "no")]), [Completion(3, 0, "c")]
    )  # a plain list is a chunk without failures
    stats = drive(runner, _requests(1, 2, 3), store, 2, failures=sink)
    assert (stats.generated, stats.failed) == (2, 1) and store.done == {"1", "3"}
    assert [f.key for f in sink.rows] == [2]


def test_the_driver_refuses_what_it_cannot_record(tmp_path):
    with pytest.raises(IfharnessError, match="could not generate key 2: no"):
        drive(
            Scripted(Chunk([], [Failure(2, "no")])),
            _requests(2),
            CompletionStore(tmp_path / "a.jsonl"),
            2,
        )
    with pytest.raises(IfharnessError, match="gave up on key 1"):
        drive(
            Scripted(Chunk([Completion(1, 0, "a")], [Failure(1, "no")])),
            _requests(1),
            CompletionStore(tmp_path / "b.jsonl"),
            2,
            failures=Failures(),
        )
    with pytest.raises(IfharnessError, match="no completion for keys 2"):
        drive(
            Scripted(Chunk([Completion(1, 0, "a")])),
            _requests(1, 2),
            CompletionStore(tmp_path / "c.jsonl"),
            2,
            failures=Failures(),
        )


def test_the_reasoning_split_and_the_seed_live_in_the_base():
    c = to_completion("k", 1, "<think>t</think>A", get_parser("think"), n_tokens=3)
    assert (c.text, c.reasoning, c.raw, c.n_tokens) == ("A", "t", "<think>t</think>A", 3)
    kept = to_completion("k", 0, "<think>t</think>A", get_parser("think"), reasoning="apart")
    assert (kept.text, kept.reasoning, kept.raw) == ("<think>t</think>A", "apart", None)
    assert to_completion("k", 0, "plain", get_parser("think")).raw is None
    # the values runs were seeded with before the seed moved here
    assert request_seed(0, 1) == 676825709 and request_seed(0, 1, namespace="hf") == 1242522389
