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
* **One dispatcher, many callers.** A thread of the pool owns the workers: it hands out the
  chunks of every batch in flight (first come, first served) as workers come free, collects
  results and enforces the budget; a caller queues its chunks and waits for its own batch
  (:class:`~ifharness.reward.batch.Batch`). So threads that each score one answer
  (OpenRLHF's and verl's per-sample calls) keep every worker busy.
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

from .batch import Batch, options, prepare, score_inline
from .core import (
    DEFAULT_MAX_CHARS,
    ConstraintsLike,
    RewardResult,
    _parser,
    check_timeout,
    over_budget_result,
    timeout_reason,
)
from .worker import TICK_S, Worker

Job = tuple[Batch, list[int]]  # a chunk: batch indices of one batch

DEFAULT_WORKERS = max(1, min(8, os.cpu_count() or 1))
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_GRACE_S = 0.5
CHUNK_ITEMS = 64
CHUNK_CHARS = 200_000
INLINE_BELOW = 8
INLINE_CHARS = 20_000
_UNSET: Any = object()


class RewardPool:
    """A persistent pool of reward workers: a context manager, reused across calls.

    ``RewardPool(workers=2, timeout_s=5, max_chars=200_000)`` starts the workers at once
    (they warm up in the background); ``pool.reward_batch(responses, constraints, ...)``
    takes the keywords of :func:`reward_batch` (``timeout_s``/``max_chars`` default to the
    pool's); ``pool.close()`` (or leaving the ``with`` block) stops them. ``workers=0``
    scores in the calling process. ``initializer`` (a picklable, importable function) runs
    first in each worker: constraints registered at run time in the parent have to be
    registered there too. ``replaced`` counts the workers killed and replaced so far.

    Calls from several threads at once share the workers: one dispatcher thread owns them
    and hands out the chunks of every batch in flight as workers come free (OpenRLHF and
    verl call a reward per sample from many threads; each call must not wait for the
    others' whole batches).
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
        self.closed = False
        self._ctx = mp.get_context(start_method)
        self._initializer = initializer
        self._pid = os.getpid()
        self._job = 0
        self._failed_starts = 0
        self._broken: BaseException | None = None
        self._lock = threading.Lock()  # guards _queue, _control, _stopping
        self._queue: deque[Job] = deque()
        self._control: list[tuple[str]] = []
        self._stopping = False
        self._jobs: dict[int, Job] = {}  # the dispatcher's alone
        self._pool: list[Worker] = [self._spawn() for _ in range(workers)]
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        if workers:
            self._thread = threading.Thread(
                target=self._dispatch, name="ifharness-reward-dispatch", daemon=True
            )
            self._thread.start()

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
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for w in self._pool:
            w.stop()
        self._pool = []
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"!")
        except (OSError, ValueError):
            pass

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every worker has warmed up (benchmarks call this; scoring need not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(w.ready for w in self._pool):
            if self._broken is not None:
                raise self._broken
            time.sleep(TICK_S)

    def clear_caches(self) -> None:
        """Empty the workers' per-token and per-sentence caches (for cold benchmarks)."""
        with self._lock:
            self._control.append(("clear",))
        self._wake()

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
        opts = options(
            suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s
        )
        keys, resolved = prepare(responses, constraints, suite, profile)
        n = len(responses)
        total = sum(map(len, responses))
        if not self.workers or (n < self.inline_below and total <= INLINE_CHARS):
            return score_inline(responses, resolved, opts)
        if os.getpid() != self._pid:
            raise RuntimeError("a RewardPool cannot be used from a forked process")
        if self._broken is not None:
            raise self._broken
        batch = Batch(responses, keys, resolved, opts, [None] * n, n)
        todo = []
        for i, text in enumerate(responses):
            if max_chars is not None and len(text) > max_chars:  # decided here, never shipped
                split = _parser(reasoning).split(text)
                if len(split.answer) > max_chars:
                    reason = f"answer has {len(split.answer)} chars, max_chars is {max_chars}"
                    batch.settle(
                        i,
                        over_budget_result(
                            resolved[i], reason, over_budget_score, split.unterminated
                        ),
                    )
                    continue
            todo.append(i)
        if todo:
            with self._lock:
                self._queue.extend((batch, chunk) for chunk in self._chunks(todo, responses))
            self._wake()
            while not batch.done.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the reward pool's dispatcher stopped (pool closed?)")
        if batch.error is not None:
            raise batch.error
        return batch.results  # type: ignore[return-value]

    # ---------------------------------------------------------------------- the dispatcher

    def _chunks(self, todo: list[int], responses: Sequence[str]) -> list[list[int]]:
        per = max(1, min(CHUNK_ITEMS, -(-len(todo) // (self.workers * self.chunks_per_worker))))
        chunks: list[list[int]] = []
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

    def _dispatch(self) -> None:
        """The dispatcher thread: hand out chunks, collect results, enforce the budget."""
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        break
                    control, self._control = self._control, []
                for msg in control:
                    for w in self._pool:
                        w.conn.send(msg)
                self._assign()
                conns = {w.conn: w for w in self._pool}
                ready = wait([*conns, self._wake_r], timeout=TICK_S if self._jobs else 0.5)
                for conn in ready:
                    if conn is self._wake_r:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    else:
                        self._receive(conns[conn])
                self._enforce()
        except BaseException as e:  # noqa: BLE001 - every waiting caller must hear of it
            self._broken = (
                e
                if isinstance(e, RuntimeError)
                else RuntimeError(f"the reward pool's dispatcher failed: {type(e).__name__}: {e}")
            )
        finally:
            error = self._broken or RuntimeError("this RewardPool was closed during the call")
            with self._lock:
                pending = [b for b, _ in self._queue]
                self._queue.clear()
            for batch in pending + [b for b, _ in self._jobs.values()]:
                batch.fail(error)
            self._jobs.clear()

    def _assign(self) -> None:
        for w in self._pool:
            if not (w.ready and w.chunk is None):
                continue
            with self._lock:
                while self._queue and self._queue[0][0].error is not None:
                    self._queue.popleft()  # a failed batch's chunks are not scored
                if not self._queue:
                    return
                batch, chunk = self._queue.popleft()
            self._job += 1
            w.chunk, w.job = chunk, self._job
            self._jobs[w.job] = (batch, chunk)
            items = [(i, batch.responses[i], batch.keys[i]) for i in chunk]
            w.conn.send(("score", w.job, items, batch.opts))

    def _receive(self, w: Worker) -> None:
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
            self._replace(w, "the worker died")
            return
        if kind == "ready":
            w.ready = True
            return
        entry = self._jobs.pop(job, None)
        w.chunk = None
        if entry is None:
            return
        batch, chunk = entry
        if kind == "error":
            batch.fail(RuntimeError(f"reward worker failed:\n{payload}"))
            return
        for i, r in zip(chunk, payload):
            batch.settle(i, r)

    def _enforce(self) -> None:
        now = time.monotonic()
        for w in list(self._pool):
            entry = self._jobs.get(w.job) if w.chunk is not None else None
            timeout_s = entry[0].opts[7] if entry is not None else None
            if timeout_s is None:
                continue
            started = w.slot[1]
            if started and now - started > timeout_s + self.grace_s:
                index = int(w.slot[0])
                if w.slot[1] != started:
                    continue  # it moved on meanwhile
                self._replace(w, timeout_reason(timeout_s), culprit=index)

    def _replace(self, w: Worker, reason: str, culprit: int | None = None) -> None:
        """Kill ``w``, flag its current answer over budget, queue the rest, start another."""
        entry = self._jobs.pop(w.job, None) if w.chunk is not None else None
        if entry is not None and culprit is None and w.slot[1]:
            culprit = int(w.slot[0])
        w.kill()
        self._pool[self._pool.index(w)] = self._spawn()
        self.replaced += 1
        if entry is None:
            return
        batch, chunk = entry
        if culprit is not None and culprit in chunk:
            batch.settle(
                culprit, over_budget_result(batch.resolved[culprit], reason, batch.opts[5])
            )
        rest = [i for i in chunk if i != culprit and batch.results[i] is None]
        if rest:
            with self._lock:
                self._queue.appendleft((batch, rest))


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
            opts = options(
                suite, mode, reduce, reasoning, max_chars, over_budget_score, profile, timeout_s
            )
            _, resolved = prepare(responses, constraints, suite, profile)
            return score_inline(responses, resolved, opts)
        pool = shared_pool(workers)
    return pool.reward_batch(responses, constraints, **kw)
