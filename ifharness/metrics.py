"""The one table of metrics: every metric ifharness reports, declared once.

An entry says what a metric is (name, level, mode, how it aggregates, which way is better,
how its standard error is computed, a short description and a column label); everything
else iterates this table: the scorer (``scoring.summarize``), the statistics (``stats``), the
lm-eval hooks and their task YAMLs, leaderboard, report, compare, gate and the CLI help.
Adding a base metric is one :func:`register_metric` call with a :class:`BaseMetric`. The one
copy outside this file is lm-eval's: it reads ``metric_list`` from the static
``lmeval/_template_yaml``, so that list is generated from this table
(``lmeval.hooks.metric_list()``) and a test fails, naming the fix, when they differ.

Decision: the table lives here, not in ``stats.py``. It is declarations only (no numpy, no
I/O) and is imported by every stage, ``stats`` included; ``stats`` holds the computation
(ratios, standard errors, bootstrap) and re-exports the names older code reads
(``stats.METRICS``, ``stats.BASE_METRICS``, ``stats.COMPOSITE_METRICS``, ``stats.MODES``).

Two kinds of entry:

* :class:`BaseMetric` — a ratio of sums pooled over prompts (lm-eval's four metrics). Its
  ``count`` turns one verdict list (the row's ``strict`` or ``loose`` verdicts) into
  ``(successes, trials)``; the metric is ``sum(successes) / sum(trials)`` over rows.
  ``level="prompt"`` means a row is one trial (``trials`` is 0 or 1: the pass is a Bernoulli
  draw, so the paired test is an exact McNemar and lm-eval sees one 0/1 value per doc);
  ``level="inst"`` means every instruction is a trial.
* :class:`CompositeMetric` — the mean of other metrics (``ifeval_mean``, ``mean4``), so a
  leaderboard can say which composition it ranks by.
* :class:`TraceMetric` — a metric of the table computed on the *reasoning trace's* verdicts
  (``reasonif_ifs``: ReasonIF's IFS is ``prompt_level_strict_acc`` of the trace). It exists
  only for runs whose task checks the trace (``check: reasoning|both``): ``scoring.summarize``
  writes it at the top of metrics.json, with its ``_stderr`` and ``ci`` entry, from the
  ``reasoning`` block, and writes nothing for an answer-only run. So it is kept out of
  :func:`metrics` / :func:`metric_names`, which every stage iterates over any run (the
  bootstrap, compare, gate, lm-eval): :func:`headline_names` is those plus the trace metrics,
  the names a run may be ranked by.

Standard errors (``stderr``): ``binomial`` is lm-eval's standard error of a mean (sample SD,
ddof=1, over sqrt(n)) over the rows scored; with several samples per prompt it becomes the
prompt-clustered form, since a prompt's samples are not independent. ``clustered`` is always
clustered by prompt (a ratio of sums with prompts as clusters). Composites have none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeVar

Level = Literal["prompt", "inst"]
Mode = Literal["strict", "loose"]
StdErr = Literal["binomial", "clustered"]
Verdicts = Sequence[bool | None]
Count = Callable[[Verdicts], tuple[int, int]]

MODES: tuple[Mode, ...] = ("strict", "loose")
# lm-eval has no standard error for custom aggregations, so each one is a metric of its own,
# named after the metric with this suffix (the names the first plugin version published).
LMEVAL_STDERR_SUFFIX: dict[StdErr, str] = {"binomial": "_se", "clustered": "_clustered_se"}


def prompt_pass(verdicts: Verdicts) -> bool | None:
    """All instructions followed; ``None`` when any instruction is unscorable."""
    if any(v is None for v in verdicts):
        return None
    return all(verdicts)


def prompt_counts(verdicts: Verdicts) -> tuple[int, int]:
    """One trial per row: passed when every instruction is followed; none when unscorable."""
    passed = prompt_pass(verdicts)
    return (0, 0) if passed is None else (int(passed), 1)


def inst_counts(verdicts: Verdicts) -> tuple[int, int]:
    """One trial per scorable instruction: (followed, scored)."""
    known = [bool(v) for v in verdicts if v is not None]
    return sum(known), len(known)


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    description: str  # one line, for --help, leaderboard notes and report footers
    label: str = ""  # short column header; the name when empty
    higher_is_better: bool = True
    aggregation: ClassVar[str]

    @property
    def header(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, kw_only=True)
class BaseMetric(Metric):
    """``sum(successes) / sum(trials)`` of ``count`` over the rows' ``mode`` verdicts."""

    level: Level
    mode: Mode
    stderr: StdErr
    count: Count
    counted_as: str = ""  # stem of metrics.json's ``<stem>_followed`` / ``<stem>_scored``
    aggregation: ClassVar[str] = "ratio"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"metric {self.name}: mode {self.mode!r} is not one of {MODES}")
        if self.stderr == "binomial" and self.level != "prompt":
            raise ValueError(
                f"metric {self.name}: a binomial standard error needs one trial "
                "per row (level='prompt')"
            )

    @property
    def counts_key(self) -> str:
        return self.counted_as or self.name

    @property
    def bernoulli(self) -> bool:
        """A row is one pass/fail trial (what McNemar and lm-eval's 0/1 doc value need)."""
        return self.level == "prompt"

    @property
    def lmeval_stderr_name(self) -> str:
        return self.name + LMEVAL_STDERR_SUFFIX[self.stderr]

    def row_pass(self, verdicts: Verdicts) -> bool | None:
        """A Bernoulli metric's pass for one row; ``None`` when the row is not scored."""
        successes, trials = self.count(verdicts)
        return None if trials == 0 else bool(successes)


