"""Presets: "the score the paper reports" as named, versioned settings.

Users' most common complaint is a score far below the published one, nearly always because
of generation settings (token budget, stop strings, thinking, what happens when ``</think>``
never comes). A preset names the settings one published number was obtained with, per
benchmark and source: the task, scoring profile, token budget, temperature, top-p, stop
strings, chat template, thinking and reasoning-parser policy, and the headline metric.

* ``ifharness run --preset NAME`` applies one; ``ifharness score --preset NAME`` applies its
  scoring part (task, profile, headline metric). Any flag given explicitly wins over the
  preset, one by one (``--max-tokens 8192`` keeps the rest of the preset).
* ``run.json`` records the preset (``preset``: name, version, source, its settings, what was
  overridden, and the effective values), the report shows it in its provenance table and the
  leaderboard in its ``preset`` column.
* A setting left ``None`` is one the source does not state: the task's own applies, and the
  ``source`` text says so. Only settings a source states are encoded; each ``source`` says
  where every number comes from (the specs in ``shared/specs/``).
* Changing what a preset sets is a new ``version``; the old one's numbers stay explained by
  the version their run.json recorded.

Adding one is one ``register_preset(Preset(...))`` here (or in an outside package that
imports this module).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import IfharnessError

#: The settings that are also ``RunConfig`` fields (and ``run`` flags): a value given there
#: explicitly wins over the preset's.
FLAG_SETTINGS = (
    "task",
    "profile",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "reasoning_parser",
    "unterminated_reasoning",
)
#: Every setting a preset may set, in the order they are listed and recorded.
SETTINGS = (*FLAG_SETTINGS, "chat_template", "thinking", "metric", "backend_options")
#: The settings ``ifharness score`` applies (the rest describe generation).
SCORING_SETTINGS = ("task", "profile", "metric")


class Preset(BaseModel):
    """One published setting. ``None``: the source does not say; the task's value applies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int = Field(ge=1)
    benchmark: str
    summary: str = Field(description="one line, for `ifharness profiles`")
    source: str = Field(description="where each number comes from")
    task: str
    profile: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None  # [] = no stop strings
    # the model's chat template is applied (ifharness always applies it: LLM.chat, chat
    # completions); recorded so a reader sees the preset's source did the same
    chat_template: bool = True
    thinking: Literal["on", "off"] | None = None  # enable_thinking; None: the model's default
    reasoning_parser: str = "auto"
    unterminated_reasoning: str = "empty"  # reasoning.UNTERMINATED_POLICIES
    metric: str | None = None
    # per backend, options the source states (e.g. openai max_retries)
    backend_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """What the preset sets, as recorded in run.json (None: the task's value)."""
        return {k: getattr(self, k) for k in SETTINGS}

    def line(self) -> str:
        return f"{self.name} (v{self.version}, {self.benchmark}, task {self.task}): {self.summary}"

    def record(self, overridden: dict[str, Any], effective: dict[str, Any]) -> dict[str, Any]:
        """run.json ``preset``: the preset as defined, what flags overrode, what applied."""
        return {
            "name": self.name,
            "version": self.version,
            "benchmark": self.benchmark,
            "source": self.source,
            "settings": self.settings(),
            "overridden": overridden,
            "effective": effective,
        }


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered")
    PRESETS[preset.name] = preset
    return preset


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise IfharnessError(
            f"unknown preset {name!r}: choose one of {', '.join(preset_names())} "
            "(`ifharness profiles` describes them)"
        ) from None


register_preset(
    Preset(
        name="lm-eval-ifeval",
        version=1,
        benchmark="IFEval",
        summary="lm-eval's `ifeval` task: greedy, 1280 new tokens, no stop strings, chat "
        "template; headline prompt-level strict",
        source="lm-eval 0.4.13 lm_eval/tasks/ifeval/ifeval.yaml (shared/specs/ecosystem.md "
        "§1a (vii)): generation_kwargs {until: [], do_sample: false, temperature: 0.0, "
        "max_gen_toks: 1280} give max_tokens 1280, temperature 0, stop []; num_fewshot 0; "
        "the chat template as with --apply_chat_template; metric_list starts with "
        "prompt_level_strict_acc. top_p is not set there (greedy). lm-eval scores the whole "
        "text unless think_end_token is given (ecosystem.md §1b, lm-eval #3161); here the "
        "reasoning parser strips a trace by model family, as think_end_token=</think> would.",
        task="ifeval",
        profile="reference",
        max_tokens=1280,
        temperature=0.0,
        stop=[],
        metric="prompt_level_strict_acc",
    )
)

