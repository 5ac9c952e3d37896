"""Pydantic models shared by every stage: what a task, a sample and a verdict are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    #: what a generated row says about itself beyond the prompt (``rendering``, ``level``,
    #: ``base_task``, ``generator``; see :data:`SAMPLE_META_FIELDS`), for metrics that group
    #: samples by it (density level); empty for ordinary data
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The last user message: the text responses are joined on when no key is given."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")

    @property
    def instruction_ids(self) -> list[str]:
        return [i.id for i in self.instructions]


#: Row fields the loader keeps on :attr:`Sample.meta` when a row carries them (generated tasks).
SAMPLE_META_FIELDS = ("rendering", "level", "base_task", "generator")


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


class Generated(BaseModel):
    """The ``generated:`` block of a task ``ifharness generate`` wrote: enough to regenerate it.

    ``set_id`` is shared by the renderings of one set (it hashes only what the wording does
    not change), so ``ifharness compare`` can pair a prose run with a pseudo-code run.
    ``args`` differ by family, so unknown keys are kept rather than refused.
    """

    model_config = ConfigDict(extra="allow")
    generator: str = "ifharness"
    version: str
    family: str
    seed: int
    rendering: str
    set_id: str
    args: dict[str, Any] = Field(default_factory=dict)
    vocabulary: dict[str, Any] | None = None


#: What ``check:`` will accept once reasoning-trace checks land (issue 13); refused until then.
TRACE_CHECKS = ("reasoning", "both")


class TaskSpec(BaseModel):
    """A task YAML under ``tasks/``.

    ``suite`` names the verifier namespace every constraint id of the task is looked up in
    (a package under ``verifiers/`` or an ``ifharness.suites`` entry point); the loader
    refuses a suite that is not installed and an id that the suite does not define.

    ``turns`` and ``check`` accept only what the engine does today, so that no field is
    validated and then ignored:

    * ``turns: single`` (the default): each sample is one user message (system messages
      allowed, no assistant turn); a row whose ``messages`` hold a history is refused.
    * ``turns: multi``: a *fixed* history is replayed. The task must map ``fields.messages``;
      each row's conversation must end with a user message and hold at least one earlier
      assistant turn. The model answers the last user turn only and that answer is checked;
      the history's assistant turns are data, not the model's own earlier answers. Feeding
      the model its own answers turn by turn, with constraints at each turn, is issue 13.
    * ``check: answer`` is the only value: the answer (the text after any reasoning trace)
      is checked. ``reasoning`` and ``both`` are refused with a message until trace checks
      land (issue 13).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    suite: str
    profile: str = "reference"
    source: DataSource
    fields: FieldMap = Field(default_factory=FieldMap)
    generation: Generation = Field(default_factory=Generation)
    turns: Literal["single", "multi"] = "single"
    check: Literal["answer"] = "answer"
    metric: str = "prompt_level_strict_acc"
    generated: Generated | None = None  # set by ``ifharness generate``; None for authored tasks

    @field_validator("check", mode="before")
    @classmethod
    def _trace_checks_not_yet(cls, value: Any) -> Any:
        if value in TRACE_CHECKS:
            raise ValueError(
                f"check: {value} is not implemented yet: checking the reasoning trace comes "
                "with issue 13 (reasoning traces and conversations); use check: answer"
            )
        return value

    @model_validator(mode="after")
    def _multi_turn_needs_messages(self) -> TaskSpec:
        if self.turns == "multi" and not self.fields.messages:
            raise ValueError(
                "turns: multi replays a fixed history: map it with fields.messages "
                "(a list of {role, content} per row, ending with the user turn to answer)"
            )
        return self
