"""A real headless Chromium for the HTML tests (Debian's ``chromium``; `make browser`)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=3000",
)


def chromium() -> str:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "chromium is not installed (`make browser`, or apt-get install -y chromium); "
        "the browser tests need a real headless browser"
    )


def _run(args: list[str], timeout: int = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ifh-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def url(path: Path, fragment: str = "") -> str:
    return Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")


def dump_dom(path: Path, fragment: str = "") -> str:
    """The DOM after the page's scripts ran, serialised by the browser."""
    proc = _run(["--dump-dom", url(path, fragment)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def screenshot(path: Path, out: Path, size: str = "1400,1800") -> tuple[int, int]:
    """Render ``path`` to the PNG ``out``; returns its (width, height)."""
    proc = _run([f"--screenshot={out}", f"--window-size={size}", url(path)])
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $IFHARNESS_SCREENSHOT_DIR (to look at them), else ``tmp_path``."""
    d = Path(os.environ.get("IFHARNESS_SCREENSHOT_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d
