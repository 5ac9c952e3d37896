"""The openai runner against a real vLLM OpenAI-compatible server, behind scripted faults.

Slow tier. One server for the module (the tiny random Llama of ``tiny_model``, on loopback);
in front of it a ``FakeUpstream`` that injects faults per sample (429 with Retry-After, 500,
a body that is not JSON, one that is not a chat completion, an answer slower than
--request-timeout, a dropped connection) and passes everything else through. Two samples
fail every attempt in the first run, so they end in failed.jsonl; the same command run again
must retry exactly those and finish the run. The answers must then be the offline vllm
runner's, greedy, text for text, and so must the verdicts and metrics. The fault, retry,
failed.jsonl and exit-code paths themselves are pinned, fast, in ``test_runner_openai.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from ifharness.cli import main
from tests.support.data import KEY_BASE, read_jsonl, write_prompts
from tests.support.fake_openai import TRANSIENT
from tests.support.vllm_server import vllm_api_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="httpx is not installed"),
]

SERVED = "tiny"
N_PROMPTS = 12
MAX_TOKENS = 24
ALWAYS_FAIL = {1008, 1010}  # keys refused every attempt, in the first run
SCRIPT = TRANSIENT  # keys 1000-1006: every fault a client must retry through, then answered


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """vLLM's api_server on 127.0.0.1 (``tests/support/vllm_server.py``); its log goes to a
    file the test greps."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with vllm_api_server(tiny_model, (SERVED,), log_path) as port:
        yield {"port": port, "log": log_path}


def ifharness(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ifharness.cli", "run", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_faults_failures_rerun_and_parity_with_offline_vllm(
    tmp_path, tiny_model, server, fake_upstream
):
    secret = "sk-" + secrets.token_hex(16)
    proxy = fake_upstream(
        upstream=server["port"],
        script=SCRIPT,
        always=dict.fromkeys(ALWAYS_FAIL, "503"),
        retry_after="1",
        slow_s=7.0,
        leak_key=True,
        lifetime_s=1200,
    )
    data = write_prompts(tmp_path / "prompts.jsonl", N_PROMPTS)
    out = tmp_path / "run"
    args = [
        "--backend",
        "openai",
        "--base-url",
        proxy.base_url,
        "--model",
        SERVED,
        "--api-key-env",
        "IFH_TEST_KEY",
        "--task",
        "ifeval",
        "--data",
        str(data),
        "--max-tokens",
        str(MAX_TOKENS),
        "--out",
        str(out),
        "--concurrency",
        "3",
        "--request-timeout",
        "5",
        "--max-retries",
        "5",
        "--retry-backoff",
        "0.05",
        "--chunk-size",
        "4",
    ]
    started = time.monotonic()
    first = ifharness(*args, env={"IFH_TEST_KEY": secret})
    first_s = time.monotonic() - started
    assert first.returncode == 3, first.stderr[-3000:]  # scored, but incomplete
    assert "incomplete" in first.stderr and "failed.jsonl" in first.stderr
    assert {h.authorization for h in proxy.hits} == {f"Bearer {secret}"}  # the key was used …
    done_keys = [r["key"] for r in read_jsonl(out / "completions.jsonl")]
    failed = read_jsonl(out / "failed.jsonl")
    assert len(done_keys) == len(set(done_keys))  # … no sample twice …
    assert {r["key"] for r in failed} == ALWAYS_FAIL
    assert set(done_keys) == set(range(KEY_BASE, KEY_BASE + N_PROMPTS)) - ALWAYS_FAIL
    assert all(r["attempts"] == 6 and r["status"] == 503 for r in failed)
    for key, fates in SCRIPT.items():  # every fault was met, then passed through
        assert [h.fate for h in proxy.chats(key)] == [*fates, "ok"], key
    limited, after = proxy.chats(1000)  # Retry-After: 1 was waited for
    assert after.at - limited.at >= 0.95
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "incomplete" and run["backend"]["name"] == "openai"
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["missing"]) == sorted(ALWAYS_FAIL)

    # the same command again (faults still scripted): only the two failed samples are asked
    proxy.reset()
    proxy.always = {}
    second = ifharness(*args, env={"IFH_TEST_KEY": secret})
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming {out}: {N_PROMPTS - 2}/{N_PROMPTS} samples already generated" in second.stderr
    assert {h.key for h in proxy.chats()} == ALWAYS_FAIL
    assert not (out / "failed.jsonl").exists()
    final = read_jsonl(out / "completions.jsonl")
    assert sorted(r["key"] for r in final) == list(range(KEY_BASE, KEY_BASE + N_PROMPTS))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and "error" not in run
    assert [s.get("status") for s in run["sessions"]] == ["incomplete", "complete"]

    # the key is nowhere: not in a file of the run folder, not in what was printed
    for f in out.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
    for text in (
        first.stdout,
        first.stderr,
        second.stdout,
        second.stderr,
        server["log"].read_text(errors="replace"),
    ):
        assert secret not in text
    assert "IFH_TEST_KEY" in (out / "run.json").read_text()

    # parity: the offline vllm runner, greedy, same model and prompts
    offline = tmp_path / "offline"
    assert (
        main(
            [
                "run",
                "--model",
                str(tiny_model),
                "--task",
                "ifeval",
                "--data",
                str(data),
                "--out",
                str(offline),
                "--max-tokens",
                str(MAX_TOKENS),
                "--chunk-size",
                str(N_PROMPTS),
            ]
        )
        == 0
    )
    expected = {
        r["key"]: (r["response"], r["finish_reason"])
        for r in read_jsonl(offline / "completions.jsonl")
    }
    assert {r["key"]: (r["response"], r["finish_reason"]) for r in final} == expected
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        (offline / "metrics.json").read_text()
    )
    assert (out / "verdicts.jsonl").read_text() == (offline / "verdicts.jsonl").read_text()
    print(f"first run with faults: {first_s:.1f} s")


def test_many_models_on_one_real_server(tmp_path, server):
    data = write_prompts(tmp_path / "prompts.jsonl", 3)
    base = f"http://127.0.0.1:{server['port']}/v1"
    r = ifharness(
        "--backend",
        "openai",
        "--base-url",
        base,
        "--models",
        f"{SERVED},no-such-model",
        "--task",
        "ifeval",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        "--max-tokens",
        "8",
        timeout=120,
    )
    assert r.returncode == 2, r.stderr[-2000:]  # one of the two failed: vLLM's listing says so
    assert "'no-such-model' is not served" in r.stderr and SERVED in r.stderr
    run = json.loads((tmp_path / "runs" / SERVED / "run.json").read_text())
    assert run["status"] == "complete" and run["model"]["name"] == SERVED
    assert len(read_jsonl(tmp_path / "runs" / SERVED / "completions.jsonl")) == 3
