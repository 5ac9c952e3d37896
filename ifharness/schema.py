"""Pydantic models shared by every stage: what a task, a sample and a verdict are."""

from __future__ import annotations

from collections.abc import Sequence
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

    In a conversation task (``turns: conversation``) a row becomes one sample per user turn,
    all with the row's key and ``turn`` = 1, 2, …; ``messages`` then holds only that turn's
    own message(s) (the user turn, and on turn 1 any system message): what is sent at turn k
    is built at run time from turns 1..k and the model's own answers to turns 1..k-1.
    """

    key: Key
    messages: list[Message]
    instructions: list[Instruction]
    turn: int | None = None  # 1, 2, … in a conversation task; None otherwise
    source_line: int | None = None  # line in the data file, for error messages
    #: what a generated row says about itself beyond the prompt (``rendering``, ``level``,
    #: ``base_task``, ``generator``; see :data:`SAMPLE_META_FIELDS`), for metrics that group
    #: samples by it (density level); empty for ordinary data
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The last user message: the text responses are joined on when no key is given."""
        return last_user(self.messages)

    @property
    def instruction_ids(self) -> list[str]:
        return [i.id for i in self.instructions]

    @property
    def uid(self) -> str:
        """What identifies this sample's answer in a run: ``str(key)``, or key and turn in a
        conversation (``rundir.work_id``, the same string completions and verdicts use)."""
        return work_id(self.key, self.turn)


def last_user(messages: Sequence[Message]) -> str:
    """The content of the last user message (``Sample.prompt``); StopIteration if none."""
    return next(m.content for m in reversed(messages) if m.role == "user")


def work_id(key: Key, turn: int | None = None) -> str:
    """One unit of work as text: ``str(key)`` for a single-turn sample, ``"<key> turn <k>"``
    in a conversation. A run's samples all have a turn or none do, so the two forms never
    meet in one folder; the text is also what messages name the unit by."""
    return str(key) if turn is None else f"{key} turn {turn}"


#: Row fields the loader keeps on :attr:`Sample.meta` when a row carries them (generated
#: tasks; ``family``: the failure family of a ``quick`` prompt, for the leaderboard heat map).
SAMPLE_META_FIELDS = (
    "rendering",
    "level",
    "base_task",
    "generator",
    "family",
    "placement",  # a hierarchy row's system | user | conflict (``ifharness.hierarchy``)
    "pair",  # the sample the three placements of a hierarchy row share
    "language",  # a Multi-IF conversation's language, for metrics per turn and language
    "source",  # a ReasonIF row's origin dataset (gsm8k, arc, aime, amc, gpqa): IFS per source
)


class HFSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    revision: str
    split: str = "train"
    name: str | None = None
    #: the file(s) of the repository to read (``datasets.load_dataset(data_files=...)``), for
    #: a dataset that is one plain JSON/CSV file and no builder config (ReasonIF)
    data_files: str | None = None


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
    #: ``turns: conversation``: the row field holding the user turns, a list of objects each
    #: with the ``prompt``, ``instruction_ids`` and ``kwargs`` fields named above
    turns: str = "turns"
    #: ``turns: conversation`` from flat columns instead (Multi-IF's CSV): a template with
    #: ``{n}`` (1, 2, …) prefixed to those three names, e.g. ``turn_{n}_`` reads
    #: ``turn_1_prompt``, ``turn_1_instruction_id_list``, ``turn_1_kwargs``, … A turn whose
    #: prompt is empty or ``None`` ends the conversation.
    turn_columns: str | None = None
    #: cells that hold JSON as text (a CSV's lists and objects; Multi-IF's kwargs list of
    #: JSON strings, encoded twice) are decoded before they are read
    decode_json: bool = False

    @field_validator("turn_columns")
    @classmethod
    def _numbered(cls, value: str | None) -> str | None:
        if value is not None and "{n}" not in value:
            raise ValueError(
                f"turn_columns {value!r} must hold {{n}}, the turn number (e.g. 'turn_{{n}}_')"
            )
        return value


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


#: The ``check:`` values that read the reasoning trace (``Completion.reasoning``).
TRACE_CHECKS = ("reasoning", "both")
#: What ``check:`` accepts: the answer, the trace, or both (see :class:`TaskSpec`).
Check = Literal["answer", "reasoning", "both"]


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
      the history's assistant turns are data, not the model's own earlier answers.
    * ``turns: conversation``: each row lists its user turns and the constraints of each
      (``fields.turns``, or flat columns with ``fields.turn_columns``); one sample per
      (row, turn). The model answers turn 1 of every conversation, its own answer is put
      in the history, then turn 2, and so on; each turn's answer is checked against the
      constraints ``accumulate`` says apply there.
    * ``check`` says which text the constraints are checked on: ``answer`` (the default:
      the text after any reasoning trace), ``reasoning`` (the trace the run split off,
      ``Completion.reasoning``: ReasonIF's instructions are about how the model reasons), or
      ``both`` (each constraint on each text, reported separately). A sample whose trace is
      missing or blank when the trace is checked fails every trace verdict and is counted
      (``metrics["missing_trace"]``); how verdict rows and metrics carry the two texts is
      written down in ``ifharness.scoring`` (answer-only rows and metrics are unchanged).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    suite: str
    profile: str = "reference"
    source: DataSource
    fields: FieldMap = Field(default_factory=FieldMap)
    generation: Generation = Field(default_factory=Generation)
    turns: Literal["single", "multi", "conversation"] = "single"
    #: ``turns: conversation`` only: which constraints the answer to turn k must follow.
    #: ``cumulative``: those of turns 1..k (an id listed again at a later turn takes that
    #: turn's kwargs; Multi-IF lists earlier ids again itself, so nothing is added there);
    #: ``per_turn``: only turn k's own.
    accumulate: Literal["cumulative", "per_turn"] = "cumulative"
    check: Check = "answer"
    metric: str = "prompt_level_strict_acc"
    generated: Generated | None = None  # set by ``ifharness generate``; None for authored tasks

    @field_validator("check", mode="before")
    @classmethod
    def _known_check(cls, value: Any) -> Any:
        if value not in ("answer", *TRACE_CHECKS):
            raise ValueError(
                f"check: {value!r} is not one of answer, reasoning, both (which text the "
                "constraints are checked on: the answer, the reasoning trace, or each of them)"
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
