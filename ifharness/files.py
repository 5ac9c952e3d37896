"""Reading JSONL with errors that point at the line, and atomic writes."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import DataError


def read_jsonl(path: str | Path, what: str = "file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; bad lines raise DataError."""
    for lineno, _, obj in read_jsonl_offsets(path, what):
        yield lineno, obj


def read_jsonl_offsets(
    path: str | Path,
    what: str = "file",
    start: int = 0,
    stop: int | None = None,
    first_line: int = 1,
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(line number, byte offset, object)`` per non-blank line, read line by line (never the
    whole file at once: the streaming scorer indexes a million answers this way).

    ``start``/``stop``: only the lines that begin in ``[start, stop)`` (``start`` at the
    beginning of a line: :func:`line_ranges`), numbered from ``first_line``."""
    path = Path(path)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{what} {path} is a folder; give a JSONL file") from None
    offset = start
    with f:
        f.seek(start)
        for lineno, raw in enumerate(f, start=first_line):
            if stop is not None and offset >= stop:
                break
            begin, offset = offset, offset + len(raw)
            try:
                line = raw.rstrip(b"\n").decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 (byte {e.start}: "
                    f"{raw[e.start : e.start + 1]!r}); re-encode the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                    "each line must be one JSON object"
                ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, begin, obj


def line_ranges(path: str | Path, size: int) -> list[tuple[int, int]]:
    """The file cut into byte ranges of about ``size`` bytes, each starting at the beginning
    of a line and ending where the next starts (the streaming scorer's chunks; the cuts are
    found by seeking, not by reading the file)."""
    total = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        while cuts[-1] + size < total:
            f.seek(cuts[-1] + size)
            f.readline()  # to the end of the line the seek landed in
            at = f.tell()
            if at >= total:
                break
            cuts.append(at)
    cuts.append(total)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dumps_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(dumps_line(r) + "\n" for r in rows))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def now_utc() -> str:
    """The time stamp every run-folder file uses: UTC, ISO 8601, whole seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
