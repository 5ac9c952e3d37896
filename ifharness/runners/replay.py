"""The ``replay`` runner: answers someone already generated, read from a JSONL file.

``ifharness run --backend replay --responses FILE`` reads the same rows as ``ifharness
score --responses FILE`` (``response`` plus ``key`` or the exact ``prompt``; optional
``reasoning`` and ``finish_reason``) and joins them to the task's prompts with the same rule
(``responses.join``: by key, else by prompt text, the last of duplicate rows wins), so the
verdicts and metrics are those of ``ifharness score`` on that file. What ``run`` adds is the
run folder (run.json, completions.jsonl) that ``leaderboard``, ``compare`` and ``gate`` read.

The rows are taken as written: no reasoning parser is applied unless ``--reasoning-parser``
names one (then a row without a ``reasoning`` field is split by it). A prompt the file has
no answer for is reported as *failed* (``failed.jsonl``), scored as not followed, exactly
as ``score`` counts it missing, and the run is marked incomplete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import IfharnessError
from ..models import ModelRef
from ..reasoning import Parser
from .base import Completion, Request, chunked


def describe_file(path: str, name: str | None = None) -> ModelRef:
    """The responses file as the run's "model": its name (``--model``, else the file's stem)
    and its sha256, which is part of the run's identity."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise IfharnessError(f"--responses {path}: no such file")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    return ModelRef(name or file.stem, str(file.resolve()), "replay", None, {"sha256": digest})


class ReplayRunner:
    name = "replay"

    def __init__(self, path: str, parser: Parser | None = None):
        self.path = Path(path).expanduser()
        self.parser = parser
        self.on_failure: Callable[[Any], None] | None = None
        self._rows: list[tuple[int, dict[str, Any]]] = []

    def start(self) -> None:
        from ..responses import read_responses

        if not self.path.is_file():
            raise IfharnessError(f"--responses {self.path}: no such file")
        self._rows = read_responses(self.path)

    def close(self) -> None:
        self._rows = []

    def describe(self) -> dict[str, Any]:
        return {"backend": "replay", "responses": str(self.path), "rows": len(self._rows),
                "reasoning_parser": self.parser.name if self.parser else None}

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[list[Completion]]:
        from types import SimpleNamespace

        from ..responses import join

        samples = [SimpleNamespace(key=r.key, prompt=_last_user(r) or "") for r in requests]
        joined = join(samples, self._rows)
        for part in chunked(list(requests), chunk_size):
            chunk: list[Completion] = []
            for r in part:
                if r.sampling.n != 1:
                    raise IfharnessError("--backend replay holds one answer per prompt; "
                                         "leave out --n")
                answer = joined.answers.get(str(r.key))
                if answer is None:
                    if self.on_failure is not None:
                        from .openai import Failure

                        self.on_failure(Failure(r.key, f"no answer in {self.path}", 1))
                    continue
                chunk.append(self._completion(r, answer))
            if chunk:
                yield chunk

    def _completion(self, r: Request, answer: Any) -> Completion:
        text, reasoning, raw = answer.text, answer.reasoning, None
        if reasoning is None and self.parser is not None:
            split = self.parser.split(text)
            if split.reasoning is not None:
                raw, text, reasoning = text, split.answer, split.reasoning
        return Completion(key=r.key, index=0, text=text, reasoning=reasoning,
                          finish_reason=answer.finish_reason, raw=raw)


def _last_user(r: Request) -> str | None:
    for m in reversed(r.messages):
        if m.get("role") == "user":
            return m.get("content")
    return None
