"""``ifharness run --backend openai --models … --task quick``: the many-model sweep.

Fast tier: the fake OpenAI-compatible server (``tests.support.fake_openai``, real HTTP on
loopback) serves some names and not others. A name it does not serve is a failure of that
model only: the sweep records it in ``OUT/sweep.json`` and runs the next one. An endpoint
that cannot serve anyone (unreachable, key refused) stops the sweep, and the models not
tried are recorded as such. The sweep ends with one leaderboard, printed and written to
``OUT/leaderboard.html``: rows for the models that completed, the failed ones with their
reason, and the quick task's model × failure-family heat map.

Slow tier (the must-show): the same against a real vLLM api_server on loopback that serves
the tiny model under three names, with a fourth name broken on purpose; the HTML opened in
headless Chromium.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifharness.cli import main
from tests.support.data import read_jsonl
from tests.support.fake_openai import free_port
from tests.support.vllm_server import vllm_api_server

FAST = ["--retry-backoff", "0.01", "--request-timeout", "5", "--max-retries", "1"]
N_QUICK = 20


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def sweep(capsys, base_url: str, out: Path, models: str, *extra: str) -> tuple[int, str, str]:
    code = main(
        [
            "run",
            "--backend",
            "openai",
            "--base-url",
            base_url,
            "--models",
            models,
            "--task",
            "quick",
            "--out",
            str(out),
            "--max-tokens",
            "32",
            *FAST,
            *extra,
        ]
    )
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def quick_rows() -> list[dict]:
    return read_jsonl(Path(__file__).parents[1] / "tasks" / "quick.jsonl")


def sweep_record(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert doc["kind"] == "sweep" and doc["task"] == "quick" and doc["finished"]
    return {m["model"]: m for m in doc["models"]}


def failed_section(page: str) -> str:
    """The HTML leaderboard's "did not complete" section (up to the next heading)."""
    assert 'id="failed-models"' in page, "no failed-models section"
    return page.split('id="failed-models"', 1)[1].split("<h2", 1)[0]


def heat_cells(page: str) -> list[tuple[str, str]]:
    """The failure-family heat map's (row label, cell number) texts, in order."""
    m = re.search(r'<svg[^>]*data-chart="failure-families".*?</svg>', page, flags=re.S)
    assert m, "no failure-family heat map in the page"
    return re.findall(r'<text[^>]*text-anchor="(end|middle)">([^<]*)</text>', m.group(0))


def test_an_unserved_name_fails_alone_and_the_leaderboard_says_why(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models=["alpha", "beta"])
    listing = tmp_path / "models.txt"
    listing.write_text("alpha\nbroken  # not served\nbeta\n")
    out = tmp_path / "sweep"
    code, stdout, stderr = sweep(capsys, fake.base_url, out, f"@{listing}")
    assert code == 2, stderr[-3000:]  # one model failed
    assert {h.body["model"] for h in fake.chats()} == {"alpha", "beta"}
    assert len(fake.chats()) == 2 * N_QUICK  # nothing sent for broken, nothing twice

    record = sweep_record(out)
    assert list(record) == ["alpha", "broken", "beta"]  # sweep order
    for name in ("alpha", "beta"):
        assert record[name]["status"] == "complete" and record[name]["error"] is None
        assert record[name]["folder"] == name
        assert json.loads((out / name / "run.json").read_text())["status"] == "complete"
        assert len(read_jsonl(out / name / "completions.jsonl")) == N_QUICK
        families = {r["meta"]["family"] for r in read_jsonl(out / name / "samples.jsonl")}
        assert len(families) == N_QUICK
    assert record["broken"]["status"] == "failed"
    assert "'broken' is not served" in record["broken"]["error"]
    assert "alpha, beta" in record["broken"]["error"]  # what the server does serve

    # printed: the per-model summary, then one leaderboard with the failure named
    assert "broken: failed" in stdout and "alpha: complete" in stdout
    board = stdout.split("leaderboard:", 1)[1]
    assert "| alpha" in board and "| beta" in board and "| broken | failed |" in board
    assert "is not served" in board

    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    failed = failed_section(page)
    assert "<td>broken</td>" in failed and "is not served" in html.unescape(failed)
    assert "<td>alpha</td>" not in failed
    cells = heat_cells(page)
    rows = [t for a, t in cells if a == "end"]
    numbers = [int(t) for a, t in cells if a == "middle"]
    assert rows == ["alpha", "beta"]  # one heat-map row per completed model, none for broken
    assert len(numbers) == 2 * N_QUICK and set(numbers) <= {0, 100}  # one prompt per family
    metrics = json.loads((out / "alpha" / "metrics.json").read_text())
    passed = sum(n == 100 for n in numbers[:N_QUICK])
    assert passed == round(metrics["prompt_level_strict_acc"] * N_QUICK)

    # the leaderboard command reads the same from the folder (sweep.json), in html and md
    lb = tmp_path / "again.html"
    assert main(["leaderboard", str(out), "--format", "html", "--out", str(lb)]) == 0
    again = lb.read_text(encoding="utf-8")
    assert heat_cells(again) == cells and 'id="failed-models"' in again
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in doc["rows"]] == ["alpha", "beta"]
    assert [(f["model"], f["status"]) for f in doc["failed"]] == [("broken", "failed")]
    assert len(doc["rows"][0]["failure_families"]) == N_QUICK


