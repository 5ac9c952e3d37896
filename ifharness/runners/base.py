"""The runner protocol and the driver that makes every runner resumable.

A runner turns requests (sample key, messages, sampling settings) into completions (key,
sample index, answer, reasoning, finish reason, token count), one chunk at a time. The driver
owns the disk: each finished chunk is appended to ``completions.jsonl`` in one write, then
flushed and fsynced, one line per completion. A run killed at any point (Ctrl-C, ``kill -9``,
a lost machine) therefore leaves whole chunks on disk plus at most one torn last line; the
next run with the same settings reads the file back, drops the torn line and any key whose
samples are incomplete, and generates only what is missing. No key is ever written twice.

The file is the checkpoint: there is no separate state to get out of step with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from typing_extensions import Self

from ..errors import DataError, IfharnessError
from ..files import atomic_write_text, dumps_line

Key = int | str


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
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, "n": self.n, "stop": list(self.stop)}


@dataclass(frozen=True)
class Request:
    key: Key
    messages: list[dict[str, str]]  # [{"role": …, "content": …}], the system prompt included
    sampling: SamplingSettings


@dataclass
class Completion:
    key: Key
    index: int  # which of the request's ``n`` samples
    text: str  # the answer: what constraints are checked on
    reasoning: str | None = None  # the trace split off by the reasoning parser, if any
    finish_reason: str | None = None  # "stop", "length", …
    n_tokens: int = 0  # generated tokens, trace included
    raw: str | None = None  # the generated text as it came, when it differs from ``text``

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"key": self.key, "sample": self.index, "response": self.text,
                               "reasoning": self.reasoning, "finish_reason": self.finish_reason,
                               "n_tokens": self.n_tokens}
        if self.raw is not None and self.raw != self.text:
            row["raw"] = self.raw
        return row


class Runner(Protocol):
    """What the driver needs from a backend (vllm now; openai, hf, replay later)."""

    name: str

    def start(self) -> None:
        """Load the model; errors here mean nothing was generated."""

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[list[Completion]]:
        """Yield completions chunk by chunk, all ``n`` samples of a request in the same chunk.

        Chunks may come back in any order (data-parallel replicas finish when they finish).
        """

    def close(self) -> None:
        """Release the engine; safe to call twice and after a failed start."""

    def describe(self) -> dict[str, Any]:
        """Engine facts for run.json (versions, parallelism, seeding policy)."""


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ----------------------------------------------------------------------------- the file


@dataclass
class Resumed:
    rows: list[dict[str, Any]]  # kept rows, in file order
    done: set[str]  # str(key) of every key with all its samples on disk
    dropped_lines: int = 0  # torn or incomplete lines removed from the file


class CompletionStore:
    """``completions.jsonl``: append-only, one fsynced write per chunk, read back on resume."""

    def __init__(self, path: str | Path, samples_per_key: int = 1):
        self.path = Path(path)
        self.samples_per_key = samples_per_key
        self.done: set[str] = set()

    def resume(self) -> Resumed:
        """Read what a previous run left; repair the file (atomically) when it was torn."""
        if not self.path.exists():
            self.done = set()
            return Resumed([], set())
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        torn = 0
        if lines and lines[-1] != b"":  # no newline at the end: the last write was cut off
            lines = lines[:-1]
            torn = 1
        parsed: list[dict[str, Any]] = []
        for lineno, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise DataError(
                    f"{self.path}:{lineno}: not a completion line ({e}); only the last line can "
                    "be torn by a kill. Move the file away to start this run over."
                ) from None
            if not isinstance(row, dict) or "key" not in row or "response" not in row:
                raise DataError(f"{self.path}:{lineno}: a completion needs 'key' and 'response'")
            parsed.append(row)
        by_key: dict[str, dict[int, dict[str, Any]]] = {}
        for row in parsed:
            samples = by_key.setdefault(str(row["key"]), {})
            samples.setdefault(int(row.get("sample", 0) or 0), row)
        complete = {k for k, s in by_key.items()
                    if set(s) >= set(range(self.samples_per_key))}
        kept, seen = [], set()
        for row in parsed:
            k, i = str(row["key"]), int(row.get("sample", 0) or 0)
            if k in complete and i < self.samples_per_key and (k, i) not in seen:
                seen.add((k, i))
                kept.append(row)
        dropped = torn + len(parsed) - len(kept)
        if dropped:
            atomic_write_text(self.path, "".join(dumps_line(r) + "\n" for r in kept))
        self.done = complete
        return Resumed(kept, complete, dropped)

    def append(self, completions: Sequence[Completion]) -> None:
        """One write for the whole chunk, then fsync: a kill leaves whole lines or a torn last one."""
        for c in completions:
            if str(c.key) in self.done:
                raise IfharnessError(f"runner returned key {c.key} twice; it is already in {self.path}")
        payload = "".join(dumps_line(c.to_row()) + "\n" for c in completions).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done.update(str(c.key) for c in completions)


class FolderLock:
    """One process per run folder: a second ``ifharness run`` on it stops with a message.

    ``flock`` is dropped by the kernel when its holder dies, so a killed run never leaves a
    stale lock behind.
    """

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IfharnessError(
                f"run folder {self.path.parent} is in use by another ifharness process (pid "
                f"{holder}); wait for it, or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ----------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """A plain progress line on stderr: done/total, samples/s and generated tokens/s.

    On a terminal it redraws one line; in a log it prints a line per chunk.
    """

    total: int
    done: int = 0
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    label: str = "generating"
    started: float = field(default_factory=time.monotonic)
    new_samples: int = 0
    new_tokens: int = 0

    def __post_init__(self) -> None:
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def restart_clock(self) -> None:
        self.started = time.monotonic()

    def advance(self, samples: int, tokens: int) -> None:
        self.done += samples
        self.new_samples += samples
        self.new_tokens += tokens
        self.show()

    def rates(self) -> tuple[float, float, float]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return elapsed, self.new_samples / elapsed, self.new_tokens / elapsed

    def finish(self) -> None:
        """End the redrawn line on a terminal (a log already has every line)."""
        if self._tty:
            self.show(final=True)

    def show(self, final: bool = False) -> None:
        elapsed, sps, tps = self.rates()
        pct = 100 * self.done / self.total if self.total else 100.0
        left = self.total - self.done
        eta = f", eta {_duration(left / sps)}" if sps > 0 and left and not final else ""
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = (f"{self.label} [{bar}] {self.done}/{self.total} ({pct:3.0f}%) "
                f"{sps:.2f} samples/s, {tps:.0f} tok/s, {_duration(elapsed)}{eta}")
        if self._tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ----------------------------------------------------------------------------- the driver


@dataclass
class DriveStats:
    requested: int
    skipped: int  # keys already on disk from an earlier run
    generated: int  # keys generated now
    tokens: int
    seconds: float


def drive(
    runner: Runner, requests: Sequence[Request], store: CompletionStore, chunk_size: int,
    progress: Progress | None = None,
) -> DriveStats:
    """Generate every request whose key is not in ``store`` yet, appending chunk by chunk."""
    todo = [r for r in requests if str(r.key) not in store.done]
    wanted = {str(r.key): r.sampling.n for r in todo}
    skipped = len(requests) - len(todo)
    tokens = generated = 0
    started = time.monotonic()
    if progress is not None:
        progress.restart_clock()
    if todo:
        for completions in runner.generate(todo, chunk_size):
            _check_chunk(completions, wanted)
            store.append(completions)
            keys = {str(c.key) for c in completions}
            for k in keys:
                wanted.pop(k)
            n_tokens = sum(c.n_tokens for c in completions)
            generated += len(keys)
            tokens += n_tokens
            if progress is not None:
                progress.advance(len(keys), n_tokens)
        if wanted:
            missing = ", ".join(list(wanted)[:5])
            raise IfharnessError(f"runner {runner.name} returned no completion for keys {missing}")
    if progress is not None and todo:
        progress.finish()
    return DriveStats(len(requests), skipped, generated, tokens, time.monotonic() - started)


def _check_chunk(completions: Iterable[Completion], wanted: dict[str, int]) -> None:
    """A chunk must hold whole requests that were asked for and are not on disk yet."""
    counts: dict[str, set[int]] = {}
    for c in completions:
        k = str(c.key)
        if k not in wanted:
            raise IfharnessError(f"runner returned key {c.key}, which was not asked for "
                                 "or is already written")
        counts.setdefault(k, set()).add(c.index)
    for k, idx in counts.items():
        if idx != set(range(wanted[k])):
            raise IfharnessError(f"runner returned samples {sorted(idx)} for key {k}; "
                                 f"expected 0..{wanted[k] - 1} in one chunk")
