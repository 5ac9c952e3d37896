"""The reward pool's worker process: warm once, then score the chunks the parent sends.

Each worker runs :func:`worker_main` in a fresh interpreter (``spawn``): it runs the pool's
``initializer``, imports and warms the verifiers, says ``ready``, then for every chunk
writes into its shared-memory slot which answer it is on and since when (the parent's hard
bound reads it), scores the answers with the soft ``SIGALRM`` bound armed, and sends the
chunk's results back at once.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .core import SoftTimer, resolve, score_answer

TICK_S = 0.02  # how often the parent looks at the slots while it waits


def _warm() -> None:
    from ifharness.verifiers import load_all

    from .core import reward

    load_all()
    text = "Hello World. This is a SHORT test, isn't it? Yes!\n\n* one\n* two"
    for cid, kw in (
        ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"}),
        (
            "change_case:capital_word_frequency",
            {"capital_frequency": 1, "capital_relation": "at least"},
        ),
        ("language:response_language", {"language": "en"}),
    ):
        try:
            reward(text, [{"id": cid, "kwargs": kw}], suite="ifeval", mode="loose")
        except Exception:  # noqa: BLE001,S110 - warming is best effort
            pass


def worker_main(conn: Connection, slot: Any, initializer: Callable[[], None] | None) -> None:
    """Score the chunks the parent sends until it sends None (or goes away)."""
    try:
        if initializer is not None:
            initializer()
        _warm()
        conn.send(("ready", None, None))
        timers: dict[float, SoftTimer] = {}
        while True:
            msg = conn.recv()
            if msg is None:
                return
            if msg[0] == "clear":
                from ifharness.verifiers import nlp

                nlp.clear_caches()
                continue
            _, job, items, opts = msg
            suite, mode, reduce, reasoning, max_chars, obs, profile, timeout_s = opts
            timer = None
            if timeout_s:
                timer = timers.get(timeout_s) or timers.setdefault(timeout_s, SoftTimer(timeout_s))
            out = []
            try:
                for index, text, key in items:
                    slot[1] = 0.0
                    slot[0] = index
                    slot[1] = time.monotonic()
                    res = resolve(key, suite, profile)
                    out.append(
                        score_answer(
                            text, res, mode, reduce, reasoning, max_chars, obs, profile, timer
                        )
                    )
                slot[1] = 0.0
            except Exception:  # noqa: BLE001 - reported to the parent, which raises it
                slot[1] = 0.0
                conn.send(("error", job, traceback.format_exc()))
                continue
            conn.send(("done", job, out))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return


class Worker:
    def __init__(self, ctx: Any, initializer: Callable[[], None] | None):
        self.slot = ctx.RawArray("d", 2)
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_main,
            args=(child, self.slot, initializer),
            daemon=True,
            name="ifharness-reward",
        )
        self.process.start()
        child.close()
        self.ready = False
        self.chunk: list[int] | None = None  # batch indices of the chunk it is on
        self.job = -1

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(timeout=5)
        finally:
            self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        self.conn.close()
