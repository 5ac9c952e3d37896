"""The runner protocol, what runners hand back, and the one driver that makes them resumable.

A runner turns requests (sample key, messages, sampling settings) into :class:`Chunk`\\ s,
one at a time: the completions of some requests (key, sample index, answer, reasoning,
finish reason, token count) and the requests it gave up on (:class:`Failure`: retries spent,
no answer in a replayed file). :func:`drive` owns what happens next: each chunk's completions
go to a :class:`CompletionSink` in one write (the run folder's ``completions.jsonl``, flushed
and fsynced), its failures to a :class:`FailureSink` (``failed.jsonl``). A run killed at any
point therefore leaves whole chunks on disk; the next run with the same settings generates
only what is missing, and retries what failed. No key is ever written twice.

What every backend shares lives here, once: splitting the reasoning trace off a generated
text (:func:`to_completion`) and the per-request seed (:func:`request_seed`). Backends never
import from each other.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from ..errors import IfharnessError

if TYPE_CHECKING:
    from ..reasoning import Parser
    from ..rundir import CompletionRow, FailureRow

Key = int | str
T = TypeVar("T")


@dataclass(frozen=True)
class SamplingSettings:
    """Always explicit: vLLM's own default is 16 new tokens, or the model's generation_config."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    n: int = 1
    stop: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "n": self.n,
            "stop": list(self.stop),
        }


@dataclass(frozen=True)
class Request:
    """One conversation to answer. In a conversation task ``turn`` says which user turn the
    last message is (``messages`` then holds the model's own earlier answers); the driver
    sees one turn at a time, so ``key`` stays unique among the requests it hands out."""

    key: Key
    messages: list[dict[str, str]]  # [{"role": …, "content": …}], the system prompt included
    sampling: SamplingSettings
    turn: int | None = None

    @property
    def seed_key(self) -> str | Key:
        """What the per-request seed is derived from: the key, with the turn in a
        conversation, so that each turn draws its own sample."""
        return self.key if self.turn is None else f"{self.key}\x00turn{self.turn}"


@dataclass
class Completion:
    key: Key
    index: int  # which of the request's ``n`` samples
    text: str  # the answer: what constraints are checked on
    reasoning: str | None = None  # the trace split off by the reasoning parser, if any
    finish_reason: str | None = None  # "stop", "length", …
    n_tokens: int = 0  # generated tokens, trace included
    raw: str | None = None  # the generated text as it came, when it differs from ``text``

    def to_row(self) -> CompletionRow:
        row: CompletionRow = {
            "key": self.key,
            "sample": self.index,
            "response": self.text,
            "reasoning": self.reasoning,
            "finish_reason": self.finish_reason,
            "n_tokens": self.n_tokens,
        }
        if self.raw is not None and self.raw != self.text:
            row["raw"] = self.raw
        return row


