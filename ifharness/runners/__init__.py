"""Runners: requests in, completions out, chunk by chunk (see ``base``).

Backends are imported only when used, so ``import ifharness`` never pulls in vLLM or torch.
"""

from __future__ import annotations

from .base import (
                   Completion,
                   CompletionStore,
                   DriveStats,
                   Progress,
                   Request,
                   Runner,
                   SamplingSettings,
                   drive,
)

BACKENDS = ("vllm", "openai", "hf", "replay")

__all__ = ["BACKENDS", "Completion", "CompletionStore", "DriveStats", "Progress", "Request",
           "Runner", "SamplingSettings", "drive"]
