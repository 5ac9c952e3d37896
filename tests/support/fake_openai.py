"""A small OpenAI-compatible server on loopback, with faults scripted per sample.

Real HTTP (``http.server`` in a thread, bound to 127.0.0.1 on an ephemeral port), so the
``openai`` backend's client, timeouts, retries and connection handling run as they would
against a real server:

* ``GET /v1/models`` lists ``models`` (a 404, as from a server without the endpoint, when
  ``models_endpoint`` is False);
* ``POST /v1/chat/completions`` answers ``reply(prompt)``, deterministic text built from
  the last user message (cut at ``max_tokens`` words, ``finish_reason: length``), and a
  404 ``model_not_found`` for a model it does not list;
* with ``upstream`` (a port on 127.0.0.1) it answers nothing itself: every request it does
  not fault is passed to that server (the slow tier puts it in front of a real vLLM).

Faults are scripted per *sample*, not per arrival, so a concurrent client meets the same
faults whatever order its requests go out in. The sample of a chat request is
``key_of(last user message)`` (default ``data.prompt_key``: the prompts of
``data.write_prompts``). ``script[key]`` lists the fates of that sample's first attempts,
in order (later attempts are ``ok``); ``always[key]`` is the fate of every attempt. Both
may be changed between runs; ``reset()`` forgets what was received and counted.

Fates: ``ok``; ``429`` (with ``Retry-After: retry_after`` unless that is None); ``500``;
``503``; ``400`` (a request the server will refuse again); ``garbage`` (200, a body that is
not JSON); ``not-chat`` (200, JSON that is not a chat completion); ``slow`` (the answer
comes after ``slow_s``, past the client's timeout); ``drop`` (the connection is closed with
no answer). With ``api_key`` set, any request without ``Authorization: Bearer <api_key>``
gets a 401; with ``leak_key`` every error message quotes the Authorization header it got,
as careless servers do, so a test can show the client scrubs it.

Bounded: the server shuts itself down after ``lifetime_s`` even if no one closes it; an
idle keep-alive connection is dropped after a few seconds; a slow answer is abandoned
when the server closes; every thread is a daemon.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .data import prompt_key

OK, GARBAGE, NOT_CHAT, SLOW, DROP = "ok", "garbage", "not-chat", "slow", "drop"
FATES = (OK, "429", "500", "503", "400", GARBAGE, NOT_CHAT, SLOW, DROP)
# A script that meets every fault a client must retry through, some in a row, on the first
# seven prompts of ``data.write_prompts`` (keys 1000-1006): each of them is answered in the end.
TRANSIENT: dict[int, list[str]] = {
    1000: ["429"],
    1001: ["500", "503"],
    1002: [GARBAGE],
    1003: [NOT_CHAT],
    1004: [DROP],
    1005: [SLOW],
    1006: ["429", DROP, "500"],
}


@dataclass(frozen=True)
class Hit:
    """One request the server received, and what it did with it."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    key: int | None  # the sample of a chat request, else None
    fate: str  # one of FATES, or "401"/"404" when refused before any script applied
    authorization: str
    body: Any  # the parsed JSON request body (None for a GET)


def reply(prompt: str) -> str:
    """What the server answers to ``prompt``: the same text every time, different per prompt."""
    return f"Here is my answer to {prompt.rstrip('.')} in plain words."


