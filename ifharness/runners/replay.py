"""The ``replay`` runner: answers someone already generated, read from a JSONL file.

``ifharness run --backend replay --responses FILE`` reads the same rows as ``ifharness
score --responses FILE`` (``response`` plus ``key`` or the exact ``prompt``; optional
``reasoning`` and ``finish_reason``; ``turn`` for a conversation task, whose turns are
joined one turn at a time) and joins them to the task's prompts with the same rule
(``responses.join``: by key, else by prompt text, the last of duplicate rows wins), so the
verdicts and metrics are those of ``ifharness score`` on that file. What ``run`` adds is the
run folder (run.json, completions.jsonl) that ``leaderboard``, ``compare`` and ``gate`` read.

The rows are taken as written: no reasoning parser is applied unless ``--reasoning-parser``
names one (then a row without a ``reasoning`` field is split by it). A prompt the file has
no answer for is reported as *missing* (``Failure(reason="missing")``), not as a failure:
running again cannot bring it, so ``run`` treats it exactly as ``score`` does. It is scored
as not followed and listed in ``metrics["missing"]``, a warning names how many and the first
keys, run.json ``generation.missing_answers`` counts it, nothing goes to ``failed.jsonl``,
and the run is ``complete`` (exit 0, as ``score`` on the same file). Edit the file and run
with ``--overwrite`` (the file's hash is part of the run's identity) to score the new answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ..errors import IfharnessError
from ..models import ModelRef
from ..reasoning import Parser
from .base import Chunk, Completion, Failure, Request, chunked, to_completion
from .registry import BackendOptions, RunContext, register_backend


class ReplayBackendOptions(BackendOptions):
    """``ifharness run --backend replay``."""

    responses: str = Field(
        description="JSONL of answers (key or prompt, response, optional "
        "reasoning), as for `ifharness score`",
        json_schema_extra={"metavar": "FILE"},
    )

    @field_validator("responses")
    @classmethod
    def _exists(cls, value: str) -> str:
        if not Path(value).expanduser().is_file():
            raise ValueError("no such file")
        return value


def describe_file(path: str, name: str | None = None) -> ModelRef:
    """The responses file as the run's "model": its name (``--model``, else the file's stem)
    and its sha256, which is part of the run's identity."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise IfharnessError(f"--responses {path}: no such file")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    return ModelRef(name or file.stem, str(file.resolve()), "replay", None, {"sha256": digest})


def _file_as_model(
    options: ReplayBackendOptions, model: str | None, chat_template: str | None
) -> ModelRef:
    return describe_file(options.responses, model)


def _file_identity(options: ReplayBackendOptions, model: ModelRef) -> dict[str, Any]:
    """Another file (or the same file edited) is another run."""
    return {"backend": "replay", "responses_sha256": model.details.get("sha256")}


@register_backend(
    "replay",
    options=ReplayBackendOptions,
    summary="answers from a JSONL file, scored as `ifharness score` does",
    resolve_model=_file_as_model,
    identity=_file_identity,
    default_parser="none",
)  # as `ifharness score`: rows are scored as written
def replay_backend(
    options: ReplayBackendOptions, run: RunContext, model: ModelRef, parser: Parser
) -> ReplayRunner:
    return ReplayRunner(options.responses, parser)


class ReplayRunner:
    name = "replay"

    def __init__(self, path: str, parser: Parser | None = None):
        self.path = Path(path).expanduser()
        self.parser = parser
        self._rows: list[tuple[int, dict[str, Any]]] = []

    def start(self) -> None:
        from ..responses import read_responses

        if not self.path.is_file():
            raise IfharnessError(f"--responses {self.path}: no such file")
        self._rows = read_responses(self.path)

    def close(self) -> None:
        self._rows = []

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "replay",
            "responses": str(self.path),
            "rows": len(self._rows),
            "reasoning_parser": self.parser.name if self.parser else None,
        }

    def generate(self, requests: Sequence[Request], chunk_size: int) -> Iterator[Chunk]:
        from ..responses import join
        from ..schema import Message, Sample

        # joined by key, else by the last user message, exactly as `ifharness score` joins
        samples = [
            Sample(
                key=r.key,
                messages=[Message(role="user", content=_last_user(r) or "")],
                instructions=[],
            )
            for r in requests
        ]
        # a conversation is driven one turn at a time: its rows carry ``turn`` and only
        # that turn's rows are joined (a key has one answer per turn)
        turn = requests[0].turn if requests else None
        rows = self._rows
        if turn is not None:
            rows = [(line, row) for line, row in rows if _turn_of(row) == turn]
        joined = join(samples, rows)
        for part in chunked(list(requests), chunk_size):
            chunk = Chunk()
            for r in part:
                if r.sampling.n != 1:
                    raise IfharnessError(
                        "--backend replay holds one answer per prompt; leave out --n"
                    )
                answer = joined.answers.get(str(r.key))
                if answer is None:
                    chunk.failures.append(
                        Failure(r.key, f"no answer in {self.path}", reason="missing")
                    )
                else:
                    chunk.completions.append(self._completion(r, answer))
            yield chunk

    def _completion(self, r: Request, answer: Any) -> Completion:
        return to_completion(
            r.key,
            0,
            answer.text,
            self.parser,
            reasoning=answer.reasoning,
            finish_reason=answer.finish_reason,
        )


def _turn_of(row: dict[str, Any]) -> int | None:
    turn = row.get("turn")
    try:
        return None if turn is None else int(turn)
    except (TypeError, ValueError):
        return None


def _last_user(r: Request) -> str | None:
    for m in reversed(r.messages):
        if m.get("role") == "user":
            return m.get("content")
    return None
