"""Verdicts and metrics: the scorer.

``judge`` decides every instruction of one answer, strict and loose, with the reference's
rules (shared/specs/ifeval.md §4–5): a blank answer follows nothing; loose tries the
reference's variants in order and stops at the first pass. Because verifiers are
deterministic, loose reuses the strict verdict for variant 1 (the answer itself) instead of
checking it twice. A checker that raises yields ``None`` (unscorable) with the exception text;
it never stops a run.

``summarize`` turns verdict rows into the numbers: every metric of the one table
(``ifharness.metrics``: lm-eval's four names and the compositions), standard errors
(instruction level clustered by prompt), per-constraint and per-family accuracy.
Unscorable instructions are left out of every denominator and counted; a prompt with any
unscorable instruction is left out of the prompt-level denominators.

Which text is checked (the task's ``check:``; issue 13) and how rows and metrics carry it:

* ``answer``: the answer only. Rows and metrics are exactly what they were before trace
  checks existed (no key is added), byte for byte.
* ``reasoning``: the trace (``Answer.reasoning``, what the run split off). The row's
  ``strict``/``loose`` are the trace's verdicts (the text the task checks), so every stage
  that reads them (leaderboard, compare, gate, report) works on what the task checks.
* ``both``: each constraint on the answer and on the trace. ``strict``/``loose`` stay the
  answer's; the trace's are beside them.

Two drivers share the judging and the summary. :func:`score` works in memory and returns
every row (the Python API; and the path of tasks whose metrics need all rows at once,
:func:`needs_rows`). :func:`score_to_folder` (what ``ifharness score`` and ``ifharness run``
use for every other task) streams: answers are read, judged, written and summarized a chunk
at a time, in one pool of worker processes for the whole scoring, and the metrics come from
a :class:`Summary`, the per-prompt counts the bootstrap resamples (``stats.TableBuilder``),
so memory does not grow with the answers. Both leave the same files, byte for byte. A task
given as one JSONL file goes one step further under ``ifharness score``
(``ifharness.stream``: the task itself is read a range at a time too, by the same workers,
through :func:`judge_chunk`).

Wherever the trace is checked (``reasoning`` and ``both``) a row also carries ``check``,
``reasoning_strict``/``reasoning_loose`` (the trace's verdicts, under the same names in both
modes, so trace-aware code reads one place), ``reasoning_unscorable`` when a checker raised on
the trace, ``trace_missing: true`` when there was no trace or a blank one (every trace verdict
is then False: a missing trace never passes), and ``trace_whole_text: true`` when the run
split off no trace and the profile takes it from the text by ReasonIF's rule (flag
:data:`TRACE_WHOLE_TEXT`, profile ``reasonif-2025``). ``summarize`` then adds ``check``,
``missing_trace`` and
``trace_whole_text`` (counts), a ``reasoning`` block (the full metrics of the trace verdicts,
same names as the top level), with ``both`` a ``both`` block (a constraint counts as followed
when it holds on the answer *and* on the trace), and the table's trace metrics
(``reasonif_ifs``) at the top level with their ``_stderr`` and ``ci`` entries.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from typing_extensions import NotRequired, TypedDict

from ifharness.verifiers import Profile, Text, get

from . import stats
from .files import dumps_line
from .loader import Task, TaskFile
from .metrics import Verdicts, base_metrics, composite_metrics, prompt_pass, trace_metrics
from .responses import Answer, Joined, coerce
from .rundir import RunFolder, VerdictRow
from .schema import Sample, work_id

Bound = list[tuple[str, dict[str, Any]]]  # (constraint id, bound kwargs) per instruction
MODES = stats.MODES
#: Profile flag: where the trace is checked and the run split none off (``reasoning`` is
#: None), take the trace from the text by ReasonIF's own rule instead of failing: the text
#: between the first ``<think>`` and the first ``</think>`` when both occur, else the whole
#: text. Without it a sample with no trace fails every trace verdict.
TRACE_WHOLE_TEXT = "trace-whole-text"


class Judgement(TypedDict):
    """What :func:`judge` decides for one answer: a :class:`~ifharness.rundir.VerdictRow`
    without the key and the instruction ids (the same keys, in the same order)."""

    strict: list[bool | None]
    loose: list[bool | None]
    missing: NotRequired[bool]
    unscorable: NotRequired[dict[str, str]]


def _run(
    func: Callable[..., object], t: Text, kwargs: dict[str, Any]
) -> tuple[bool | None, str | None]:
    try:
        return bool(func(t, **kwargs)), None
    except Exception as e:  # noqa: BLE001 - a verifier must never stop a run
        return None, f"{type(e).__name__}: {e}"


def judge(
    instructions: Bound, answer: str | None, profile: Profile, suite: str | None = None
) -> Judgement:
    """Strict and loose verdicts (lists in instruction order) for one answer.

    Ids are looked up in ``suite`` (the task's); without one, a bare id must belong to
    exactly one suite."""
    n = len(instructions)
    if answer is None:
        return {"strict": [False] * n, "loose": [False] * n, "missing": True}
    t = Text(answer, profile)
    strict: list[bool | None] = []
    loose: list[bool | None] = []
    errors: dict[str, str] = {}
    for index, (cid, kwargs) in enumerate(instructions):
        if t.is_blank:
            strict.append(False)
            loose.append(False)
            continue
        func = get(cid, suite).func
        verdict, error = _run(func, t, kwargs)
        strict.append(verdict)
        if verdict:
            loose.append(True)
            continue
        loose_verdict: bool | None = None if error else False
        for variant in t.loose_variants:
            v, e = _run(func, variant, kwargs)
            if v:
                loose_verdict = True
                break
            if e:
                error, loose_verdict = error or e, None
        loose.append(loose_verdict)
        if error and (verdict is None or loose_verdict is None):
            errors[str(index)] = error
    row: Judgement = {"strict": strict, "loose": loose}
    if errors:
        row["unscorable"] = errors
    return row


Chunk = tuple[list[tuple[Bound, str | None]], Profile, str | None]


def _judge_chunk(args: Chunk) -> list[Judgement]:
    items, profile, suite = args
    return [judge(b, a, profile, suite) for b, a in items]


class Judges:
    """Where answers are judged: here, or in one pool of ``processes`` worker processes that
    lives for the whole scoring (every chunk of a streamed scoring, both texts of a trace
    check), so the workers start and import the verifiers once, not once per call.

    :meth:`submit` hands the work over and returns a function that waits for the verdicts:
    the streaming scorer reads and writes one chunk while the pool judges the next."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def submit(
        self, items: list[tuple[Bound, str | None]], profile: Profile, suite: str | None
    ) -> Callable[[], list[Judgement]]:
        if self.processes <= 1 or len(items) < 2 * self.processes:
            done = _judge_chunk((items, profile, suite))
            return lambda: done
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes)
        size = math.ceil(len(items) / (self.processes * 4))
        pool = self._pool
        futures = [
            pool.submit(_judge_chunk, (items[i : i + size], profile, suite))
            for i in range(0, len(items), size)
        ]
        return lambda: [row for f in futures for row in f.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Judges:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def judge_all(
    bound: Sequence[Bound],
    answers: Sequence[str | None],
    profile: Profile,
    processes: int = 1,
    suite: str | None = None,
) -> list[Judgement]:
    with Judges(processes) as judges:
        return judges.submit(list(zip(bound, answers)), profile, suite)()


def verdict_rows(
    task: Task, joined: Joined, processes: int = 1, judges: Judges | None = None
) -> list[VerdictRow]:
    """One row per sample, checked on the text(s) the task's ``check:`` names (see the
    module docstring for the row's keys in each mode)."""
    got = [joined.answers.get(s.uid) for s in task.samples]  # uid: key, and turn if any
    if judges is not None:
        return submit_rows(task, task.samples, got, judges)()
    with Judges(processes) as own:
        return submit_rows(task, task.samples, got, own)()


def submit_rows(
    task: Task,
    samples: Sequence[Sample],
    got: Sequence[Answer | None],
    judges: Judges,
) -> Callable[[], list[VerdictRow]]:
    """:func:`verdict_rows` of ``samples`` and their answers ``got``, handed to ``judges``;
    call the result for the rows (one chunk of the streaming scorer, or the whole task)."""
    return _submit(task.spec.check, task.profile, task.spec.suite, samples, got, judges)


def _submit(
    check: str,
    profile: Profile,
    suite: str | None,
    samples: Sequence[Sample],
    got: Sequence[Answer | None],
    judges: Judges,
) -> Callable[[], list[VerdictRow]]:
    bound = [[(i.id, i.kwargs) for i in s.instructions] for s in samples]
    if check == "answer":
        answers = [a.text if a is not None else None for a in got]
        judged = judges.submit(list(zip(bound, answers)), profile, suite)

        def plain() -> list[VerdictRow]:
            return [
                {"key": s.key, "instruction_id_list": s.instruction_ids, **j}
                for s, j in zip(samples, judged())
            ]

        return plain
    traces = [trace_of(a, profile) for a in got]
    trace_wait = judges.submit(list(zip(bound, [t for t, _ in traces])), profile, suite)
    answer_wait = (
        judges.submit(list(zip(bound, [a.text if a else None for a in got])), profile, suite)
        if check == "both"
        else trace_wait
    )
    return lambda: _trace_rows(check, samples, got, traces, answer_wait(), trace_wait())


def _trace_rows(
    check: str,
    samples: Sequence[Sample],
    got: Sequence[Answer | None],
    traces: Sequence[tuple[str | None, bool]],
    on_answer: Sequence[Judgement],
    on_trace: Sequence[Judgement],
) -> list[VerdictRow]:
    rows: list[VerdictRow] = []
    for s, a, (trace, whole), j, t in zip(samples, got, traces, on_answer, on_trace):
        row: VerdictRow = {
            "key": s.key,
            "instruction_id_list": s.instruction_ids,
            "strict": j["strict"],
            "loose": j["loose"],
        }
        if a is None:
            row["missing"] = True
        if "unscorable" in j:
            row["unscorable"] = j["unscorable"]
        row["check"] = check
        row["reasoning_strict"] = t["strict"]
        row["reasoning_loose"] = t["loose"]
        if "unscorable" in t:
            row["reasoning_unscorable"] = t["unscorable"]
        if trace is None or not trace.strip():
            row["trace_missing"] = True
        if whole:
            row["trace_whole_text"] = True
        rows.append(row)
    return rows


def trace_of(answer: Answer | None, profile: Profile) -> tuple[str | None, bool]:
    """The trace to check and whether it was taken from the text (:data:`TRACE_WHOLE_TEXT`).

    ``None`` (no answer, or no trace split off) and a blank trace fail every instruction
    (``judge``'s blank rule). Only a trace that is absent is taken from the text: one that
    was split off and is empty (``<think></think>``) stays empty, as in ReasonIF."""
    if answer is None:
        return None, False
    if answer.reasoning is None and profile.has(TRACE_WHOLE_TEXT):
        text = answer.text
        start, end = text.find("<think>"), text.find("</think>")
        if start >= 0 and end >= 0:  # ReasonIF: between the first of each, stripped
            return text[start + len("<think>") : end].strip(), True
        return text, True
    return answer.reasoning, False


def summarize(
    rows: Sequence[VerdictRow],
    finish_reasons: Sequence[str | None] = (),
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Metrics of verdict rows (one per prompt, or one per (prompt, sample) with ``sample``).

    With several samples per prompt every count is over rows, each accuracy is the mean over
    samples, standard errors are clustered by prompt, ``n_prompts`` counts distinct prompts
    and ``samples`` holds per-sample-index metrics and their variance. The
    per-constraint/per-family ``*_ci`` are Wilson score intervals on the counts
    (``stats.group_intervals``; ``ci["per_constraint_method"]`` says so) and ``ci`` holds
    seeded percentile-bootstrap intervals resampling prompts (``n_resamples=0`` leaves
    both out).
    """
    summary = Summary()
    for row in rows:
        summary.add(row)
    summary.add_finish(finish_reasons)
    metrics = summary.metrics(n_resamples, seed, level)
    _add_trace_metrics(metrics, rows, n_resamples, seed, level)
    _add_per_turn(metrics, rows, finish_reasons, n_resamples, seed, level)
    return metrics


class Summary:
    """The metrics of plain verdict rows (no trace, no turns), fed one row at a time.

    It keeps counters, per-constraint counts and the per-prompt table (``stats``'s
    :class:`~ifharness.stats.TableBuilder`: small arrays, never the rows), which is all the
    standard errors and the bootstrap need: :func:`summarize` runs on it, and so does the
    streaming scorer, chunk by chunk, so both give the same numbers. With ``sample`` in the
    rows it keeps one table per sample index too (``metrics["samples"]``).
    """

    def __init__(self, keyed: bool = True) -> None:
        self.table = stats.TableBuilder(keyed)
        self.by_sample: dict[int, stats.TableBuilder] | None = None
        self.n_rows = 0
        self.n_instructions = 0
        self.missing = 0
        self.unscorable = 0
        self.reasons = 0
        self.truncated = 0
        self.per_constraint: dict[str, dict[str, int]] = defaultdict(_counts)

    def merge(self, other: Summary) -> None:
        """Add ``other``'s rows after this one's (a chunk summarized in a worker process):
        the same summary as adding them one by one."""
        if other.by_sample is not None or self.by_sample is not None:
            if self.by_sample is None:
                self.by_sample = {0: self.table.copy()} if self.n_rows else {}
            theirs = other.by_sample
            if theirs is None:  # rows without ``sample`` are sample 0
                theirs = {0: other.table} if other.n_rows else {}
            for index, builder in theirs.items():
                self.by_sample.setdefault(index, stats.TableBuilder()).merge(builder)
        self.table.merge(other.table)
        self.n_rows += other.n_rows
        self.n_instructions += other.n_instructions
        self.missing += other.missing
        self.unscorable += other.unscorable
        self.reasons += other.reasons
        self.truncated += other.truncated
        for cid, counts in other.per_constraint.items():
            mine = self.per_constraint[cid]
            for k, v in counts.items():
                mine[k] += v

    def add(self, row: VerdictRow) -> None:
        if self.by_sample is None and "sample" in row:
            # rows so far had no ``sample``: they are sample 0, as the whole table so far
            self.by_sample = {0: self.table.copy()} if self.n_rows else {}
        if self.by_sample is not None:
            index = int(row.get("sample", 0))
            self.by_sample.setdefault(index, stats.TableBuilder()).add(row)
        self.table.add(row)
        self.n_rows += 1
        ids = row["instruction_id_list"]
        self.n_instructions += len(ids)
        self.missing += bool(row.get("missing"))
        self.unscorable += sum(
            1 for s, lo in zip(row["strict"], row["loose"]) if s is None or lo is None
        )
        for mode in MODES:
            for cid, v in zip(ids, row[mode]):
                counts = self.per_constraint[cid]
                if v is None:
                    counts[f"{mode}_unscorable"] += 1
                else:
                    counts[f"{mode}_n"] += 1
                    counts[f"{mode}_followed"] += v

    def add_finish(self, finish_reasons: Iterable[str | None]) -> None:
        for f in finish_reasons:
            if f is not None:
                self.reasons += 1
                self.truncated += f == "length"

    def metrics(
        self,
        n_resamples: int = stats.DEFAULT_RESAMPLES,
        seed: int = stats.DEFAULT_SEED,
        level: float = 0.95,
        weights: Iterable[np.ndarray] | None = None,
    ) -> dict[str, Any]:
        """``weights``: the bootstrap's draws, drawn beforehand (``stats.draw_weights``)."""
        table = self.table.build(release=not self.table.keyed)  # keyless: built once
        metrics = _base_metrics(table, one_row_per_prompt=table.n_prompts == self.n_rows)
        metrics["n_prompts"] = self.n_rows
        metrics["n_instructions"] = self.n_instructions
        metrics["missing_responses"] = self.missing
        metrics["unscorable_instructions"] = self.unscorable
        metrics["truncation_rate"] = self.truncated / self.reasons if self.reasons else None
        per_constraint = self.per_constraint
        metrics["per_constraint"] = {cid: _rates(c) for cid, c in sorted(per_constraint.items())}
        families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for cid, c in per_constraint.items():
            for k, v in c.items():
                families[cid.split(":", 1)[0]][k] += v
        metrics["per_family"] = {f: _rates(c) for f, c in sorted(families.items())}
        if table.n_prompts < self.n_rows:  # n>1 samples per prompt: prompts are the clusters
            metrics["n_rows"] = self.n_rows
            metrics["n_prompts"] = table.n_prompts
            by_sample = {i: b.build() for i, b in (self.by_sample or {}).items()}
            metrics["samples"] = stats.sample_summary_of(by_sample, table, self.n_rows)
        _add_intervals(metrics, table, n_resamples, seed, level, weights)
        return metrics


def _counts() -> dict[str, int]:
    return defaultdict(int)  # a named factory: a Summary is pickled back from workers


def _add_per_turn(
    metrics: dict[str, Any],
    rows: Sequence[VerdictRow],
    finish_reasons: Sequence[str | None],
    n_resamples: int,
    seed: int,
    level: float,
) -> None:
    """A conversation task's rows carry ``turn``: ``metrics["per_turn"]["<k>"]`` holds the
    whole summary of the rows of turn k (prompt/inst x strict/loose, ``if_avg4``, counts,
    intervals), over the conversations that have that turn. The overall metrics are pooled
    over every (conversation, turn) row, with the conversation as the cluster (its turns are
    not independent): ``n_prompts`` then counts conversations and ``n_rows`` the rows."""
    turns = sorted({int(t) for r in rows if (t := r.get("turn")) is not None})
    if not turns:
        return
    reasons = list(finish_reasons) if len(finish_reasons) == len(rows) else []
    per_turn: dict[str, Any] = {}
    for turn in turns:
        picked = [i for i, r in enumerate(rows) if r.get("turn") == turn]
        sub = [_without_turn(rows[i]) for i in picked]
        per_turn[str(turn)] = summarize(
            sub, [reasons[i] for i in picked] if reasons else (), n_resamples, seed, level
        )
    _add_forgetting(per_turn, rows)
    metrics["per_turn"] = per_turn


def _add_forgetting(per_turn: dict[str, Any], rows: Sequence[VerdictRow]) -> None:
    """Multi-IF's instruction forgetting and error correction, per turn k > 1 and mode: of
    the instructions a conversation's turn k still lists from its previous turn (paired by
    id), the share followed there and not now (``forgetting``), and the share not followed
    there and followed now (``correction``). Unscorable verdicts are left out. The paper
    defines both ratios; its code computes neither, so this is our reading of them."""
    by_unit = {(str(r["key"]), int(r["turn"])): r for r in rows if r.get("turn") is not None}
    turns_of: dict[str, list[int]] = defaultdict(list)
    for key, turn in sorted(by_unit, key=lambda u: u[1]):
        turns_of[key].append(turn)
    for key, turns in turns_of.items():
        for before, now in zip(turns, turns[1:]):
            prev, cur = by_unit[(key, before)], by_unit[(key, now)]
            entry = per_turn[str(now)].setdefault(
                "forgetting",
                {
                    m: {"followed_before": 0, "forgotten": 0, "missed_before": 0, "corrected": 0}
                    for m in MODES
                },
            )
            for mode in MODES:
                was = dict(zip(prev["instruction_id_list"], prev[mode]))
                counts = entry[mode]
                for cid, v in zip(cur["instruction_id_list"], cur[mode]):
                    w = was.get(cid)
                    if cid not in was or w is None or v is None:
                        continue
                    if w:
                        counts["followed_before"] += 1
                        counts["forgotten"] += not v
                    else:
                        counts["missed_before"] += 1
                        counts["corrected"] += bool(v)
    for entry in per_turn.values():
        for counts in (entry.get("forgetting") or {}).values():
            fb, mb = counts["followed_before"], counts["missed_before"]
            counts["forgetting_ratio"] = counts["forgotten"] / fb if fb else None
            counts["correction_ratio"] = counts["corrected"] / mb if mb else None


_TRACE_KEYS = (
    "check",
    "reasoning_strict",
    "reasoning_loose",
    "reasoning_unscorable",
    "trace_missing",
    "trace_whole_text",
)


def _with_verdicts(
    row: VerdictRow,
    strict: list[bool | None],
    loose: list[bool | None],
    unscorable: dict[str, str] | None,
) -> VerdictRow:
    """``row`` as a plain row whose verdicts are ``strict``/``loose`` (its other keys kept:
    ``sample``, ``turn``, ``missing``), for summarizing one text's verdicts."""
    out: dict[str, Any] = {k: v for k, v in row.items() if k not in _TRACE_KEYS}
    out["strict"], out["loose"] = strict, loose
    out.pop("unscorable", None)
    if unscorable:
        out["unscorable"] = unscorable
    return out  # type: ignore[return-value]


def _both(a: bool | None, b: bool | None) -> bool | None:
    """Followed on the answer and on the trace: False if either fails, else None if either
    is unscorable."""
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _add_trace_metrics(
    metrics: dict[str, Any],
    rows: Sequence[VerdictRow],
    n_resamples: int,
    seed: int,
    level: float,
) -> None:
    """The trace's metrics (module docstring); nothing at all for answer-only rows."""
    traced = [r for r in rows if "reasoning_strict" in r]
    if not traced:
        return
    check = traced[0].get("check", "reasoning")
    metrics["check"] = check
    metrics["missing_trace"] = sum(1 for r in traced if r.get("trace_missing"))
    metrics["trace_whole_text"] = sum(1 for r in traced if r.get("trace_whole_text"))
    on_trace = [
        _with_verdicts(
            r, r["reasoning_strict"], r["reasoning_loose"], r.get("reasoning_unscorable")
        )
        for r in traced
    ]
    block = summarize(on_trace, (), n_resamples=n_resamples, seed=seed, level=level)
    metrics["reasoning"] = block
    if check == "both":
        on_both = [
            _with_verdicts(
                r,
                [_both(a, b) for a, b in zip(r["strict"], r["reasoning_strict"])],
                [_both(a, b) for a, b in zip(r["loose"], r["reasoning_loose"])],
                {**r.get("unscorable", {}), **r.get("reasoning_unscorable", {})},
            )
            for r in traced
        ]
        metrics["both"] = summarize(on_both, (), n_resamples=n_resamples, seed=seed, level=level)
    for t in trace_metrics():
        metrics[t.name] = block.get(t.of)
        if f"{t.of}_stderr" in block:
            metrics[f"{t.name}_stderr"] = block[f"{t.of}_stderr"]
        if "ci" in metrics and "ci" in block:
            metrics["ci"][t.name] = block["ci"].get(t.of)


def _base_metrics(table: stats.Table, one_row_per_prompt: bool) -> dict[str, Any]:
    """Every base metric of the table (``ifharness.metrics``), its standard error and its
    counts. Grouped by mode, each group as values, then standard errors, then counts: the key
    order metrics.json has always had."""
    out: dict[str, Any] = {}
    for mode in MODES:
        group = [b for b in base_metrics() if b.mode == mode]
        counts = {
            b.name: (int(table.num[b.name].sum()), int(table.den[b.name].sum())) for b in group
        }
        for b in group:
            successes, trials = counts[b.name]
            out[b.name] = successes / trials if trials else None
        for b in group:
            out[f"{b.name}_stderr"] = stats.table_stderr(
                b.stderr, table, b.name, one_row_per_prompt
            )
        for b in group:
            out[f"{b.counts_key}_followed"], out[f"{b.counts_key}_scored"] = counts[b.name]
    return out


def _add_intervals(
    metrics: dict[str, Any],
    table: stats.Table,
    n_resamples: int,
    seed: int,
    level: float,
    weights: Iterable[np.ndarray] | None = None,
) -> None:
    """Composite metrics and bootstrap intervals (stats.py)."""
    for c in composite_metrics():
        values = [metrics[p] for p in c.parts]
        metrics[c.name] = None if None in values else c.combine(values)
    if n_resamples < 1:
        return
    cis = stats.bootstrap_intervals(table, n_resamples, seed, level, weights)
    metrics["ci"] = {
        "method": "percentile bootstrap, resampling prompts",
        "level": level,
        "n_resamples": n_resamples,
        "seed": seed,
        **cis["metrics"],
        "per_constraint_method": stats.GROUP_INTERVAL_METHOD,
    }
    for kind, key in (("constraint", "per_constraint"), ("family", "per_family")):
        for gid, entry in metrics[key].items():
            for mode in MODES:
                entry[f"{mode}_ci"] = cis[kind].get(gid, {}).get(mode)


def _rates(c: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": c["strict_n"] + c["strict_unscorable"]}
    for mode in MODES:
        n = c[f"{mode}_n"]
        out[f"{mode}_acc"] = c[f"{mode}_followed"] / n if n else None
        out[f"{mode}_followed"] = c[f"{mode}_followed"]
    if c["strict_unscorable"] or c["loose_unscorable"]:
        out["unscorable"] = max(c["strict_unscorable"], c["loose_unscorable"])
    return out


@dataclass
class ScoreResult:
    task: Task
    verdicts: list[VerdictRow]
    metrics: dict[str, Any]
    joined: Joined

    def write(self, out: str | Path | RunFolder) -> None:
        """``verdicts.jsonl`` and ``metrics.json`` into a run folder (through its owner)."""
        folder = out if isinstance(out, RunFolder) else RunFolder(out)
        # The one place `score` and `run` write metrics: a generated density set (family
        # "density") adds its per-level accuracy, primacy curve and error taxonomy here.
        from . import density

        if density.is_density_task(self.task):
            self.metrics["density"] = density.for_result(self, folder)
        from . import hierarchy  # family "hierarchy": follows system / user / when they conflict

        if hierarchy.is_hierarchy_task(self.task):
            self.metrics["hierarchy"] = hierarchy.for_result(self)
        folder.write_scores(self.verdicts, self.metrics)


def _add_per_source(metrics: dict[str, Any], task: Task, rows: Sequence[VerdictRow]) -> None:
    """Prompt-level accuracy per ``source`` (a ReasonIF row's origin dataset, kept on
    ``Sample.meta``) for the checked text, and in the ``reasoning`` block for the trace
    (ReasonIF prints IFS per source). Only for tasks that check the trace, whose data says
    where each row comes from."""
    sources = [s.meta.get("source") for s in task.samples]
    if not any(isinstance(x, str) for x in sources):
        return

    def per_source(strict: str, loose: str) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[VerdictRow]] = defaultdict(list)
        for src, row in zip(sources, rows):
            groups[str(src)].append(row)
        out: dict[str, dict[str, Any]] = {}
        for src, group in sorted(groups.items()):
            entry: dict[str, Any] = {"n": len(group)}
            for mode, name in (("strict", strict), ("loose", loose)):
                passed = [prompt_pass(cast(Verdicts, r.get(name) or [])) for r in group]
                known = [p for p in passed if p is not None]
                entry[f"prompt_level_{mode}_acc"] = sum(known) / len(known) if known else None
            out[src] = entry
        return out

    metrics["per_source"] = per_source("strict", "loose")
    if isinstance(metrics.get("reasoning"), dict):
        metrics["reasoning"]["per_source"] = per_source("reasoning_strict", "reasoning_loose")


def score(
    task: Task,
    responses: Any,
    processes: int = 1,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> ScoreResult:
    """Score ``responses`` (a JSONL path, ``{key: text}``, or rows) against ``task``.

    A prompt with no answer is scored as not followed and listed in ``metrics["missing"]``.
    ``n_resamples=0`` skips the bootstrap intervals (the rest of the metrics are unchanged):
    what a reward loop that only needs verdicts and accuracies wants.
    """
    joined = (
        join_turns(task.samples, responses)
        if task.conversational
        else coerce(task.samples, responses)
    )
    rows = verdict_rows(task, joined, processes)
    for row, s in zip(rows, task.samples):
        if s.turn is not None:  # a conversation's verdicts are per (key, turn)
            row["turn"] = s.turn
    finish = [
        joined.answers[s.uid].finish_reason if s.uid in joined.answers else None
        for s in task.samples
    ]
    metrics = summarize(rows, finish, n_resamples=n_resamples, seed=seed)
    if task.conversational:
        _add_per_language(metrics, task, rows)
    if task.spec.check != "answer":
        _add_per_source(metrics, task, rows)
    metrics["missing"] = joined.missing
    return ScoreResult(task, rows, metrics, joined)


def _without_turn(row: VerdictRow) -> VerdictRow:
    """A verdict row as one of a single turn's rows (what ``summarize`` then sees)."""
    return cast(VerdictRow, {k: v for k, v in row.items() if k != "turn"})


def join_turns(samples: Sequence[Sample], responses: Any) -> Joined:
    """The answers of a conversation task, by (key, turn): each row needs ``key``, ``turn``
    and ``response`` (``completions.jsonl`` rows are such rows); a ``{work id: text}``
    mapping works too. ``missing`` lists the work ids (``"<key> turn <k>"``) with no answer;
    a later row for the same (key, turn) wins and is reported, as in ``responses.join``."""
    from .responses import read_responses

    if isinstance(responses, (str, Path)):
        rows: list[tuple[int | None, Any]] = list(read_responses(responses))
    elif isinstance(responses, Mapping):
        rows = [(None, {"uid": k, "response": v}) for k, v in responses.items()]
    else:
        rows = [(None, r) for r in responses]
    wanted = {s.uid for s in samples}
    out = Joined(answers={})
    where: dict[str, Any] = {}
    for line, row in rows:
        uid = row.get("uid")
        if uid is None and "key" in row and row.get("turn") is not None:
            uid = work_id(row["key"], int(row["turn"]))
        if uid not in wanted:
            out.unmatched += 1
            continue
        if uid in out.answers:
            out.duplicates.append(f"{uid}: lines {where[uid]} and {line} (the later one is used)")
        where[uid] = line
        out.answers[uid] = Answer(row["response"], row.get("reasoning"), row.get("finish_reason"))
    out.missing = [s.uid for s in samples if s.uid not in out.answers]
    return out


def _add_per_language(metrics: dict[str, Any], task: Task, rows: Sequence[VerdictRow]) -> None:
    """Multi-IF's table: per turn and per language (the conversation's ``language``), the four
    accuracies and ``if_avg4``, in ``metrics["per_turn"][k]["per_language"]``."""
    languages = [s.meta.get("language") for s in task.samples]
    if not any(languages) or "per_turn" not in metrics:
        return
    names = [b.name for b in base_metrics()] + [c.name for c in composite_metrics()]
    for turn, entry in metrics["per_turn"].items():
        by_lang: dict[str, list[VerdictRow]] = defaultdict(list)
        for row, lang in zip(rows, languages):
            if str(row.get("turn")) == turn and lang:
                by_lang[str(lang)].append(_without_turn(row))
        entry["per_language"] = {}
        for lang, sub in sorted(by_lang.items()):
            m = summarize(sub, n_resamples=0)
            entry["per_language"][lang] = {
                "n_prompts": m["n_prompts"],
                **{n: m.get(n) for n in names},
            }


#: answers judged and written at a time by :func:`score_to_folder`
STREAM_CHUNK = 10_000


def needs_rows(task: Task | TaskFile) -> bool:
    """Whether the task's metrics need every verdict row at once, so that
    :func:`score_to_folder` scores it in memory (:func:`score`, then ``ScoreResult.write``)
    instead of streaming: a conversation task (per-turn and per-language metrics,
    forgetting), a task that checks the trace (the ``reasoning``/``both`` blocks,
    per-source), and the generated density and hierarchy sets (their hooks read the rows and
    answers). Such tasks are small (generated sets, a few thousand conversations); the
    streamed path is for long answer files of plain tasks."""
    from . import density, hierarchy

    return (
        task.conversational
        or task.spec.check != "answer"
        or density.is_density_task(task)
        or hierarchy.is_hierarchy_task(task)
    )


class StreamedScore(ScoreResult):
    """What :func:`score_to_folder` returns: the metrics and the join's report (``joined``
    holds no answers); the verdicts are in the folder, read back only if asked for."""

    def __init__(self, task: Task, metrics: dict[str, Any], joined: Joined, folder: RunFolder):
        self.task, self.metrics, self.joined, self.folder = task, metrics, joined, folder
        self._verdicts: list[VerdictRow] | None = None

    @property
    def verdicts(self) -> list[VerdictRow]:
        if self._verdicts is None:
            self._verdicts = self.folder.read_verdicts()
        return self._verdicts

    @verdicts.setter
    def verdicts(self, rows: list[VerdictRow]) -> None:
        self._verdicts = rows

    def write(self, out: str | Path | RunFolder) -> None:
        """Already written to its folder; elsewhere, the verdicts read back and written."""
        folder = out if isinstance(out, RunFolder) else RunFolder(out)
        if folder.path.resolve() != self.folder.path.resolve():
            folder.write_scores(self.verdicts, self.metrics)


def score_to_folder(
    task: Task,
    responses: str | Path,
    folder: RunFolder,
    *,
    n: int = 1,
    processes: int = 1,
    chunk_size: int = STREAM_CHUNK,
    write_completions: bool = False,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> StreamedScore:
    """Score the answer file ``responses`` into ``folder`` in bounded memory.

    One pass indexes the file (byte offsets, no text: ``responses.index_answers``); then the
    task's prompts are taken ``chunk_size`` answers at a time: read, judged (in one pool of
    ``processes`` workers for the whole scoring, the next chunk judged while this one is
    written), appended to ``verdicts.jsonl`` (and, with ``write_completions``, to
    ``completions.jsonl``) through ``RunFolder.rows_writer``, which puts each file in place
    only when it is whole, and added to a :class:`Summary` (small per-prompt arrays, never
    the rows), from which ``metrics.json`` comes. What lands in the folder is byte for byte
    what :func:`score` and ``ScoreResult.write`` would write.

    ``n > 1`` samples per prompt (``ifharness run``'s completions): rows are
    joined per sample index, each verdict row carries ``sample`` and ``missing`` lists every
    prompt a sample is missing for (sorted), as ``run.score_completions`` always did.
    Tasks whose metrics need the rows (:func:`needs_rows`) must not come here.
    """
    from .responses import index_answers
    from .rundir import COMPLETIONS, VERDICTS

    if needs_rows(task):
        raise ValueError(f"task {task.name} needs its rows in memory; use score()")
    by_sample = n > 1
    path = Path(responses)
    index = index_answers(task.samples, path, n, by_sample)
    summary = Summary()
    step = max(1, chunk_size // max(n, 1))
    samples = task.samples
    spec = (task.spec.check, task.profile, task.spec.suite)
    completions = None
    pool = None
    try:
        if write_completions:
            completions = folder.rows_writer(COMPLETIONS)
        if processes > 1:
            # judge a few answers here first: the verifiers' lazily loaded resources (NLTK,
            # language profiles) are then inherited by forked workers, not loaded by each
            few = samples[:64]
            where = index.offsets[index.slot[: len(few)]]
            _score_chunk(ChunkJob(path, spec, few, where, False))
            pool = ProcessPoolExecutor(processes)
        with folder.rows_writer(VERDICTS) as verdicts:
            pending: deque[Callable[[], ChunkDone]] = deque()

            def collect() -> None:
                done = pending.popleft()()
                verdicts.append_lines(done.verdicts, done.summary.n_rows)
                if completions is not None:
                    completions.append_lines(done.completions, done.n_completions)
                summary.merge(done.summary)

            for start in range(0, len(samples), step):
                chunk = samples[start : start + step]
                where = index.offsets[index.slot[start : start + len(chunk)]]
                job = ChunkJob(path, spec, chunk, where, write_completions)
                if pool is None:
                    pending.append(functools.partial(_score_chunk, job))
                else:
                    pending.append(pool.submit(_score_chunk, job).result)
                # in flight: one chunk per worker and one more; none kept with one process
                while len(pending) > (processes if pool is not None else 0):
                    collect()
            while pending:
                collect()
            if completions is not None:  # answers in place first, then the verdicts
                completions.commit()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if completions is not None:
            completions.discard()
    metrics = summary.metrics(n_resamples, seed, level=0.95)
    if by_sample:
        gone = {
            s.key for s, at in zip(samples, index.slot.tolist()) if (index.offsets[at] < 0).any()
        }
        metrics["missing"] = sorted(gone, key=str)
    else:
        metrics["missing"] = index.joined.missing
    folder.write_metrics(metrics)
    return StreamedScore(task, metrics, index.joined, folder)


@dataclass
class ChunkJob:
    """One chunk of a streamed scoring, as sent to a worker: the answers' file and their
    offsets in it (the worker reads them itself: no answer text is pickled), the prompts."""

    path: Path
    spec: tuple[str, Profile, str | None]  # the task's check, profile and suite
    samples: Sequence[Sample]
    where: np.ndarray  # (prompts, n) byte offsets, -1 where there is no answer
    completions: bool


@dataclass
class ChunkDone:
    """A scored chunk: its verdict (and completion) lines, serialized and UTF-8 encoded,
    and its summary."""

    verdicts: bytes
    completions: bytes
    n_completions: int
    summary: Summary


def _score_chunk(job: ChunkJob) -> ChunkDone:
    """Read, judge, serialize and summarize one chunk (in a worker, or here with one
    process): all the per-answer work, so the scorer only writes text and adds summaries."""
    from .responses import read_at

    n = job.where.shape[1]
    got: list[Answer | None] = []
    for i in range(n):
        got.extend(read_at(job.path, job.where[:, i]))
    return judge_chunk(job.spec, job.samples, got, n, job.completions)


def judge_chunk(
    spec: tuple[str, Profile, str | None],
    samples: Sequence[Sample],
    got: list[Answer | None],
    n: int = 1,
    completions: bool = False,
) -> ChunkDone:
    """Judge, serialize and summarize the answers ``got`` (sample-major: every prompt's
    sample 0, then sample 1, …) of ``samples``: the per-answer work of a streamed chunk."""
    from .results import completion_row

    check, profile, suite = spec
    with Judges(1) as judges:
        rows = _submit(check, profile, suite, list(samples) * n, got, judges)()
    if n > 1:
        rows = _interleave(rows, n, len(samples))
    summary = Summary()
    summary.add_finish(a.finish_reason if a else None for a in _interleave(got, n))
    for row in rows:
        summary.add(row)
    lines = "".join(dumps_line(r) + "\n" for r in rows).encode("utf-8")
    answered = []
    if completions:
        answered = [dumps_line(completion_row(s, a)) + "\n" for s, a in zip(samples, got) if a]
    return ChunkDone(lines, "".join(answered).encode("utf-8"), len(answered), summary)


def _interleave(items: list[Any], n: int, per: int | None = None) -> list[Any]:
    """Items laid out sample-major (all prompts of sample 0, then of sample 1, …) as
    prompt-major (each prompt's samples together, in sample order), the order of verdict
    rows; verdict rows get their ``sample``."""
    per = len(items) // n if per is None else per
    out = []
    for j in range(per):
        for i in range(n):
            item = items[i * per + j]
            out.append({**item, "sample": i} if isinstance(item, dict) else item)
    return out
