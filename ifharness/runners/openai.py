"""The ``openai`` runner: any OpenAI-compatible chat-completions server.

A ``vllm serve`` (or ``python -m vllm.entrypoints.openai.api_server``), SGLang, a hosted API:
anything that answers ``POST {base_url}/chat/completions``.

How it talks to the server
--------------------------
* **Async, bounded.** An asyncio loop in a helper thread runs ``concurrency`` workers over
  one ``httpx.AsyncClient``; finished samples are handed to the driver, which writes them
  every ``chunk_size`` keys (``runners.base``), so a killed run keeps what came back.
* **Retries.** 429, 408, 5xx, a timeout, a refused or dropped connection and a body that is
  not a chat completion are retried up to ``max_retries`` times, waiting ``base * 2**attempt``
  seconds (capped at ``max_backoff_s``), jittered (a uniform draw between half and all of
  it, so clients that failed together do not retry together), or at least the server's
  ``Retry-After`` when it sends one (capped the same way). ``request_timeout_s`` bounds each
  attempt as a whole (connect, send, wait, read), not only each socket read.
* **A request that still fails** (retries spent, or a 400/422 the server will give again) is
  handed to the driver as a :class:`~ifharness.runners.base.Failure` in the next chunk, at
  once; the run goes on. The driver records it
  in ``failed.jsonl`` in the run folder and nothing in ``completions.jsonl``, so resuming
  (running the same command again) retries exactly the failed and the missing samples, and
  no sample is ever written twice. See ``ifharness.run``.
* **Fail fast, without hammering.** Before any work ``start()`` sends one ``GET /models``:
  an unreachable base URL, a 401/403, or a model the server does not list stops the run with
  one message. Servers without ``/models`` are probed by the first chat request instead;
  a 401, 403 or 404 (unknown model) on any request stops the run (in-flight requests are
  cancelled, nothing else is sent).
* **The API key** is read from the environment variable named by ``api_key_env`` and only
  ever put in the ``Authorization`` header. It is never stored on the runner's description,
  never in run.json, and scrubbed from every error text this module produces.

Reasoning: a trace the server returns apart (``message.reasoning``, or the older
``reasoning_content``) is kept apart as it came; otherwise the model's reasoning parser
splits the content, exactly as for the vllm runner.

Seeds: at temperature 0 no seed is sent. With temperature > 0 each request carries a seed
derived from the run's seed and the sample key (as the vllm runner does on a GPU), unless
``request_seed=False``: vLLM's CPU server cannot take per-request seeds when sampling.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from ..errors import IfharnessError
from ..reasoning import Parser
from ..reasoning import get as get_parser
from .base import Chunk, Completion, Failure, Request, request_seed, to_completion
from .registry import BackendOptions, RunContext, register_backend

if TYPE_CHECKING:
    from ..models import ModelRef

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(IfharnessError):
    """The endpoint cannot serve this run at all (unreachable, key refused, unknown model).

    ``every_model`` is True when trying another model on the same endpoint is pointless.
    """

    def __init__(self, message: str, every_model: bool = True):
        super().__init__(message)
        self.every_model = every_model


@dataclass
class OpenAIOptions:
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str  # the name the server knows the model by
    api_key_env: str | None = None  # None: OPENAI_API_KEY when set, else no key
    concurrency: int = 8
    request_timeout_s: float = 600.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    max_backoff_s: float = 60.0
    connect_timeout_s: float = 10.0
    probe: bool = True  # GET /models before anything else
    request_seed: bool = True  # send a per-request seed when temperature > 0
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)  # more request fields
    reasoning: Parser = field(default_factory=lambda: get_parser("think"))
    jitter_seed: int | None = None  # seeds the backoff jitter (tests); None: random


class OpenAIBackendOptions(BackendOptions):
    """``ifharness run --backend openai``: where the server is and how hard to try it."""

    base_url: str = Field(description="the server's API root, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(
        None,
        description="environment variable holding the API key (default: "
        "OPENAI_API_KEY when set, else no key); the key itself is never written anywhere",
        json_schema_extra={"metavar": "VAR"},
    )
    concurrency: int = Field(8, ge=1, description="requests in flight")
    request_timeout: float = Field(
        600.0, gt=0, description="seconds for one attempt of one request, whole"
    )
    max_retries: int = Field(
        6, ge=0, description="retries of a request on 429, 5xx, timeouts and broken connections"
    )
    retry_backoff: float = Field(
        1.0,
        ge=0,
        description="first retry wait in seconds, doubled each retry, jittered; Retry-After wins",
    )
    request_seed: bool = Field(
        True,
        description="send a per-request seed when sampling (vLLM's CPU server cannot take one)",
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        return value


def _server_model(
    options: OpenAIBackendOptions, model: str | None, chat_template: str | None
) -> ModelRef:
    """``--model`` is the name the server knows: nothing local to check."""
    from ..models import ModelRef

    if not model:
        raise IfharnessError(
            "--backend openai needs --model: the model's name on the server (GET /models)"
        )
    return ModelRef(
        model.rstrip("/").split("/")[-1] or model,
        model,
        "server",
        None,
        {"base_url": options.base_url.rstrip("/")},
    )


def _require_httpx() -> None:
    import importlib.util

    if importlib.util.find_spec("httpx") is None:
        raise IfharnessError("the openai backend needs httpx: pip install httpx")


@register_backend(
    "openai",
    options=OpenAIBackendOptions,
    summary="any OpenAI-compatible chat-completions server",
    resolve_model=_server_model,
    require=_require_httpx,
)
def openai_backend(
    options: OpenAIBackendOptions, run: RunContext, model: ModelRef, parser: Parser
) -> OpenAIRunner:
    return OpenAIRunner(
        OpenAIOptions(
            base_url=options.base_url,
            model=model.path,
            api_key_env=options.api_key_env,
            concurrency=options.concurrency,
            request_timeout_s=options.request_timeout,
            max_retries=options.max_retries,
            backoff_base_s=options.retry_backoff,
            request_seed=options.request_seed,
            chat_template_kwargs=dict(run.chat_template_kwargs),
            extra_body={k: v for k, v in run.engine_args.items() if k != "max_model_len"},
            reasoning=parser,
        )
    )


class _Retryable(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class _Permanent(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Fatal(Exception):
    pass


def api_key(env_name: str | None) -> tuple[str | None, str]:
    """The key and the variable it came from; a named variable that is unset is an error."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise IfharnessError(
                f"--api-key-env {env_name}: the environment variable "
                f"{env_name} is not set (or empty)"
            )
        return value, env_name
    value = os.environ.get(DEFAULT_API_KEY_ENV) or None
    return value, DEFAULT_API_KEY_ENV if value else ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Exponential backoff with jitter; the server's Retry-After wins when it says more."""
    ceiling = min(cap, base * (2**attempt))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def error_text(response: Any) -> str:
    """A short description of an error response (its JSON ``error.message`` when present)."""
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - any body at all
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or json.dumps(err)[:300]
        else:
            msg = str(err)
    else:
        msg = response.text[:300] if hasattr(response, "text") else ""
    return f"HTTP {response.status_code}: {str(msg).strip()[:300]}"


