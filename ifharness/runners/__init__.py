"""Runners: requests in, chunks of completions and failures out (see ``base``).

Each backend is one module here that registers itself (``registry``); outside packages add
theirs through the ``ifharness.backends`` entry point group. Engines are imported only when a
run needs them, so ``import ifharness`` never pulls in vLLM, torch or httpx.
"""

from __future__ import annotations

from .base import (
    Chunk,
    Completion,
    DriveStats,
    Failure,
    Progress,
    Request,
    Runner,
    SamplingSettings,
    drive,
)

__all__ = [
    "Chunk",
    "Completion",
    "DriveStats",
    "Failure",
    "Progress",
    "Request",
    "Runner",
    "SamplingSettings",
    "drive",
]
