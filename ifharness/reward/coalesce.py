"""Scoring for ``ifharness serve-reward`` off the event loop, concurrent requests coalesced.

Why it is its own module: scoring is CPU-bound, so it never runs on the event loop. One
dispatcher task collects every request that arrived while the pool was busy and sends them to
the pool as one batch (from one helper thread), then hands each request its share of the
results. Concurrent single requests from many rollout workers thus become pool-sized batches
without any waiting when the server is idle. Requests are merged only with others that ask
for the same :class:`~ifharness.reward.http_schema.Options`, and one that makes a merged call
fail is retried alone, so it fails alone.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .http_schema import ID_KEYS, Options

if TYPE_CHECKING:
    from . import RewardPool, RewardResult


@dataclass
class _Job:
    responses: list[str]
    constraints: list[Any]
    options: Options
    future: asyncio.Future[list[RewardResult]] = field(repr=False)


class Coalescer:
    """Sends every request waiting while the pool is busy to the pool as one batch.

    One dispatcher task, one helper thread: the pool sees one call at a time, so it needs to
    be neither thread-safe nor re-entrant, and the event loop never runs a verifier.
    """

    def __init__(self, pool: RewardPool, **fixed: Any) -> None:
        self._pool = pool
        self._fixed = fixed  # reward_batch keywords every call gets (reasoning, ...)
        self._waiting: list[_Job] = []
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ifharness-reward")
        self._task: asyncio.Task[None] | None = None
        self.pool_calls = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in self._waiting:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._thread.shutdown(wait=True)

    async def score(
        self, responses: list[str], constraints: list[Any], options: Options
    ) -> list[RewardResult]:
        if not responses:
            return []
        future: asyncio.Future[list[RewardResult]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Job(responses, constraints, options, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            jobs, self._waiting = self._waiting, []
            groups: dict[Options, list[_Job]] = {}
            for job in jobs:
                if not job.future.done():  # the client went away
                    groups.setdefault(job.options, []).append(job)
            for options, group in groups.items():
                try:
                    await self._dispatch(options, group)
                except Exception as e:  # never leave a request waiting forever
                    for job in group:
                        _settle(job, error=e)

    async def _dispatch(self, options: Options, group: list[_Job]) -> None:
        responses = [r for job in group for r in job.responses]
        constraints = [c for job in group for c in job.constraints]
        try:
            results = await self._call(responses, constraints, options)
        except Exception as e:
            if len(group) > 1:  # one bad request must not fail the others merged with it
                for job in group:
                    await self._dispatch(options, [job])
                return
            _settle(group[0], error=e)
            return
        start = 0
        for job in group:
            end = start + len(job.responses)
            _settle(job, results=results[start:end])
            start = end

    async def _call(
        self, responses: list[str], constraints: list[Any], options: Options
    ) -> list[RewardResult]:
        self.pool_calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._thread,
            lambda: self._pool.reward_batch(
                responses,
                [_as_set(c) for c in constraints],
                suite=options.suite,
                mode=options.mode,
                reduce=options.reduce,
                **self._fixed,
            ),
        )


def _as_set(constraints: Any) -> Any:
    """One constraint written alone (``{"id", "kwargs"}`` or a pair) as a list of one, so
    that a list of sets is never read as one set."""
    if isinstance(constraints, dict) and not any(k in constraints for k in ID_KEYS):
        return [constraints]
    if isinstance(constraints, (list, tuple)) and constraints and isinstance(constraints[0], str):
        if len(constraints) == 2 and (constraints[1] is None or isinstance(constraints[1], dict)):
            return [constraints]
    return constraints


def _settle(
    job: _Job, results: list[RewardResult] | None = None, error: BaseException | None = None
) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(results or [])


__all__ = ["Coalescer"]