def unknown_model(status: int, text: str) -> bool:
    lowered = text.lower()
    return (
        status == 404
        or "model_not_found" in lowered
        or ("model" in lowered and "does not exist" in lowered)
    )


def parse_choices(request: Request, body: Any, parser: Parser) -> list[Completion]:
    """A chat-completion body to completions; raises ``_Retryable`` on a malformed one."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise _Retryable("the server sent a body that is not a chat completion")
    choices = body["choices"]
    n = request.sampling.n
    if len(choices) != n:
        raise _Retryable(f"the server sent {len(choices)} choices for n={n}")
    given_usage = body.get("usage")
    usage: dict[str, Any] = given_usage if isinstance(given_usage, dict) else {}
    total = int(usage.get("completion_tokens") or 0)
    out = []
    for pos, choice in enumerate(sorted(choices, key=lambda c: c.get("index", 0))):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise _Retryable("a choice without a message")
        content = message.get("content")
        content = content if isinstance(content, str) else ""
        trace = message.get("reasoning")
        if not isinstance(trace, str):
            trace = message.get("reasoning_content")
        # usage counts all choices together; with n > 1 it is shared out evenly
        tokens = total // n + (1 if pos < total % n else 0)
        # a trace the server split off is kept as it came; otherwise the parser splits
        out.append(
            to_completion(
                request.key,
                pos,
                content,
                parser,
                reasoning=trace if isinstance(trace, str) else None,
                finish_reason=choice.get("finish_reason"),
                n_tokens=tokens,
            )
        )
    return out


class OpenAIRunner:
    """The ``openai`` backend (see the module docstring)."""

    name = "openai"

    def __init__(self, options: OpenAIOptions):
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        self._key, self._key_env = api_key(options.api_key_env)
        self.requests_sent = 0
        self.served_models: list[str] | None = None
        self._rng = random.Random(options.jitter_seed)

    # -- secrets

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _client(self) -> Any:
        import httpx

        timeout = httpx.Timeout(
            self.options.request_timeout_s,
            connect=min(self.options.connect_timeout_s, self.options.request_timeout_s),
        )
        limits = httpx.Limits(
            max_connections=self.options.concurrency,
            max_keepalive_connections=self.options.concurrency,
        )
        return httpx.AsyncClient(
            timeout=timeout, limits=limits, headers=self._headers(), trust_env=False
        )

    # -- lifecycle

    def start(self) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise IfharnessError("the openai backend needs httpx: pip install httpx") from None
        if self.options.probe:
            asyncio.run(self._probe())

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": o.model,
            "api_key_env": self._key_env or None,  # the variable's name, never its value
            "concurrency": o.concurrency,
            "request_timeout_s": o.request_timeout_s,
            "max_retries": o.max_retries,
            "backoff_base_s": o.backoff_base_s,
            "max_backoff_s": o.max_backoff_s,
            "request_seed": o.request_seed,
            "chat_template_kwargs": o.chat_template_kwargs,
            "served_models": self.served_models,
            "httpx": _version("httpx"),
        }

    async def _probe(self) -> None:
        """One ``GET /models``: is the server there, does it take the key, does it know the
        model?"""
        import httpx

        url = f"{self.base_url}/models"
        last = ""
        async with self._client() as client:
            for attempt in range(3):  # only 429/5xx are tried again, and at most twice
                self.requests_sent += 1
                try:
                    response = await asyncio.wait_for(
                        client.get(url), self.options.request_timeout_s + 1
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout, OSError) as e:
                    raise EndpointError(
                        f"cannot reach {self.base_url} ({type(e).__name__}: "
                        f"{self._scrub(str(e)) or 'no answer'}); is the server running, and is "
                        "--base-url right (it ends in /v1 for vLLM)?"
                    ) from None
                except (httpx.HTTPError, asyncio.TimeoutError) as e:
                    last = f"{type(e).__name__}: {self._scrub(str(e))}"
                else:
                    status = response.status_code
                    if status in (401, 403):
                        raise EndpointError(self._auth_message(status, error_text(response)))
                    if status in (404, 405, 501):  # no /models here: the first request decides
                        return
                    if status == 200:
                        self._check_listing(response)
                        return
                    last = self._scrub(error_text(response))
                    if status not in RETRYABLE_STATUS:
                        raise EndpointError(f"{url} answered {last}")
                await asyncio.sleep(
                    backoff_delay(
                        attempt,
                        self.options.backoff_base_s,
                        self.options.max_backoff_s,
                        None,
                        self._rng,
                    )
                )
        raise EndpointError(f"{url} did not answer properly after 3 tries ({last})")

    def _check_listing(self, response: Any) -> None:
        try:
            data = response.json().get("data")
            ids = [m["id"] for m in data if isinstance(m, dict) and "id" in m]
        except Exception:  # noqa: BLE001 - an odd listing proves nothing either way
            return
        self.served_models = ids
        if ids and self.options.model not in ids:
            shown = ", ".join(ids[:20]) + (" …" if len(ids) > 20 else "")
            raise EndpointError(
                f"model {self.options.model!r} is not served at {self.base_url}; it serves: "
                f"{shown}. Pass one of those as --model (or --models).",
                every_model=False,
            )

    def _auth_message(self, status: int, detail: str) -> str:
        where = (
            f"the key in ${self._key_env}"
            if self._key_env
            else "no API key (pass --api-key-env VAR naming a variable that holds it)"
        )
        return (
            f"{self.base_url} refused the request (HTTP {status}) with {where}: "
            f"{self._scrub(detail)}"
        )

    # -- work

    def body(self, request: Request) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.options.model,
            "messages": request.messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if s.n != 1:
            body["n"] = s.n
        if s.stop:
            body["stop"] = list(s.stop)
        if s.temperature > 0 and self.options.request_seed:
            body["seed"] = request_seed(s.seed, request.seed_key)
        if self.options.chat_template_kwargs:
            body["chat_template_kwargs"] = self.options.chat_template_kwargs
        body.update(self.options.extra_body)
        return body

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        """Yield finished requests in chunks of ``chunk_size`` keys; a request given up on is
        yielded at once, with what is finished so far, so ``failed.jsonl`` shows it while
        the run goes on."""
        results: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop,
            name="ifharness-openai",
            args=(loop, list(requests), results, stop),
            daemon=True,
        )
        thread.start()
        pending: list[Completion] = []
        keys = 0
        try:
            while True:
                kind, payload = results.get()
                if kind == "done":
                    pending.extend(payload)
                    keys += 1
                    if keys >= chunk_size:
                        yield Chunk(pending)
                        pending, keys = [], 0
                elif kind == "failed":
                    yield Chunk(pending, [payload])
                    pending, keys = [], 0
                elif kind == "fatal":
                    raise payload
                elif kind == "end":
                    break
            if pending:
                yield Chunk(pending)
        finally:
            stop.set()
            thread.join(timeout=self.options.request_timeout_s + 30)

    def _run_loop(
        self,
        loop: asyncio.AbstractEventLoop,
        requests: list[Request],
        results: queue.Queue[Any],
        stop: threading.Event,
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._work(requests, results, stop))
        except BaseException as e:  # noqa: BLE001 - handed to the driver's thread
            results.put(
                (
                    "fatal",
                    IfharnessError(f"openai runner: {type(e).__name__}: {self._scrub(str(e))}"),
                )
            )
        finally:
            loop.close()
            results.put(("end", None))

    async def _work(
        self, requests: list[Request], results: queue.Queue[Any], stop: threading.Event
    ) -> None:
        todo: asyncio.Queue[Request] = asyncio.Queue()
        for r in requests:
            todo.put_nowait(r)
        fatal: list[BaseException] = []

        async def worker(client: Any) -> None:
            while not todo.empty() and not fatal and not stop.is_set():
                request = todo.get_nowait()
                try:
                    completions = await self._one(client, request, stop)
                except _Fatal as e:
                    fatal.append(e)
                    return
                except _Permanent as e:
                    results.put(("failed", Failure(request.key, str(e), 1, e.status)))
                    continue
                except _GaveUp as e:
                    results.put(("failed", Failure(request.key, str(e), e.attempts, e.status)))
                    continue
                except Exception as e:  # noqa: BLE001 - recorded against the sample, run goes on
                    results.put(
                        (
                            "failed",
                            Failure(
                                request.key, f"{type(e).__name__}: {self._scrub(str(e))[:300]}", 1
                            ),
                        )
                    )
                    continue
                results.put(("done", completions))

        async with self._client() as client:
            workers = [
                asyncio.create_task(worker(client))
                for _ in range(min(self.options.concurrency, len(requests)))
            ]
            while workers:
                _, still = await asyncio.wait(
                    workers, timeout=0.2, return_when=asyncio.FIRST_COMPLETED
                )
                workers = list(still)
                if fatal or stop.is_set():
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    break
        if fatal:
            err = fatal[0]
            results.put(
                (
                    "fatal",
                    err.args[0]
                    if isinstance(err.args[0], BaseException)
                    else EndpointError(str(err)),
                )
            )

    async def _one(self, client: Any, request: Request, stop: threading.Event) -> list[Completion]:
        """One request with its retries: completions, or ``_GaveUp``/``_Permanent``/``_Fatal``."""
        o = self.options
        body = self.body(request)
        url = f"{self.base_url}/chat/completions"
        last: _Retryable | None = None
        for attempt in range(o.max_retries + 1):
            if stop.is_set():
                raise _Fatal(IfharnessError("stopped"))
            try:
                return await self._attempt(client, url, body, request)
            except _Retryable as e:
                last = e
            if attempt == o.max_retries:
                break
            await asyncio.sleep(
                backoff_delay(
                    attempt, o.backoff_base_s, o.max_backoff_s, last.retry_after, self._rng
                )
            )
        assert last is not None
        raise _GaveUp(
            f"{last} (gave up after {o.max_retries + 1} attempts)", o.max_retries + 1, last.status
        )

    async def _attempt(
        self, client: Any, url: str, body: dict[str, Any], request: Request
    ) -> list[Completion]:
        import httpx

        self.requests_sent += 1
        timeout = self.options.request_timeout_s
        try:
            response = await asyncio.wait_for(client.post(url, json=body), timeout)
        except asyncio.TimeoutError:
            raise _Retryable(f"no complete answer within --request-timeout {timeout:g} s") from None
        except httpx.TimeoutException as e:
            raise _Retryable(f"timed out ({type(e).__name__})") from None
        except httpx.ConnectError as e:
            raise _Retryable(f"cannot connect to {self.base_url} ({self._scrub(str(e))})") from None
        except (httpx.TransportError, OSError) as e:
            raise _Retryable(
                f"connection broken ({type(e).__name__}: {self._scrub(str(e))[:200]})"
            ) from None
        status = response.status_code
        if status == 200:
            try:
                data = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                raise _Retryable("HTTP 200 with a body that is not JSON", 200) from None
            return parse_choices(request, data, self.options.reasoning)
        detail = self._scrub(error_text(response))
        if status in (401, 403):
            raise _Fatal(EndpointError(self._auth_message(status, detail)))
        if unknown_model(status, detail) and status < 500:
            if "model" in detail.lower():
                raise _Fatal(
                    EndpointError(
                        f"{self.base_url} does not know model {self.options.model!r} ({detail}); "
                        "check --model against GET /models",
                        every_model=False,
                    )
                )
            raise _Fatal(
                EndpointError(
                    f"{url} answered {detail}: check --base-url (vLLM's ends in /v1) and --model"
                )
            )
        if status in RETRYABLE_STATUS or status >= 500:
            raise _Retryable(detail, status, parse_retry_after(response.headers.get("retry-after")))
        raise _Permanent(detail, status)


class _GaveUp(Exception):
    def __init__(self, message: str, attempts: int, status: int | None):
        super().__init__(message)
        self.attempts, self.status = attempts, status


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
