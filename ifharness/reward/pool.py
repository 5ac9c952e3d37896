"""Batched rewards over a persistent process pool, with a time and size budget per answer.

Decisions:

* **Persistent workers.** :class:`RewardPool` starts its worker processes once (``spawn``
  context by default: safe in a process that holds CUDA; ``start_method="forkserver"`` works
  too), each imports the verifiers and warms them (Punkt, the Treebank steps, langdetect's
  profiles) before it takes work (:mod:`.worker`); a trainer keeps the pool across steps.
  The module-level :func:`reward_batch` without ``pool=`` uses one shared pool per worker
  count, started on first use, closed at exit.
* **Chunks.** A batch is cut into chunks (at most ``CHUNK_ITEMS`` answers or about
  ``CHUNK_CHARS`` characters, so one long answer does not hold up many short ones); each
  worker gets one chunk at a time and sends back the chunk's results at once. Constraints
  travel as their cache key (the label string or canonical JSON), bound once per worker.
* **Budget per answer.** ``max_chars`` is decided in the parent (an over-long answer is never
  shipped). ``timeout_s`` has a soft bound inside the worker (``SIGALRM`` raising in the
  check; see :class:`~ifharness.reward.core.SoftTimer`) and a hard bound in the parent: each
  worker writes which answer it is on and since when into a shared-memory slot; one that has
  run past ``timeout_s + grace_s`` is killed and replaced, its answer is flagged over budget,
  and the rest of its chunk is sent again. A worker that dies for another reason is treated
  the same way. Either way the batch goes on and every result comes back.
* **No pool hop for tiny batches**: fewer than ``inline_below`` answers holding at most
  ``INLINE_CHARS`` characters in all are scored in the calling process, as is every batch
  with ``workers=0``. There ``max_chars`` applies and ``timeout_s`` only as the soft
  ``SIGALRM`` bound (on the main thread, when ``SIGALRM`` is free); nothing can be killed.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from .core import (
    DEFAULT_MAX_CHARS,
    ID_KEYS,
    ConstraintsError,
    ConstraintsLike,
    Resolved,
    RewardResult,
    SoftTimer,
    _parser,
    check_options,
    check_timeout,
    constraints_key,
    over_budget_result,
    resolve,
    score_answer,
    timeout_reason,
)
from .worker import TICK_S, Worker

DEFAULT_WORKERS = max(1, min(8, os.cpu_count() or 1))
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_GRACE_S = 0.5
CHUNK_ITEMS = 64
CHUNK_CHARS = 200_000
INLINE_BELOW = 8
INLINE_CHARS = 20_000
_UNSET: Any = object()

# (suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s)
Options = tuple[str | None, str, str, str, "int | None", float, str, "float | None"]


def per_response(responses: Sequence[str], constraints: Any) -> list[ConstraintsLike]:
    """One constraints value per response: ``constraints`` itself when it is a single value
    (a string, a dict, a list of ``{"id"}`` dicts or ``(id, kwargs)`` pairs), else its items."""
    if _is_single(constraints):
        return [constraints] * len(responses)
    if len(constraints) != len(responses):
        raise ConstraintsError(
            f"{len(responses)} responses but {len(constraints)} constraints: give one per "
            "response, or a single one for all"
        )
    return list(constraints)


def _is_single(constraints: Any) -> bool:
    if not isinstance(constraints, (list, tuple)) or not constraints:
        return True
    first = constraints[0]
    if isinstance(first, dict):
        return "id" in first and not any(k in first for k in ID_KEYS)
    return (
        isinstance(first, (list, tuple))
        and len(first) == 2
        and isinstance(first[0], str)
        and (first[1] is None or isinstance(first[1], dict))
    )


def _prepare(
    responses: Sequence[str], constraints: Any, suite: str | None, profile: str
) -> tuple[list[str], list[Resolved]]:
    keys, resolved = [], []
    for n, c in enumerate(per_response(responses, constraints)):
        if not isinstance(responses[n], str):
            raise TypeError(f"response {n} must be a str, got {type(responses[n]).__name__}")
        try:
            key = constraints_key(c)
            resolved.append(resolve(key, suite, profile))
        except ConstraintsError as e:
            raise ConstraintsError(f"response {n}: {e}") from None
        keys.append(key)
    return keys, resolved


def _options(
    suite: str | None,
    mode: str,
    reduce: str,
    reasoning: str,
    max_chars: int | None,
    over_budget_score: float,
    profile: str,
    timeout_s: float | None,
) -> Options:
    """The options of one batch, checked (what every worker receives with each chunk)."""
    check_options(mode, reduce, reasoning)
    check_timeout(timeout_s)
    return (suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s)


def _score_inline(texts: Sequence[str], resolved: Sequence[Resolved], opts: Options) -> list:
    suite, mode, reduce, reasoning, max_chars, obs, profile, timeout_s = opts
    timer = SoftTimer(timeout_s) if timeout_s else None
    return [
        score_answer(text, res, mode, reduce, reasoning, max_chars, obs, profile, timer)
        for text, res in zip(texts, resolved)
    ]


class RewardPool:
    """A persistent pool of reward workers: a context manager, reused across calls.

    ``RewardPool(workers=2, timeout_s=5, max_chars=200_000)`` starts the workers at once
    (they warm up in the background); ``pool.reward_batch(responses, constraints, ...)``
    takes the keywords of :func:`reward_batch` (``timeout_s``/``max_chars`` default to the
    pool's); ``pool.close()`` (or leaving the ``with`` block) stops them. ``workers=0``
    scores in the calling process. ``initializer`` (a picklable, importable function) runs
    first in each worker: constraints registered at run time in the parent have to be
    registered there too. ``replaced`` counts the workers killed and replaced so far.
    """

    chunks_per_worker = 4  # a batch is cut into about this many chunks per worker

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_chars: int | None = DEFAULT_MAX_CHARS,
        *,
        grace_s: float = DEFAULT_GRACE_S,
        inline_below: int = INLINE_BELOW,
        start_method: str = "spawn",
        initializer: Callable[[], None] | None = None,
    ):
        check_timeout(timeout_s)
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self.grace_s = grace_s
        self.inline_below = inline_below
        self.replaced = 0
        self._ctx = mp.get_context(start_method)
        self._initializer = initializer
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._job = 0
        self._failed_starts = 0
        self._pool: list[Worker] = [self._spawn() for _ in range(workers)]
        self.closed = False

    def _spawn(self) -> Worker:
        return Worker(self._ctx, self._initializer)

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if os.getpid() != self._pid:  # a forked copy: the workers are the parent's
            return
        for w in self._pool:
            w.stop()
        self._pool = []

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every worker has warmed up (benchmarks call this; scoring need not)."""
        deadline = time.monotonic() + timeout
        for w in self._pool:
            while not w.ready and time.monotonic() < deadline:
                if w.conn.poll(TICK_S):
                    self._receive(w, {}, [])

    def clear_caches(self) -> None:
        """Empty the workers' per-token and per-sentence caches (for cold benchmarks)."""
        for w in self._pool:
            w.conn.send(("clear",))

    def reward_batch(
        self,
        responses: Sequence[str],
        constraints: Sequence[ConstraintsLike] | ConstraintsLike,
        *,
        suite: str | None = None,
        mode: str = "strict",
        reduce: str = "fraction",
        timeout_s: float | None = _UNSET,
        max_chars: int | None = _UNSET,
        over_budget_score: float = 0.0,
        reasoning: str = "think",
        profile: str = "reference",
    ) -> list[RewardResult]:
        """The rewards of ``responses``, in order (see :func:`reward_batch`)."""
        if self.closed:
            raise RuntimeError("this RewardPool is closed")
        timeout_s = self.timeout_s if timeout_s is _UNSET else timeout_s
        max_chars = self.max_chars if max_chars is _UNSET else max_chars
        opts = _options(
            suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s
        )
        keys, resolved = _prepare(responses, constraints, suite, profile)
        n = len(responses)
        total = sum(map(len, responses))
        if not self.workers or (n < self.inline_below and total <= INLINE_CHARS):
            return _score_inline(responses, resolved, opts)
        results: list[RewardResult | None] = [None] * n
        todo = []
        for i, text in enumerate(responses):
            if max_chars is not None and len(text) > max_chars:  # decided here, never shipped
                split = _parser(reasoning).split(text)
                if len(split.answer) > max_chars:
                    reason = f"answer has {len(split.answer)} chars, max_chars is {max_chars}"
                    results[i] = over_budget_result(
                        resolved[i], reason, over_budget_score, split.unterminated
                    )
                    continue
            todo.append(i)
        with self._lock:
            self._run(todo, responses, keys, resolved, opts, results)
        return results  # type: ignore[return-value]

    # ---------------------------------------------------------------------- the dispatcher

    def _chunks(self, todo: list[int], responses: Sequence[str]) -> deque[list[int]]:
        per = max(1, min(CHUNK_ITEMS, -(-len(todo) // (self.workers * self.chunks_per_worker))))
        chunks: deque[list[int]] = deque()
        current: list[int] = []
        chars = 0
        for i in todo:
            size = len(responses[i])
            if current and (len(current) >= per or chars + size > CHUNK_CHARS):
                chunks.append(current)
                current, chars = [], 0
            current.append(i)
            chars += size
        if current:
            chunks.append(current)
        return chunks

    def _run(self, todo, responses, keys, resolved, opts, results) -> None:
        queue = self._chunks(todo, responses)
        jobs: dict[int, list[int]] = {}
        timeout_s = opts[7]
        while queue or jobs:
            if os.getpid() != self._pid:
                raise RuntimeError("a RewardPool cannot be used from a forked process")
            for w in self._pool:
                if w.ready and w.chunk is None and queue:
                    chunk = queue.popleft()
                    self._job += 1
                    w.chunk, w.job = chunk, self._job
                    jobs[w.job] = chunk
                    w.conn.send(("score", w.job, [(i, responses[i], keys[i]) for i in chunk], opts))
            conns = {w.conn: w for w in self._pool}
            for conn in wait(list(conns), timeout=TICK_S):
                self._receive(conns[conn], jobs, results, queue, resolved, opts)
            if timeout_s is not None:
                self._enforce(timeout_s, jobs, results, queue, resolved, opts)

    def _receive(self, w, jobs, results, queue=None, resolved=None, opts=None) -> None:
        try:
            kind, job, payload = w.conn.recv()
        except (EOFError, OSError):
            if not w.ready:
                self._failed_starts += 1
                if self._failed_starts > 3 * max(1, self.workers):
                    raise RuntimeError(
                        "reward workers keep dying before they are ready (exit code "
                        f"{w.process.exitcode}); is the initializer importable?"
                    ) from None
            self._replace(w, jobs, results, queue, resolved, opts, "the worker died")
            return
        if kind == "ready":
            w.ready = True
            return
        chunk = jobs.pop(job, None)
        w.chunk = None
        if kind == "error":
            raise RuntimeError(f"reward worker failed:\n{payload}")
        if chunk is not None:
            for i, r in zip(chunk, payload):
                results[i] = r

    def _enforce(self, timeout_s, jobs, results, queue, resolved, opts) -> None:
        now = time.monotonic()
        for w in list(self._pool):
            if w.chunk is None:
                continue
            started = w.slot[1]
            if started and now - started > timeout_s + self.grace_s:
                index = int(w.slot[0])
                if w.slot[1] != started:
                    continue  # it moved on meanwhile
                self._replace(
                    w,
                    jobs,
                    results,
                    queue,
                    resolved,
                    opts,
                    timeout_reason(timeout_s),
                    culprit=index,
                )

    def _replace(self, w, jobs, results, queue, resolved, opts, reason, culprit=None) -> None:
        """Kill ``w``, flag its current answer over budget, queue the rest, start another."""
        chunk = jobs.pop(w.job, None) if w.chunk is not None else None
        if chunk is not None and culprit is None and w.slot[1]:
            culprit = int(w.slot[0])
        w.kill()
        self._pool[self._pool.index(w)] = self._spawn()
        self.replaced += 1
        if chunk is None or resolved is None or opts is None:
            return
        if culprit is not None and culprit in chunk:
            results[culprit] = over_budget_result(resolved[culprit], reason, opts[5])
        rest = [i for i in chunk if i != culprit and results[i] is None]
        if rest:
            queue.appendleft(rest)


_SHARED: dict[tuple[int, int], RewardPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int = DEFAULT_WORKERS) -> RewardPool:
    """The process-wide pool of ``workers`` workers (started on first use, closed at exit)."""
    with _SHARED_LOCK:
        key = (os.getpid(), workers)
        pool = _SHARED.get(key)
        if pool is None or pool.closed:
            pool = _SHARED[key] = RewardPool(workers)
        return pool


@atexit.register
def _close_shared() -> None:
    for (pid, _), pool in list(_SHARED.items()):
        if pid == os.getpid():
            pool.close()
    _SHARED.clear()


def reward_batch(
    responses: Sequence[str],
    constraints: Sequence[ConstraintsLike] | ConstraintsLike,
    *,
    suite: str | None = None,
    mode: str = "strict",
    reduce: str = "fraction",
    workers: int = DEFAULT_WORKERS,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    max_chars: int | None = DEFAULT_MAX_CHARS,
    over_budget_score: float = 0.0,
    reasoning: str = "think",
    profile: str = "reference",
    pool: RewardPool | None = None,
) -> list[RewardResult]:
    """The rewards of ``responses`` (one constraints value per response, or one for all).

    Scored over ``pool``, or the shared pool of ``workers`` processes (``workers=0``: in this
    process). Each answer has its own budget: ``max_chars`` characters after the reasoning is
    removed, ``timeout_s`` seconds of checking; past either its result is flagged
    ``over_budget`` with ``over_budget_score``, and the rest of the batch is scored normally.
    """
    kw: dict[str, Any] = dict(
        suite=suite,
        mode=mode,
        reduce=reduce,
        timeout_s=timeout_s,
        max_chars=max_chars,
        over_budget_score=over_budget_score,
        reasoning=reasoning,
        profile=profile,
    )
    if pool is None:
        if workers == 0:
            opts = _options(
                suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s
            )
            _, resolved = _prepare(responses, constraints, suite, profile)
            return _score_inline(responses, resolved, opts)
        pool = shared_pool(workers)
    return pool.reward_batch(responses, constraints, **kw)