def test_without_sweep_json_a_failed_run_folder_is_still_named(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models=["alpha"])
    out = tmp_path / "sweep"
    sweep(capsys, fake.base_url, out, "alpha,broken")
    (out / "sweep.json").unlink()
    assert main(["leaderboard", str(out), "--format", "md"]) == 0
    printed = capsys.readouterr()
    assert "| broken | failed |" in printed.out and "is not served" in printed.out
    assert "| alpha" in printed.out

    (out / "sweep.json").write_text('{"kind": "sweep", "models": [{"status": "failed"}]}')
    assert main(["leaderboard", str(out)]) == 2
    assert f"{out / 'sweep.json'}: models[0] needs a 'model'" in capsys.readouterr().err


def test_a_model_whose_first_request_fails_is_skipped_when_there_is_no_listing(
    tmp_path, capsys, fake_upstream
):
    """A server without ``GET /models``: the unknown name shows at its first chat request."""
    fake = fake_upstream(models=["alpha", "beta"], models_endpoint=False)
    out = tmp_path / "sweep"
    code, stdout, stderr = sweep(
        capsys, fake.base_url, out, "alpha,broken,beta", "--concurrency", "1"
    )
    assert code == 2, stderr[-3000:]
    record = sweep_record(out)
    assert [record[m]["status"] for m in ("alpha", "broken", "beta")] == [
        "complete",
        "failed",
        "complete",
    ]
    assert "does not know model 'broken'" in record["broken"]["error"]
    assert len([h for h in fake.chats() if h.body["model"] == "broken"]) == 1  # its first only


def test_a_model_whose_first_request_fails_is_skipped_after_that_request(
    tmp_path, capsys, fake_upstream
):
    """Listed, but every chat request refused: one request (and its capped retries) for the
    first prompt, then the model is skipped; the next model runs in full."""
    first = quick_rows()[0]["prompt"]  # the request the sweep sends first
    fake = fake_upstream(
        models=["alpha"], key_of=lambda p: 1 if p == first else None, always={1: "503"}
    )
    out = tmp_path / "sweep"
    code, stdout, stderr = sweep(capsys, fake.base_url, out, "alpha", "--max-retries", "5")
    assert code == 2, stderr[-3000:]
    entry = sweep_record(out)["alpha"]
    assert entry["status"] == "failed"
    assert entry["error"].startswith("its first request failed: ")
    assert "503" in entry["error"]
    assert len(fake.chats()) == 3  # the first prompt, tried 1 + 2 times, and nothing else
    assert "(no model completed)" in stdout
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    assert "<td>alpha</td>" in failed_section(page)
    assert 'data-chart="failure-families"' not in page
    capsys.readouterr()  # the leaderboard command: the failure, not its one-prompt run
    assert main(["leaderboard", str(out), "--format", "md"]) == 0
    printed = capsys.readouterr().out
    assert "| alpha | failed | its first request failed" in printed
    assert "| 1 | alpha" not in printed


def test_a_model_that_answers_nothing_past_its_first_request_is_failed(
    tmp_path, capsys, fake_upstream
):
    first = quick_rows()[0]["prompt"]
    fake = fake_upstream(
        models=["alpha"], key_of=lambda p: None if p == first else 1, always={1: "400"}
    )
    out = tmp_path / "sweep"
    code, stdout, _ = sweep(capsys, fake.base_url, out, "alpha")
    assert code == 3  # one answer came: scored, incomplete (19 failed), not a failed model
    entry = sweep_record(out)["alpha"]
    assert entry["status"] == "incomplete" and "19 sample(s) failed" in entry["error"]
    assert len(fake.chats()) == N_QUICK