@dataclass(frozen=True)
class Failure:
    """A request the runner gave up on: nothing of it is written as a completion, so running
    the same command again asks for it again.

    ``reason`` is ``failed`` when retrying may help (a server error after its retries) and
    ``missing`` when it cannot until the input changes (a replayed file without the answer).
    """

    key: Key
    error: str
    attempts: int = 1
    status: int | None = None  # the last HTTP status, for server backends
    reason: str = "failed"

    def to_row(self) -> FailureRow:
        return {
            "key": self.key,
            "error": self.error,
            "attempts": self.attempts,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass
class Chunk:
    """What a runner yields: whole requests, done or given up on.

    Every completion of a request (all ``n`` samples) is in the same chunk, and a key is
    either completed or failed, never both. Iterating a chunk gives its completions.
    """

    completions: list[Completion] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __iter__(self) -> Iterator[Completion]:
        return iter(self.completions)

    @property
    def keys(self) -> set[str]:
        return {str(c.key) for c in self.completions} | {str(f.key) for f in self.failures}


class Runner(Protocol):
    """What the driver needs from a backend."""

    name: str

    def start(self) -> None:
        """Load the model; errors here mean nothing was generated."""

    def generate(
        self, requests: Sequence[Request], chunk_size: int
    ) -> Iterator[Chunk | Sequence[Completion]]:
        """Yield chunks of about ``chunk_size`` requests each (see :class:`Chunk`).

        Chunks may come back in any order (data-parallel replicas finish when they finish).
        A runner that never gives up on a request may yield plain lists of completions.
        """

    def close(self) -> None:
        """Release the engine; safe to call twice and after a failed start."""

    def describe(self) -> dict[str, Any]:
        """Engine facts for run.json (versions, parallelism, seeding policy)."""


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ----------------------------------------------------------------------------- shared by runners


def to_completion(
    key: Key,
    index: int,
    text: str,
    parser: Parser | None,
    *,
    reasoning: str | None = None,
    finish_reason: str | None = None,
    n_tokens: int = 0,
) -> Completion:
    """One generated text as a completion, its reasoning trace split off.

    A ``reasoning`` that came apart already (a server's ``message.reasoning``, a replayed
    row's ``reasoning`` field) is kept as it came and the text is not parsed; otherwise
    ``parser`` splits the text (no parser: the whole text is the answer). ``raw`` keeps the
    text as generated whenever a trace was cut out of it.
    """
    if reasoning is not None or parser is None:
        return Completion(key, index, text, reasoning, finish_reason, n_tokens)
    split = parser.split(text)
    return Completion(
        key,
        index,
        split.answer,
        split.reasoning,
        finish_reason,
        n_tokens,
        raw=text if split.reasoning is not None else None,
    )


def request_seed(seed: int, key: Any, namespace: str = "") -> int:
    """A per-request seed that depends only on the run's seed and the sample key, so a sampled
    answer does not depend on which chunk, batch or replica it landed in. ``namespace``
    keeps one backend's seeds apart from another's (the hf runner's are ``"hf"``)."""
    prefix = f"{namespace}\x00" if namespace else ""
    digest = hashlib.sha256(f"{prefix}{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# ----------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """Progress of a run on stderr: answers done/total, answers/s, tokens/s and ETA (tqdm).

    Two sources move it. :func:`drive` calls :meth:`advance` for every chunk written (the
    durable count); a runner that sees answers finish before their chunk is written (the
    vllm runner's replica, per engine step) calls :meth:`tick` for each, so the display moves
    per answer while checkpoints stay per chunk. What is shown is the larger of the two, so
    an answer ticked and then written counts once. Rates count this session's answers only
    (not those resumed from disk), from :meth:`restart_clock`.

    On a terminal it is a tqdm bar, redrawn in place. Anywhere else (a log file, CI) it
    prints a plain line (no carriage returns) when another ``every_pct`` of the total is
    done or ``every_s`` seconds have passed with something new, and one at the end.
    """

    total: int
    done: int = 0  # answers on disk, those resumed included
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    label: str = "generating"
    started: float = field(default_factory=time.monotonic)
    new_samples: int = 0  # written this session
    new_tokens: int = 0
    every_pct: float = 10.0
    every_s: float = 30.0
    ticked_samples: int = 0  # seen finished this session, written or not
    ticked_tokens: int = 0

    def __post_init__(self) -> None:
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._resumed = self.done
        self._bar: Any = None
        self._last_line_s = 0.0
        self._last_line_n = -1

    @property
    def shown(self) -> int:
        return min(self.total, max(self.done, self._resumed + self.ticked_samples))

    @property
    def shown_tokens(self) -> int:
        return max(self.new_tokens, self.ticked_tokens)

    def restart_clock(self) -> None:
        self.started = time.monotonic()
        self._last_line_s = self.started
        if self._tty and self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                initial=self.done,
                desc=self.label,
                unit=" answers",  # tqdm's rate counts from ``initial``: this session's only
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                "{rate_fmt}{postfix}]",
            )

    def advance(self, samples: int, tokens: int) -> None:
        """A chunk was written: ``samples`` answers, ``tokens`` generated tokens."""
        self.done += samples
        self.new_samples += samples
        self.new_tokens += tokens
        self.show()

    def tick(self, samples: int, tokens: int) -> None:
        """Answers finished and not written yet (a runner's finer-grained report)."""
        self.ticked_samples += samples
        self.ticked_tokens += tokens
        self.show()

    def rates(self) -> tuple[float, float, float]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        new = self.shown - self._resumed
        return elapsed, new / elapsed, self.shown_tokens / elapsed

    def finish(self) -> None:
        """The last line (a terminal's bar is closed, a log gets the final count)."""
        if self._bar is not None:
            self._show_bar()
            self._bar.close()
            self._bar = None
        elif not self._tty and self._last_line_n != self.shown:
            self.stream.write(self.line(final=True) + "\n")
            self.stream.flush()

    def show(self, final: bool = False) -> None:
        if self._tty:
            if self._bar is None:
                self.restart_clock()
            self._show_bar()
            return
        now = time.monotonic()
        n = self.shown
        step = max(1, int(self.total * self.every_pct / 100)) if self.total else 1
        crossed = self._last_line_n < 0 or n // step > self._last_line_n // step
        if not (final or crossed or n == self.total or now - self._last_line_s >= self.every_s):
            return
        if n == self._last_line_n and not final:
            return
        self.stream.write(self.line(final=final) + "\n")
        self.stream.flush()
        self._last_line_s, self._last_line_n = now, n

    def _show_bar(self) -> None:
        _, _, tps = self.rates()
        bar = self._bar
        bar.set_postfix_str(f"{tps:.0f} tok/s", refresh=False)
        bar.update(self.shown - bar.n)
        bar.refresh()

    def line(self, final: bool = False) -> str:
        """One plain progress line (what a log gets)."""
        elapsed, aps, tps = self.rates()
        n = self.shown
        pct = 100 * n / self.total if self.total else 100.0
        left = self.total - n
        eta = f", eta {_duration(left / aps)}" if aps > 0 and left and not final else ""
        return (
            f"{self.label} {n}/{self.total} ({pct:3.0f}%) {aps:.2f} answers/s, "
            f"{tps:.0f} tok/s, {_duration(elapsed)}{eta}"
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ----------------------------------------------------------------------------- the driver


class CompletionSink(Protocol):
    """Where completions go (the run folder's ``CompletionStore``, or its ``TurnStore`` view
    of one conversation turn)."""

    @property
    def done(self) -> set[str]:
        """str(key) of every request already complete there."""

    def append(self, completions: Sequence[Completion]) -> None:
        """Write a whole chunk at once, durably."""


class FailureSink(Protocol):
    """Where failures go (the run folder's ``failed.jsonl``)."""

    def record_failure(self, failure: Failure) -> None:
        """Write one failure durably, the moment it is known."""


@dataclass
class DriveStats:
    requested: int
    skipped: int  # keys already on disk from an earlier run
    generated: int  # keys generated now
    tokens: int
    seconds: float
    failed: int = 0  # keys the runner gave up on now


def drive(
    runner: Runner,
    requests: Sequence[Request],
    store: CompletionSink,
    chunk_size: int,
    progress: Progress | None = None,
    failures: FailureSink | None = None,
) -> DriveStats:
    """Generate every request whose key is not in ``store`` yet, chunk by chunk.

    Each chunk is checked (whole requests that were asked for and are not written yet), its
    completions appended to ``store`` in one write, its failures handed to ``failures``.
    Without a failure sink a failure stops the run. A request the runner neither completed
    nor gave up on is an error at the end.
    """
    todo = [r for r in requests if str(r.key) not in store.done]
    wanted = {str(r.key): r.sampling.n for r in todo}
    stats = DriveStats(len(requests), len(requests) - len(todo), 0, 0, 0.0)
    started = time.monotonic()
    if progress is not None:
        progress.restart_clock()
    # a runner that sees answers finish before their chunk is whole may report them
    # (``report_progress(callback)``; the vllm runner's replicas do, per engine step)
    report_progress = getattr(runner, "report_progress", None)
    if progress is not None and callable(report_progress):
        report_progress(progress.tick)
    try:
        if todo:
            for item in runner.generate(todo, chunk_size):
                chunk = item if isinstance(item, Chunk) else Chunk(list(item))
                _check_chunk(chunk, wanted)
                if chunk.completions:
                    store.append(chunk.completions)
                for failure in chunk.failures:
                    if failures is None:
                        raise IfharnessError(
                            f"runner {runner.name} could not generate key "
                            f"{failure.key}: {failure.error}"
                        )
                    failures.record_failure(failure)
                for k in chunk.keys:
                    wanted.pop(k)
                done = {str(c.key) for c in chunk.completions}
                n_tokens = sum(c.n_tokens for c in chunk.completions)
                stats.generated += len(done)
                stats.failed += len(chunk.failures)
                stats.tokens += n_tokens
                if progress is not None and done:
                    progress.advance(len(done), n_tokens)
            if progress is not None:
                progress.finish()
        if wanted:
            missing = ", ".join(list(wanted)[:5])
            raise IfharnessError(f"runner {runner.name} returned no completion for keys {missing}")
    finally:
        stats.seconds = time.monotonic() - started
        if progress is not None and callable(report_progress):
            report_progress(None)
    return stats


def _check_chunk(chunk: Chunk, wanted: dict[str, int]) -> None:
    """A chunk must hold whole requests that were asked for and are not written yet."""
    counts: dict[str, set[int]] = {}
    for c in chunk.completions:
        k = str(c.key)
        if k not in wanted:
            raise IfharnessError(
                f"runner returned key {c.key}, which was not asked for or is already written"
            )
        counts.setdefault(k, set()).add(c.index)
    for k, idx in counts.items():
        if idx != set(range(wanted[k])):
            raise IfharnessError(
                f"runner returned samples {sorted(idx)} for key {k}; "
                f"expected 0..{wanted[k] - 1} in one chunk"
            )
    failed: set[str] = set()
    for f in chunk.failures:
        k = str(f.key)
        if k not in wanted or k in counts or k in failed:
            raise IfharnessError(
                f"runner gave up on key {f.key}, which was not asked for, is "
                "already written, or is also completed or failed in this chunk"
            )
        failed.add(k)
