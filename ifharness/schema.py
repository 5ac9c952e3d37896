"""Pydantic models shared by every stage: what a task, a sample and a verdict are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Key = int | str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class Instruction(BaseModel):
    """One constraint instance: an id and its (validated, set-up) kwargs."""

    id: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Sample(BaseModel):
    """One prompt: the conversation to send and the constraints its answer must follow.

    Multi-turn samples carry earlier turns in ``messages``; the answer to the last user
    message is what gets checked.
    """

    key: Key
    messages: list[Message]
    instructions: list[Instruction]
    source_line: int | None = None  # line in the data file, for error messages

    @property
    def prompt(self) -> str:
        """The last user message: the text responses are joined on when no key is given."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")

    @property
    def instruction_ids(self) -> list[str]:
        return [i.id for i in self.instructions]


class HFSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    revision: str
    split: str = "train"
    name: str | None = None


class DataSource(BaseModel):
    """Where samples come from: a JSONL file shipped in ``tasks/`` or a pinned HF dataset."""

    model_config = ConfigDict(extra="forbid")
    file: str | None = None
    hf: HFSource | None = None


class FieldMap(BaseModel):
    """Names of the fields of one data row."""

    model_config = ConfigDict(extra="forbid")
    key: str = "key"
    prompt: str = "prompt"
    messages: str | None = None  # a list of {role, content}; overrides ``prompt`` when present
    instruction_ids: str = "instruction_id_list"
    kwargs: str = "kwargs"


class Generation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int = 1280
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = Field(default_factory=list)


class TaskSpec(BaseModel):
    """A task YAML under ``tasks/``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    suite: str
    profile: str = "reference"
    source: DataSource
    fields: FieldMap = Field(default_factory=FieldMap)
    generation: Generation = Field(default_factory=Generation)
    turns: Literal["single", "multi"] = "single"
    check: Literal["answer", "reasoning", "both"] = "answer"
    metric: str = "prompt_level_strict_acc"