class FakeUpstream:
    """See the module docstring. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        models: Iterable[str] = ("tiny",),
        *,
        script: Mapping[int, Sequence[str]] | None = None,
        always: Mapping[int, str] | None = None,
        api_key: str | None = None,
        models_endpoint: bool = True,
        retry_after: str | None = "0",
        slow_s: float = 2.0,
        reasoning: bool = False,
        leak_key: bool = False,
        upstream: int | None = None,
        key_of: Callable[[str], int | None] = prompt_key,
        lifetime_s: float = 120.0,
    ):
        self.models = list(models)
        self.script = dict(script or {})
        self.always = dict(always or {})
        for fate in [*self.always.values(), *(f for s in self.script.values() for f in s)]:
            if fate not in FATES:
                raise ValueError(f"unknown fate {fate!r}; the fates are {', '.join(FATES)}")
        self.api_key, self.models_endpoint = api_key, models_endpoint
        self.retry_after, self.slow_s = retry_after, slow_s
        self.reasoning, self.leak_key = reasoning, leak_key
        self.upstream, self.key_of = upstream, key_of
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        self._attempts: dict[int | None, int] = {}
        self._closing = threading.Event()
        self._closed = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # an idle keep-alive connection ends by itself

            def log_message(self, *args: Any) -> None:  # nothing on the test's stderr
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            name="fake-openai",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True
        self._timer.start()

    # -- what a test uses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def chats(self, key: int | None = None) -> list[Hit]:
        """The chat-completion requests received (of one sample when ``key`` is given)."""
        return [
            h
            for h in self.hits
            if h.method == "POST"
            and h.path.endswith("/chat/completions")
            and (key is None or h.key == key)
        ]

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
            self._attempts.clear()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving

    def _fate(self, method: str, path: str, key: int | None, auth: str, model: Any) -> str:
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return "401"
        if method == "GET":
            return OK if self.models_endpoint or self.upstream else "404"
        if not path.endswith("/chat/completions"):
            return "404"
        if self.upstream is None and model not in self.models:
            return "404"
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        if key in self.always:
            return self.always[key]
        planned = self.script.get(key, ()) if key is not None else ()
        return planned[attempt] if attempt < len(planned) else OK

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        auth = h.headers.get("Authorization") or ""
        model = body.get("model") if isinstance(body, dict) else None
        key = None
        if isinstance(body, dict) and isinstance(body.get("messages"), list):
            users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            key = self.key_of(str(users[-1].get("content", ""))) if users else None
        fate = self._fate(method, h.path, key, auth, model)
        with self._lock:
            self._hits.append(Hit(time.monotonic(), method, h.path, key, fate, auth, body))

        leak = f" (the request had Authorization: {auth})" if self.leak_key else ""
        if fate == "401":
            return self._send(
                h,
                401,
                _error(
                    f"Incorrect API key provided{leak}", "invalid_request_error", "invalid_api_key"
                ),
            )
        if fate == "404":
            if method == "GET" or not h.path.endswith("/chat/completions"):
                return self._send(h, 404, {"detail": "Not Found"})
            return self._send(
                h,
                404,
                _error(
                    f"The model `{model}` does not exist.{leak}", "NotFoundError", "model_not_found"
                ),
            )
        if fate == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return self._send(h, 429, _error(f"rate limit reached{leak}", "rate_limit"), headers)
        if fate in ("500", "503", "400"):
            return self._send(h, int(fate), _error(f"fault {fate} injected{leak}", "fault"))
        if fate == GARBAGE:
            return self._send(h, 200, b'{"choices": [ this is not json')
        if fate == NOT_CHAT:
            return self._send(h, 200, {"object": "list", "data": []})
        if fate == DROP:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if fate == SLOW and self._closing.wait(self.slow_s):
            h.close_connection = True  # closed while waiting: hang up, answer nothing
            return None
        if self.upstream is not None:
            return self._forward(h, method, raw)
        if method == "GET":
            return self._send(
                h,
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models],
                },
            )
        return self._send(h, 200, self._completion(body, key))

    def _completion(self, body: dict[str, Any], key: int | None) -> dict[str, Any]:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        words = reply(str(users[-1].get("content", "")) if users else "").split()
        limit = body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and len(words) > limit:
            words, finish = words[:limit], "length"
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(words)}
        if self.reasoning:
            message["reasoning_content"] = f"Thinking about sample {key} first."
        n = int(body.get("n") or 1)
        return {
            "id": f"chatcmpl-{key}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {"index": i, "message": message, "finish_reason": finish} for i in range(n)
            ],
            "usage": {
                "prompt_tokens": 0,
                "completion_tokens": n * len(words),
                "total_tokens": n * len(words),
            },
        }

    def _forward(self, h: BaseHTTPRequestHandler, method: str, raw: bytes) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=120)
        try:
            conn.request(
                method, h.path, body=raw or None, headers={"Content-Type": "application/json"}
            )
            r = conn.getresponse()
            status, data = r.status, r.read()
        except OSError:  # the real server is gone (teardown while a slow answer waited)
            status, data = 502, json.dumps(_error("upstream gone", "fault")).encode()
        finally:
            conn.close()
        self._send(h, status, data)

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            h.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:  # the client gave up (its timeout) before the answer came
            h.close_connection = True


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; nothing holds it after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}