def test_an_unreachable_endpoint_stops_the_sweep(tmp_path, capsys):
    out = tmp_path / "sweep"
    base = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    code, stdout, stderr = sweep(capsys, base, out, "alpha,beta,gamma")
    assert code == 2 and time.monotonic() - started < 20
    assert stderr.count("error:") == 1  # one attempt, for the first model only
    record = sweep_record(out)
    assert record["alpha"]["status"] == "failed" and "cannot reach" in record["alpha"]["error"]
    for name in ("beta", "gamma"):
        assert record[name]["status"] == "not run"
        assert "the sweep stopped" in record[name]["error"]
        assert not (out / name).exists()
    assert "beta: not run" in stdout


def test_a_refused_key_stops_the_sweep(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models=["alpha", "beta"], api_key="sk-right")
    out = tmp_path / "sweep"
    code, _, stderr = sweep(capsys, fake.base_url, out, "alpha,beta")
    assert code == 2 and "HTTP 401" in stderr
    assert [(h.method, h.path) for h in fake.hits] == [("GET", "/v1/models")]
    assert sweep_record(out)["beta"]["status"] == "not run"


def test_names_that_would_share_a_folder_are_refused(tmp_path, capsys, fake_upstream):
    fake = fake_upstream(models=["org/a", "org-a"])
    code, _, stderr = sweep(capsys, fake.base_url, tmp_path / "s", "org/a,org-a")
    assert code == 2 and "would share one run folder" in stderr
    assert fake.hits == []


# ----------------------------------------------------------------------------- slow: real vLLM


@pytest.fixture
def vllm_server(tiny_model, tmp_path):
    """vLLM's api_server on 127.0.0.1 serving the tiny model under the names a, b and c."""
    with vllm_api_server(tiny_model, ("a", "b", "c"), tmp_path / "server.log") as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")
@pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="httpx is not installed")
def test_sweep_against_a_real_vllm_server_with_one_name_broken(vllm_server, tmp_path):
    from tests.support.browser import dump_dom, screenshot, screenshot_dir

    listing = tmp_path / "models.txt"
    listing.write_text("a\nb\nbroken\nc\n")
    out = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ifharness.cli",
            "run",
            "--backend",
            "openai",
            "--base-url",
            vllm_server,
            "--models",
            f"@{listing}",
            "--task",
            "quick",
            "--out",
            str(out),
            "--max-tokens",
            "16",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
    )
    assert proc.returncode == 2, proc.stderr[-3000:]  # broken failed; the others did not
    record = sweep_record(out)
    assert list(record) == ["a", "b", "broken", "c"]
    for name in ("a", "b", "c"):
        assert record[name]["status"] == "complete", record[name]
        run = json.loads((out / name / "run.json").read_text())
        assert run["status"] == "complete" and run["model"]["name"] == name
        assert len(read_jsonl(out / name / "completions.jsonl")) == N_QUICK
        assert len(read_jsonl(out / name / "verdicts.jsonl")) == N_QUICK
    assert record["broken"]["status"] == "failed"
    assert "'broken' is not served" in record["broken"]["error"]
    board = proc.stdout.split("leaderboard:", 1)[1]
    for name in ("a", "b", "c"):
        assert f"| {name} " in board
    assert "| broken | failed |" in board and "is not served" in board

    page_path = out / "leaderboard.html"
    cells = heat_cells(page_path.read_text(encoding="utf-8"))
    assert [t for a, t in cells if a == "end"] == ["a", "b", "c"]
    assert len([t for a, t in cells if a == "middle"]) == 3 * N_QUICK
    dom = dump_dom(page_path)
    assert 'data-ready="1"' in dom
    assert 'data-chart="failure-families"' in dom and 'id="failed-models"' in dom
    assert "broken" in failed_section(dom) and "is not served" in failed_section(dom)
    png = screenshot_dir(tmp_path) / "sweep-leaderboard.png"
    assert screenshot(page_path, png) == (1400, 1800)
    assert png.stat().st_size > 20_000
