"""``ifharness serve-reward``: the reward function over HTTP, for RL trainers that call one.

One process, one persistent :class:`~ifharness.reward.RewardPool` (its worker processes do the
scoring), one Starlette app served by uvicorn. Routes:

* ``POST /verify`` — ``{"response": str, "constraints": ConstraintsLike, "suite"?, "mode"?,
  "reduce"?}`` → NeMo-Gym's ``reward``, ``follow_all_instructions``,
  ``follow_instruction_list`` plus our own fields (per-constraint ``verdicts``,
  ``over_budget``, …). NeMo-Gym rows that carry ``instruction_id_list`` and ``kwargs`` at the
  top level instead of ``constraints`` are accepted as they are.
* ``POST /verify_batch`` — ``{"responses": [str], "constraints": [ConstraintsLike] | one}``
  → ``{"results": [...], "rewards": [...]}``.
* ``POST /openrlhf`` — OpenRLHF's remote reward model body ``{"query", "prompts", "labels"}``
  → ``{"rewards", "scores", "extra_logs"}`` (its prompt cutting lives in
  :mod:`ifharness.reward.openrlhf`).
* ``GET /health`` — the server's settings.

This module is the app, its routes, serving and the CLI. The bodies' JSON (parsing, checks,
413 past ``--max-request-bytes``, result shapes) is :mod:`.http_schema`; scoring off the event
loop, concurrent requests merged into one pool call, is :mod:`.coalesce`. Per-answer budgets
(``--timeout-s``, ``--max-chars``) are the pool's: the same rules as
:func:`ifharness.reward.reward_batch`, and clients cannot raise them.

Starlette and uvicorn are an optional extra (``pip install 'ifharness[reward-server]'``);
they are imported only when the server is built, so this module (and ``ifharness --help``)
loads without them.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import IfharnessError
from . import DEFAULT_MAX_CHARS, DEFAULT_TIMEOUT_S, DEFAULT_WORKERS
from .coalesce import Coalescer
from .http_schema import (
    MODES,
    REDUCTIONS,
    Options,
    RequestError,
    check_suite,
    openrlhf_json,
    parse_batch,
    parse_json_object,
    parse_openrlhf,
    parse_single,
    read_body,
    result_json,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from . import RewardPool

EXTRA_HINT = "pip install 'ifharness[reward-server]'"
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """What one server process scores with (budgets as in reward_batch, same defaults)."""

    workers: int = DEFAULT_WORKERS
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_chars: int = DEFAULT_MAX_CHARS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    suite: str | None = None
    mode: str = "strict"
    reduce: str = "fraction"
    reasoning: str = "think"
    over_budget_score: float = 0.0

    def options(self) -> Options:
        """What a request that names no suite, mode or reduction is scored with."""
        return Options(self.suite, self.mode, self.reduce)

    def pool_kwargs(self) -> dict[str, Any]:
        # inline_below=0: every batch goes to the workers, even one answer. Scored inline it
        # would run on the server's helper thread, where no check can be interrupted or
        # killed, so one hung regex would stall every later request.
        return {
            "workers": self.workers,
            "timeout_s": self.timeout_s,
            "max_chars": self.max_chars,
            "inline_below": 0,
        }


# --- the app ---------------------------------------------------------------------------------


def create_app(
    settings: ServerSettings, pool: RewardPool | None = None, close_pool: bool | None = None
) -> Starlette:
    """The Starlette app. Without ``pool`` it makes its own at startup; it closes the pool at
    shutdown when it made it or ``close_pool`` says so (a pool passed in is otherwise the
    caller's to close)."""
    try:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError as e:
        raise IfharnessError(
            f"serve-reward needs Starlette and uvicorn ({e.name} is missing): {EXTRA_HINT}"
        ) from None
    from contextlib import asynccontextmanager

    from .. import __version__
    from . import RewardPool

    state: dict[str, Any] = {}
    defaults = settings.options()

    @asynccontextmanager
    async def lifespan(app):
        the_pool = RewardPool(**settings.pool_kwargs()) if pool is None else pool
        coalescer = Coalescer(
            the_pool,
            reasoning=settings.reasoning,
            over_budget_score=settings.over_budget_score,
        )
        coalescer.start()
        state["coalescer"] = coalescer
        try:
            yield
        finally:
            await coalescer.close()
            if pool is None or close_pool:
                the_pool.close()
                app.state.pool_closed = True

    def scorer() -> Coalescer:
        return state["coalescer"]

    async def handle(request: Request, work: Callable[[dict[str, Any]], Any]) -> JSONResponse:
        route = request.url.path
        try:
            raw = await read_body(request, settings.max_request_bytes)
            body = parse_json_object(raw, route)
            return JSONResponse(await work(body))
        except RequestError as e:
            headers = {"connection": "close"} if e.status == 413 else None
            return JSONResponse(
                {"error": e.message, "field": e.field}, status_code=e.status, headers=headers
            )
        except IfharnessError as e:
            return JSONResponse({"error": str(e), "field": None}, status_code=422)
        except Exception as e:  # a scorer failure: say what it was, keep serving
            return JSONResponse(
                {"error": f"{route}: scoring failed: {type(e).__name__}: {e}", "field": None},
                status_code=500,
            )

    async def verify(request: Request) -> JSONResponse:
        async def work(body: dict[str, Any]) -> dict[str, Any]:
            response, constraints, options = parse_single(body, defaults)
            (result,) = await scorer().score([response], [constraints], options)
            return result_json(result)

        return await handle(request, work)

    async def verify_batch(request: Request) -> JSONResponse:
        async def work(body: dict[str, Any]) -> dict[str, Any]:
            responses, constraints, options = parse_batch(body, defaults)
            results = await scorer().score(responses, constraints, options)
            return {
                "results": [result_json(r) for r in results],
                "rewards": [r.score for r in results],
            }

        return await handle(request, work)

    async def openrlhf(request: Request) -> JSONResponse:
        async def work(body: dict[str, Any]) -> dict[str, Any]:
            responses, labels, options = parse_openrlhf(body, defaults)
            return openrlhf_json(await scorer().score(responses, labels, options))

        return await handle(request, work)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "workers": settings.workers,
                "timeout_s": settings.timeout_s,
                "max_chars": settings.max_chars,
                "max_request_bytes": settings.max_request_bytes,
                "suite": settings.suite,
                "mode": settings.mode,
                "reduce": settings.reduce,
                "reasoning": settings.reasoning,
                "over_budget_score": settings.over_budget_score,
                "pool_calls": scorer().pool_calls if "coalescer" in state else 0,
            }
        )

    app = Starlette(
        routes=[
            Route("/verify", verify, methods=["POST"]),
            Route("/verify_batch", verify_batch, methods=["POST"]),
            Route("/openrlhf", openrlhf, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.pool_closed = False
    return app


# --- serving and the CLI ---------------------------------------------------------------------


def _listen_socket(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise IfharnessError(f"--host {host}: cannot resolve it ({e})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise IfharnessError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    settings: ServerSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM. ``port=0`` picks a free one; ``on_ready`` gets
    the URL once the pool is up and the socket accepts connections."""
    try:
        import starlette  # noqa: F401  (create_app imports it; fail before the pool starts)
        import uvicorn
    except ImportError as e:
        raise IfharnessError(
            f"serve-reward needs Starlette and uvicorn ({e.name} is missing): {EXTRA_HINT}"
        ) from None
    from . import RewardPool

    if settings.suite is not None:
        try:
            check_suite(settings.suite)
        except ValueError as e:
            raise IfharnessError(f"--suite: {e}") from None
    sock = _listen_socket(host, port)
    url = _url(sock)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready(url)

    try:
        # made before the server starts so that a bad setting fails here, plainly; the app
        # closes it at shutdown, before uvicorn re-raises SIGTERM
        pool = RewardPool(**settings.pool_kwargs())
    except (ValueError, TypeError) as e:
        sock.close()
        raise IfharnessError(f"serve-reward: {e}") from None
    pool.wait_ready()  # "ready" means the workers have warmed up too
    app = create_app(settings, pool, close_pool=True)
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", server_header=False
    )
    try:
        _Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if not app.state.pool_closed:
            pool.close()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _cmd_serve_reward(args: argparse.Namespace) -> int:
    settings = ServerSettings(
        workers=args.workers,
        timeout_s=args.timeout_s,
        max_chars=args.max_chars,
        max_request_bytes=args.max_request_bytes,
        suite=args.suite,
        mode=args.mode,
        reduce=args.reduce,
        reasoning=args.reasoning,
        over_budget_score=args.over_budget_score,
    )

    def ready(url: str) -> None:
        print(
            f"serving rewards on {url} (POST /verify, /verify_batch, /openrlhf; GET /health); "
            "Ctrl-C stops",
            flush=True,
        )

    try:
        serve(settings, args.host, args.port, args.log_level, ready)
    except KeyboardInterrupt:  # uvicorn re-raises SIGINT after its graceful shutdown
        pass
    print("serve-reward: stopped", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Adds ``serve-reward`` to the ``ifharness`` subcommands (``sub``: add_subparsers())."""
    p = sub.add_parser(
        "serve-reward",
        help="serve the reward function over HTTP (POST /verify), for RL trainers",
        description="An HTTP reward endpoint: POST /verify {response, constraints} returns the "
        "reward and per-constraint verdicts (NeMo-Gym's field names), POST /verify_batch "
        "scores many, POST /openrlhf takes OpenRLHF's remote reward model body, GET /health. "
        f"Needs the reward-server extra: {EXTRA_HINT}.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=DEFAULT_WORKERS,
        help=f"scoring processes (default {DEFAULT_WORKERS})",
    )
    p.add_argument(
        "--timeout-s",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_S,
        help=f"time budget per answer in seconds (default {DEFAULT_TIMEOUT_S:g}); an answer "
        "over it scores --over-budget-score with over_budget: true",
    )
    p.add_argument(
        "--max-chars",
        type=_positive_int,
        default=DEFAULT_MAX_CHARS,
        help=f"size budget per answer in characters, reasoning removed (default "
        f"{DEFAULT_MAX_CHARS}); a longer answer is not checked and scores "
        "--over-budget-score with over_budget: true",
    )
    p.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help=f"largest request body; larger ones get 413 (default {DEFAULT_MAX_REQUEST_BYTES})",
    )
    p.add_argument("--suite", help="suite to resolve constraint ids in (a request's 'suite' wins)")
    p.add_argument(
        "--mode", choices=MODES, default="strict", help="strict or loose verdicts (default strict)"
    )
    p.add_argument(
        "--reduce",
        choices=REDUCTIONS,
        default="fraction",
        help="reward = fraction of constraints followed, or all: 1 only when all are "
        "(default fraction)",
    )
    from ..reasoning import names as reasoning_names

    p.add_argument(
        "--reasoning",
        default="think",
        choices=reasoning_names(),
        help="how the reasoning is removed before checking (default think; none: the whole "
        "text is the answer)",
    )
    p.add_argument(
        "--over-budget-score",
        type=float,
        default=0.0,
        help="the reward of an answer over --timeout-s or --max-chars (default 0.0)",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default warning)",
    )
    p.set_defaults(func=_cmd_serve_reward)


__all__ = ["ServerSettings", "create_app", "register", "serve"]