register_preset(
    Preset(
        name="open-llm-leaderboard-v2-ifeval",
        version=1,
        benchmark="IFEval",
        summary="Open LLM Leaderboard v2 (`leaderboard_ifeval`): 0-shot, chat template; "
        "headline = mean of prompt- and inst-level strict (ifeval_mean)",
        source="shared/specs/ecosystem.md §4 (leaderboard maintainer): the leaderboard ran "
        "lm-eval's leaderboard_ifeval, 0-shot, chat template (+ fewshot_as_multiturn) for "
        "chat models; its score is (prompt_level_strict + inst_level_strict) / 2 with no "
        "baseline normalisation, metric ifeval_mean. The specs do not state "
        "leaderboard_ifeval's generation kwargs: the task's (lm-eval ifeval's greedy, 1280 "
        "tokens) apply. Its dataset is wis-k/instruction-following-eval (ecosystem.md §1a "
        "(vii)); task ifeval reads google/IFEval: compare dataset hashes.",
        task="ifeval",
        profile="reference",
        metric="ifeval_mean",
    )
)

register_preset(
    Preset(
        name="ifbench-paper",
        version=1,
        benchmark="IFBench",
        summary="IFBench as its paper ran it: temperature 0, reasoning stripped, 2025 "
        "checkers; headline prompt-level loose",
        source="shared/specs/ifbench.md §3 (Headline metric): the README and paper report "
        "prompt-level loose accuracy; generation used temperature 0 and a larger token budget "
        "for thinking models, with reasoning stripped before scoring (reasoning parser by "
        "model family). The budget is not stated: the task's 4096 applies; pass a larger "
        "--max-tokens for a thinking model. Profile ifbench-2025 is the reference scorer "
        "version (c94da02, 2025) behind the published sample verdicts "
        "(verifiers/ifbench/__init__.py).",
        task="ifbench",
        profile="ifbench-2025",
        temperature=0.0,
        metric="prompt_level_loose_acc",
    )
)

register_preset(
    Preset(
        name="ifbench-aa-v2",
        version=1,
        benchmark="IFBench",
        summary="nvidia-ifbench's `ifbench_aa_v2` (Artificial Analysis Index v2): 16384 "
        "max tokens, temperature 0, 30 retries",
        source="shared/specs/ecosystem.md §3 (nvidia-ifbench 26.3): preset ifbench_aa_v2, "
        "aligned with the Artificial Analysis Index v2: 16384 max tokens, T=0, 30 retries "
        "(openai backend --max-retries 30). Its headline metric and scorer version are not "
        "stated: the task's (prompt-level loose, reference profile) apply. It bundles 294 "
        "of the 300 prompts: compare dataset hashes.",
        task="ifbench",
        max_tokens=16384,
        temperature=0.0,
        backend_options={"openai": {"max_retries": 30}},
    )
)

register_preset(
    Preset(
        name="olmo-eval-ifbench-multiturn",
        version=1,
        benchmark="IFBench multi-turn",
        summary="olmo-eval's ifeval_mt (OLMo/Tulu evaluation): greedy, 2048 max tokens; "
        "headline prompt-level loose",
        source="shared/specs/suites.md §3 (Scoring, read from olmo-eval): chat request with "
        "the stored messages, greedy, max_tokens 2048, primary metric prompt_level_loose_acc "
        "(suites.md §3, gap 3: the task's own budget is 4096). Reasoning handling is "
        "not stated there; the parser strips a trace by model family.",
        task="ifbench-multiturn",
        temperature=0.0,
        max_tokens=2048,
        metric="prompt_level_loose_acc",
    )
)


def listing() -> list[str]:
    """One line per preset, for ``ifharness profiles`` and help texts."""
    return [PRESETS[n].line() for n in preset_names()]