@dataclass(frozen=True, kw_only=True)
class CompositeMetric(Metric):
    """The unweighted mean of ``parts`` (names of other metrics in the table)."""

    parts: tuple[str, ...]
    aggregation: ClassVar[str] = "mean"

    def combine(self, values: Sequence[float]) -> float:
        """Mean of the parts' values, in ``parts`` order (numpy arrays of per-resample values
        work too: the bootstrap combines whole resample draws at once)."""
        return sum(values) / len(values)


@dataclass(frozen=True, kw_only=True)
class TraceMetric(Metric):
    """Metric ``of`` (a base or composite name) on the trace's verdicts (``reasoning_strict``
    / ``reasoning_loose`` of the verdict rows). ``None`` where a run checked no trace."""

    of: str
    aggregation: ClassVar[str] = "trace"


TABLE: dict[str, Metric] = {}

M = TypeVar("M", bound=Metric)


def register_metric(metric: M) -> M:
    """Add ``metric`` to the table; its name must be new, a composite's parts known."""
    if metric.name in TABLE:
        raise ValueError(f"metric {metric.name!r} is already in the table")
    if isinstance(metric, CompositeMetric):
        unknown = [p for p in metric.parts if p not in TABLE]
        if unknown or not metric.parts:
            raise ValueError(f"composite metric {metric.name}: unknown parts {unknown}")
    if isinstance(metric, TraceMetric) and not isinstance(
        TABLE.get(metric.of), (BaseMetric, CompositeMetric)
    ):
        raise ValueError(
            f"trace metric {metric.name}: {metric.of!r} is not a base or composite metric"
        )
    TABLE[metric.name] = metric
    return metric


def base_metrics() -> list[BaseMetric]:
    return [m for m in TABLE.values() if isinstance(m, BaseMetric)]


def composite_metrics() -> list[CompositeMetric]:
    return [m for m in TABLE.values() if isinstance(m, CompositeMetric)]


def trace_metrics() -> list[TraceMetric]:
    return [m for m in TABLE.values() if isinstance(m, TraceMetric)]


def metrics() -> list[Metric]:
    """Every metric of the checked verdicts, base metrics first (composites are computed from
    them). Trace metrics are not here (see the module docstring): :func:`trace_metrics`."""
    return [*base_metrics(), *composite_metrics()]


def metric_names() -> tuple[str, ...]:
    return tuple(m.name for m in metrics())


def headline_names() -> tuple[str, ...]:
    """Every name a run may be ranked or gated by: :func:`metric_names` and the trace
    metrics (present in a run's metrics only when its task checked the trace)."""
    return (*metric_names(), *(m.name for m in trace_metrics()))


def get_metric(name: str) -> Metric:
    try:
        return TABLE[name]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}: choose one of {', '.join(headline_names())}"
        ) from None


def check_metric(name: str) -> str:
    get_metric(name)
    return name


def is_loose(name: str) -> bool:
    """The metric reads loose verdicts only (which per-constraint view fits it)."""
    m = get_metric(name)
    if isinstance(m, TraceMetric):
        return is_loose(m.of)
    if isinstance(m, CompositeMetric):
        return all(is_loose(p) for p in m.parts)
    return isinstance(m, BaseMetric) and m.mode == "loose"


# ---------------------------------------------------------------- the table

for _mode in MODES:
    register_metric(
        BaseMetric(
            name=f"prompt_level_{_mode}_acc",
            level="prompt",
            mode=_mode,
            stderr="binomial",
            count=prompt_counts,
            counted_as=f"prompts_{_mode}",
            label=f"prompt {_mode}",
            description=f"share of prompts whose every instruction is followed ({_mode})",
        )
    )
    register_metric(
        BaseMetric(
            name=f"inst_level_{_mode}_acc",
            level="inst",
            mode=_mode,
            stderr="clustered",
            count=inst_counts,
            counted_as=f"instructions_{_mode}",
            label=f"inst {_mode}",
            description=f"share of instructions followed ({_mode}), pooled over prompts",
        )
    )
register_metric(
    CompositeMetric(
        name="ifeval_mean",
        parts=("prompt_level_strict_acc", "inst_level_strict_acc"),
        description="(prompt_level_strict_acc + inst_level_strict_acc) / 2: the Open LLM "
        "Leaderboard v2 IFEval score",
    )
)
register_metric(
    CompositeMetric(
        name="mean4",
        parts=(
            "prompt_level_strict_acc",
            "inst_level_strict_acc",
            "prompt_level_loose_acc",
            "inst_level_loose_acc",
        ),
        description="mean of the four prompt/instruction × strict/loose accuracies "
        "(as Llama 3 reports)",
    )
)
# Multi-IF's (and IHEval's) "average accuracy": the same four parts as mean4, under the name
# those papers' tables use, so a conversation task's headline (and each turn's entry in
# metrics["per_turn"]) reads as the paper does.
register_metric(
    CompositeMetric(
        name="if_avg4",
        parts=(
            "prompt_level_strict_acc",
            "inst_level_strict_acc",
            "prompt_level_loose_acc",
            "inst_level_loose_acc",
        ),
        label="avg4",
        description="Multi-IF's average accuracy: mean of prompt/instruction × strict/loose "
        "(= mean4), reported per turn in metrics['per_turn']",
    )
)
register_metric(
    TraceMetric(
        name="reasonif_ifs",
        of="prompt_level_strict_acc",
        label="IFS (trace)",
        description="ReasonIF's instruction-following score: share of samples whose every "
        "instruction is followed by the reasoning trace (strict); only for tasks that check "
        "the trace",
    )
)
