"""Statistics for verdicts: standard errors, bootstrap intervals, paired tests.

Pure functions of verdict rows (``verdicts.jsonl`` lines) and plain numbers; no I/O. Which
metrics exist, and how each one aggregates and gets its standard error, is declared once in
:mod:`ifharness.metrics`; the functions here iterate that table.

Why these choices (Miller 2024, "Adding Error Bars to Evals"):

* The unit that is sampled is the *prompt*. Instructions of one answer are not independent,
  so the instruction-level SE is clustered by prompt, and every bootstrap resamples prompts
  (with all their instructions and, with ``n>1`` samples per prompt, all their samples).
* Two runs on the same prompts are compared *paired*: an exact McNemar test on the
  discordant prompts and a paired bootstrap of the difference (the same resampled prompts
  for both runs), both much tighter than comparing two separate intervals.
* Per-constraint tests are many; their p-values are adjusted with Benjamini-Hochberg.

Bootstrap: percentile intervals from multinomial prompt weights drawn with
``numpy.random.default_rng(seed)``; the same seed gives the same interval, in any process.
A resample in which a ratio's denominator is zero is left out of that ratio's percentiles.
With ``B`` usable resamples a bootstrap p-value cannot resolve below ``2/(B+1)`` (two-sided)
or ``1/(B+1)`` (one-sided); results carry that resolution and whether ``p`` sits at it
(``p_is_bound``), and reports print such a p as ``<bound``.

Per-constraint and per-family accuracies get *Wilson score* intervals (:func:`wilson_interval`)
on their counts, not bootstrap percentiles: many constraints occur only a handful of times, and
a percentile bootstrap of one prompt is the degenerate ``[0, 0]`` or ``[1, 1]``. Where a prompt
holds several trials of one group (several samples per prompt, or two constraints of one family
in a prompt) the count is shrunk to its effective size by the Kish design effect
(:func:`design_effect`), so clustering widens the interval and never narrows it.

Equivalence and non-inferiority (:func:`one_sided_bootstrap`): two one-sided tests (TOST) of the
paired bootstrap distribution of ``delta = b - a`` against a margin ``m``.
"""

from __future__ import annotations

import copy
import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import MODES as MODES  # re-exported: older code reads them from stats
from .metrics import BaseMetric, Mode, StdErr, base_metrics, composite_metrics, metric_names
from .metrics import check_metric as check_metric
from .metrics import prompt_pass as prompt_pass

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CHUNK = 250  # resamples drawn at a time: bounds memory on large runs
#: at most this many prompt weights are drawn at once (8 MB of floats): with a million
#: prompts CHUNK resamples would be 2 GB. Drawing fewer rows at a time gives the same
#: weights (the generator draws row after row), so intervals do not depend on it.
WEIGHTS_AT_ONCE = 1_000_000

if TYPE_CHECKING:
    from .rundir import VerdictRow

    # provided by __getattr__ below
    METRICS: tuple[str, ...]
    BASE_METRICS: dict[str, tuple[str, str]]
    COMPOSITE_METRICS: dict[str, tuple[str, ...]]


def __getattr__(name: str) -> object:
    """``METRICS``, ``BASE_METRICS`` and ``COMPOSITE_METRICS``, read live from the table (so
    a metric registered after import is seen): names; ``{name: (level, mode)}``;
    ``{name: parts}``."""
    if name == "METRICS":
        return metric_names()
    if name == "BASE_METRICS":
        return {m.name: (m.level, m.mode) for m in base_metrics()}
    if name == "COMPOSITE_METRICS":
        return {m.name: m.parts for m in composite_metrics()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- closed-form standard errors


def stderr_mean(passed: int, n: int) -> float | None:
    """SE of a proportion, lm-eval's form: sample SD (ddof=1) over sqrt(n)."""
    if n < 2:
        return None
    p = passed / n
    return math.sqrt(p * (1 - p) / (n - 1))


def stderr_clustered(clusters: Sequence[tuple[float, float]]) -> float | None:
    """SE of a ratio of sums (followed / instructions) with prompts as clusters.

    ``clusters`` holds ``(successes, trials)`` per prompt. With one trial per cluster this is
    :func:`stderr_mean`.
    """
    g = len(clusters)
    total = sum(m for _, m in clusters)
    if g < 2 or total == 0:
        return None
    p = sum(y for y, _ in clusters) / total
    s = sum((y - p * m) ** 2 for y, m in clusters)
    return math.sqrt(g / (g - 1) * s) / total


def stderr_of(
    method: StdErr, clusters: Sequence[tuple[float, float]], one_row_per_prompt: bool = True
) -> float | None:
    """A metric's standard error from ``(successes, trials)`` per prompt, by its ``stderr``.

    ``binomial`` (one trial per row): lm-eval's :func:`stderr_mean` over the rows scored; with
    several rows (samples) per prompt, clustered by prompt instead. ``clustered``: always
    :func:`stderr_clustered`.
    """
    if method == "binomial" and one_row_per_prompt:
        return stderr_mean(int(sum(y for y, _ in clusters)), int(sum(m for _, m in clusters)))
    return stderr_clustered(clusters)


# ---------------------------------------------------------------- proportions of few trials

GROUP_INTERVAL_METHOD = (
    "wilson score interval on the counts; with several trials of one group in a prompt, "
    "n is divided by the Kish design effect"
)


def wilson_interval(successes: float, n: float, level: float = 0.95) -> list[float] | None:
    """Wilson score interval for a proportion ``successes / n``; ``None`` when ``n == 0``.

    With ``p = successes / n`` and ``z`` the ``(1 + level) / 2`` normal quantile::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))

    It stays inside [0, 1] and is not degenerate at p = 0 or 1: 1 of 1 passed gives
    [0.2065, 1] at 95%. ``n`` may be fractional (an effective sample size).
    """
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return [lo, hi]


def design_effect(successes: np.ndarray, trials: np.ndarray) -> float:
    """Kish design effect of a ratio of sums over prompt clusters, at least 1.

    ``deff = sum_i (y_i - p m_i)^2 / (n p (1 - p))`` with ``y_i``/``m_i`` successes/trials of
    prompt ``i``, ``n = sum m_i`` and ``p = sum y_i / n``: the clustered variance of ``p`` over
    the binomial one (without small-sample corrections, so it is exactly 1 when every prompt
    holds at most one trial). 1 when ``p`` is 0 or 1 (no variance to compare).
    """
    n = float(trials.sum())
    if n == 0 or float(trials.max()) <= 1:
        return 1.0
    p = float(successes.sum()) / n
    if p <= 0 or p >= 1:
        return 1.0
    deff = float(((successes - p * trials) ** 2).sum()) / (n * p * (1 - p))
    return max(1.0, deff)


def group_intervals(table: Table, level: float = 0.95) -> dict[str, dict[str, dict[str, Any]]]:
    """Wilson intervals (design-effect adjusted) per constraint and per family, per mode:
    ``{"constraint": {id: {mode: [lo, hi] | None}}, "family": {...}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {"constraint": {}, "family": {}}
    n_prompts = table.n_prompts
    for kind in ("constraint", "family"):
        sparse = table.sparse[kind]
        for m in MODES:
            for j, gid in enumerate(sparse.ids):
                y, t = sparse.column(n_prompts, m, j)
                n = float(t.sum())
                n_eff = n / design_effect(y, t) if n else 0.0
                p = float(y.sum()) / n if n else 0.0
                out[kind].setdefault(gid, {})[m] = wilson_interval(p * n_eff, n_eff, level)
    return out


# ---------------------------------------------------------------- per-prompt table


GroupArrays = tuple[list[str], dict[Mode, np.ndarray], dict[Mode, np.ndarray]]


@dataclass
class Sparse:
    """Per-prompt counts of one kind of group (constraint or family), kept sparse: one entry
    per (prompt, group) that occurs. Dense, they are ``prompts x ids`` per mode, which at a
    million prompts is most of a gigabyte for a couple of dozen ids; sparse they are about
    the size of the verdicts' instruction lists. Entries with the same (prompt, group) add up.
    """

    ids: list[str]
    rows: np.ndarray  # prompt index per entry
    cols: np.ndarray  # group index (into ids) per entry
    num: dict[Mode, np.ndarray]  # followed, per entry and mode
    den: dict[Mode, np.ndarray]  # scored, per entry and mode

    def column(self, n: int, mode: Mode, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(followed, scored) per prompt of group ``j``: dense arrays of ``n`` floats, equal
        to column ``j`` of the dense table."""
        if not hasattr(self, "_bounds"):
            order = np.argsort(self.cols, kind="stable")
            self._order = order
            self._bounds = np.searchsorted(self.cols[order], np.arange(len(self.ids) + 1))
        pick = self._order[self._bounds[j] : self._bounds[j + 1]]
        y, t = np.zeros(n), np.zeros(n)
        np.add.at(y, self.rows[pick], self.num[mode][pick])
        np.add.at(t, self.rows[pick], self.den[mode][pick])
        return y, t

    def dense(self, n: int) -> GroupArrays:
        shape = (n, len(self.ids))
        num = {m: np.zeros(shape) for m in MODES}
        den = {m: np.zeros(shape) for m in MODES}
        for m in MODES:
            np.add.at(num[m], (self.rows, self.cols), self.num[m])
            np.add.at(den[m], (self.rows, self.cols), self.den[m])
        return self.ids, num, den


@dataclass
class Table:
    """Verdicts summed per prompt (the bootstrap's resampling unit).

    ``num[name]`` / ``den[name]`` are arrays over prompts, one pair per base metric of the
    table: its ``count`` (successes, trials) summed over the prompt's rows (e.g. rows passed /
    rows scored at prompt level, instructions followed / scored at instruction level).
    ``sparse[kind]`` (kind ``constraint`` or ``family``) holds the per-prompt group counts;
    ``groups[kind]`` is them dense, ``(ids, num, den)`` with ``num``/``den`` shaped
    ``(mode) -> (prompts, ids)`` (built on first use: :meth:`Sparse.column` reads one
    column without it).
    """

    keys: list[str]  # empty when its builder kept none (``TableBuilder(keyed=False)``)
    num: dict[str, np.ndarray]
    den: dict[str, np.ndarray]
    sparse: dict[str, Sparse]
    samples_per_prompt: int

    @property
    def n_prompts(self) -> int:
        return len(next(iter(self.num.values()))) if self.num else len(self.keys)

    @property
    def groups(self) -> dict[str, GroupArrays]:
        if not hasattr(self, "_dense"):
            self._dense = {k: sp.dense(self.n_prompts) for k, sp in self.sparse.items()}
        return self._dense


def family(cid: str) -> str:
    return cid.split(":", 1)[0]


class TableBuilder:
    """A :class:`Table` fed one verdict row at a time (``ifharness score`` streams its rows).

    It keeps per prompt only small numbers (the base metrics' counts, and one sparse entry
    per constraint of a row), never the rows: a million answers make a table of tens of
    megabytes. Rows of one prompt (its samples) may come in any order. :func:`build_table`
    is this over a list, so both paths give the same table, float for float.

    ``keyed=False``: every row is a new prompt and no key is kept (the streaming scorer of a
    task file, whose keys are known to be distinct: a dict of a million keys would be most
    of the table); merged chunks are appended.
    """

    def __init__(self, keyed: bool = True) -> None:
        self.keyed = keyed
        self.order: dict[str, int] = {}
        self.n = 0  # prompts
        self.num = {b.name: array("d") for b in self.bases}
        self.den = {b.name: array("d") for b in self.bases}
        self.per_prompt = array("l")  # rows per prompt (keyed only: unkeyed, one each)
        self.cid_col: dict[str, int] = {}
        self.rows = array("i")  # prompt index per entry
        self.cols = array("i")  # 0/1 below: one byte per instruction and mode
        self.gnum: dict[Mode, array[int]] = {m: array("b") for m in MODES}
        self.gden: dict[Mode, array[int]] = {m: array("b") for m in MODES}

    def add(self, row: VerdictRow) -> None:
        i = self.order.get(str(row["key"])) if self.keyed else None
        if i is None:
            i = self.n
            self.n += 1
            for b in self.bases:
                self.num[b.name].append(0.0)
                self.den[b.name].append(0.0)
            if self.keyed:
                self.order[str(row["key"])] = i
                self.per_prompt.append(0)
        if self.keyed:
            self.per_prompt[i] += 1
        ids = row["instruction_id_list"]
        verdicts = {m: row[m] for m in MODES}
        for index, cid in enumerate(ids):
            col = self.cid_col.setdefault(cid, len(self.cid_col))
            self.rows.append(i)
            self.cols.append(col)
            for m in MODES:
                v = verdicts[m][index] if index < len(verdicts[m]) else None
                self.gden[m].append(0 if v is None else 1)
                self.gnum[m].append(1 if v else 0)
        for b in self.bases:
            successes, trials = b.count(row[b.mode])
            self.num[b.name][i] += successes
            self.den[b.name][i] += trials

    @property
    def bases(self) -> list[BaseMetric]:
        return base_metrics()

    def copy(self) -> TableBuilder:
        return copy.deepcopy(self)

    def merge(self, other: TableBuilder) -> None:
        """Add ``other``'s rows as if they had been added here after this one's (a chunk
        built in a worker process): the same table as adding them one by one."""
        if self.keyed and not other.keyed:
            raise ValueError("a keyed table cannot take rows without keys")
        bases = self.bases
        if not self.keyed:  # other's prompts are new ones, appended in its order
            if other.keyed and any(c > 1 for c in other.per_prompt):
                raise ValueError("a table without keys takes one row per prompt")
            remap = np.arange(self.n, self.n + other.n, dtype=np.intc)
            self.n += other.n
            for b in bases:
                self.num[b.name].extend(other.num[b.name])
                self.den[b.name].extend(other.den[b.name])
        else:
            remap = np.zeros(other.n, dtype=np.intc)
            for k, j in other.order.items():
                i = self.order.get(k)
                if i is None:
                    i = self.order[k] = self.n
                    self.n += 1
                    for b in bases:
                        self.num[b.name].append(0.0)
                        self.den[b.name].append(0.0)
                    self.per_prompt.append(0)
                remap[j] = i
                self.per_prompt[i] += other.per_prompt[j]
                for b in bases:
                    self.num[b.name][i] += other.num[b.name][j]
                    self.den[b.name][i] += other.den[b.name][j]
        cid_remap = np.zeros(len(other.cid_col), dtype=np.intc)
        for cid, c in other.cid_col.items():
            cid_remap[c] = self.cid_col.setdefault(cid, len(self.cid_col))
        if other.rows:
            self.rows.frombytes(remap[_np(other.rows, np.intc)].tobytes())
            self.cols.frombytes(cid_remap[_np(other.cols, np.intc)].tobytes())
        for m in MODES:
            self.gnum[m].extend(other.gnum[m])
            self.gden[m].extend(other.gden[m])

    def build(self, release: bool = False) -> Table:
        """The table. ``release``: the builder gives its arrays up as it goes (it is empty
        afterwards), so building a large table takes little more memory than it holds."""
        take = _take if release else _np
        cids = sorted(self.cid_col)
        rows = take(self.rows, np.intc)
        provisional = np.array([self.cid_col[c] for c in cids], dtype=np.intc)
        to_sorted = np.zeros(len(cids), dtype=np.intc)
        to_sorted[provisional] = np.arange(len(cids), dtype=np.intc)
        cols = to_sorted[take(self.cols, np.intc)] if self.cols else np.zeros(0, np.intc)
        # 0/1 per entry, kept as bytes: Sparse adds them into float columns
        gnum = {m: take(self.gnum[m], np.int8) for m in MODES}
        gden = {m: take(self.gden[m], np.int8) for m in MODES}
        fams = sorted({family(c) for c in cids})
        fam_of = np.array([fams.index(family(c)) for c in cids], dtype=np.intc)
        sparse = {
            "constraint": Sparse(cids, rows, cols, gnum, gden),
            "family": Sparse(fams, rows, fam_of[cols] if len(cols) else cols, gnum, gden),
        }
        num = {b.name: take(self.num[b.name], np.float64) for b in self.bases}
        den = {b.name: take(self.den[b.name], np.float64) for b in self.bases}
        if self.keyed:
            spp = max(self.per_prompt) if self.per_prompt else 1
        else:
            spp = 1
        return Table(list(self.order), num, den, sparse, spp)


def _take(values: array[Any], dtype: Any) -> np.ndarray:
    """:func:`_np`, emptying ``values`` (the copy is made before the array is let go)."""
    out = _np(values, dtype)
    del values[:]
    return out


def _np(values: array[Any], dtype: Any) -> np.ndarray:
    """A copy of an ``array.array`` as numpy (the copy lets the array grow again)."""
    if not values:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(values, dtype=dtype).copy()


def build_table(rows: Iterable[VerdictRow]) -> Table:
    """Group verdict rows by prompt key (all samples of a prompt form one cluster)."""
    builder = TableBuilder()
    for row in rows:
        builder.add(row)
    return builder.build()


def _ratio(num: np.ndarray, den: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """num/den summed over prompts; with weights ``w`` (resamples x prompts), one per row.
    Always an array: 0-d for a 1-d ``num`` without weights."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if w is None:
            d = den.sum(axis=0)
            return np.where(d > 0, num.sum(axis=0) / np.where(d > 0, d, 1), np.nan)
        return (w @ num) / (w @ den)


def table_stderr(
    method: StdErr, table: Table, name: str, one_row_per_prompt: bool = True
) -> float | None:
    """:func:`stderr_of` of base metric ``name`` straight from the table's arrays, without a
    list of per-prompt pairs (a million tuples at scale): the same sums in the same order
    (counts are whole numbers, exact in any order; the squared deviations are added one by
    one as :func:`stderr_clustered` adds them), so the same float."""
    y, m = table.num[name], table.den[name]
    if method == "binomial" and one_row_per_prompt:
        return stderr_mean(int(y.sum()), int(m.sum()))
    g = len(y)
    total = float(m.sum())
    if g < 2 or total == 0:
        return None
    p = float(y.sum()) / total
    s = 0.0
    step = 1 << 16
    for start in range(0, g, step):
        for yy, mm in zip(y[start : start + step].tolist(), m[start : start + step].tolist()):
            s += (yy - p * mm) ** 2
    return math.sqrt(g / (g - 1) * s) / total


def clusters(table: Table, name: str) -> list[tuple[float, float]]:
    """``(successes, trials)`` per prompt for base metric ``name``."""
    return list(zip(table.num[name].tolist(), table.den[name].tolist()))


def metric_values(table: Table, w: np.ndarray | None = None) -> dict[str, Any]:
    """Every metric of the table: floats (no weights) or one value per resample."""
    out: dict[str, Any] = {}
    for b in base_metrics():
        out[b.name] = _ratio(table.num[b.name], table.den[b.name], w)
    for c in composite_metrics():
        out[c.name] = c.combine([out[p] for p in c.parts])
    if w is None:
        out = {k: _nan_none(v) for k, v in out.items()}
    return out


def group_values(table: Table, kind: str, mode: Mode, w: np.ndarray | None = None) -> np.ndarray:
    """Accuracy per constraint (``kind='constraint'``) or family: shape (ids,) or (B, ids)."""
    _, num, den = table.groups[kind]
    return _ratio(num[mode], den[mode], w)


def _nan_none(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


# ---------------------------------------------------------------- bootstrap


def resample_weights(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield chunks of multinomial prompt weights (rows: resamples, columns: prompts)."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    done = 0
    rows = _block_rows(n)
    while done < n_resamples:
        size = min(rows, n_resamples - done)
        yield rng.multinomial(n, p, size=size).astype(float)
        done += size


def draw_weights(path: Path, n: int, n_resamples: int, seed: int) -> Path | None:
    """Draw :func:`resample_weights` ahead of the data (they depend only on ``n``,
    ``n_resamples`` and ``seed``) into ``path``, one byte per weight: the streaming scorer
    has a worker do this while the others judge. ``None`` (nothing kept) if a weight is
    above 255, which a multinomial of ``n`` uniform draws practically never gives for large
    ``n``; the caller then draws them again at the end."""
    with path.open("wb") as f:
        for w in resample_weights(n, n_resamples, seed):
            if float(w.max(initial=0)) > 255:
                return None
            f.write(w.astype(np.uint8).tobytes())
    return path


def _block_rows(n: int) -> int:
    return max(1, min(CHUNK, WEIGHTS_AT_ONCE // max(n, 1)))


def read_weights(path: Path, n: int, n_resamples: int) -> Iterator[np.ndarray]:
    """:func:`draw_weights`' file read back as the blocks :func:`resample_weights` yields
    (as floats: the same numbers)."""
    rows = _block_rows(n)
    done = 0
    with path.open("rb") as f:
        while done < n_resamples:
            size = min(rows, n_resamples - done)
            block = np.frombuffer(f.read(size * n), dtype=np.uint8)
            if block.size != size * n:
                raise RuntimeError(f"{path}: the bootstrap weights file is cut short")
            yield block.reshape(size, n).astype(float)
            done += size


def percentile_interval(values: np.ndarray, level: float) -> np.ndarray:
    """Percentile interval along axis 0, ignoring NaN resamples; NaN where none is finite."""
    a = (1 - level) / 2
    values = np.asarray(values, dtype=float)
    out = np.full((2,) + values.shape[1:], np.nan)
    flat = values.reshape(values.shape[0], -1)
    res = out.reshape(2, -1)
    for j in range(flat.shape[1]):
        col = flat[:, j]
        col = col[np.isfinite(col)]
        if col.size:
            res[:, j] = np.percentile(col, [100 * a, 100 * (1 - a)])
    return out


def _pair(x: np.ndarray) -> list[float] | None:
    if not np.all(np.isfinite(x)):
        return None
    return [float(x[0]), float(x[1])]


def bootstrap_intervals(
    table: Table,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
    weights: Iterable[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Percentile intervals (resampling prompts) for every metric of the table, and Wilson
    intervals (:func:`group_intervals`, no resampling) for every constraint and family.
    ``weights``: :func:`resample_weights`'s draws for this ``n``, ``n_resamples`` and
    ``seed``, drawn beforehand (:func:`draw_weights`, :func:`read_weights`)."""
    n = table.n_prompts
    if n_resamples < 1:
        return {"metrics": {m: None for m in metric_names()}, "constraint": {}, "family": {}}
    out: dict[str, Any] = {"metrics": {m: None for m in metric_names()}}
    out.update(group_intervals(table, level))
    if n < 2:
        return out
    drawn = weights if weights is not None else resample_weights(n, n_resamples, seed)
    values = resampled_values(table, drawn)
    for name in metric_names():
        out["metrics"][name] = _pair(percentile_interval(values[name], level))
    return out


def resampled_values(table: Table, weights: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
    """Every metric's value in each resample of ``weights`` (blocks of prompt weights)."""
    draws: dict[str, list[np.ndarray]] = defaultdict(list)
    for w in weights:
        for name, v in metric_values(table, w).items():
            draws[name].append(v)
    return {name: np.concatenate(v) for name, v in draws.items()}


def paired_bootstrap(
    a: Table,
    b: Table,
    metrics: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
    margin: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Interval and two-sided p-value for ``metric(b) - metric(a)`` on the same prompts
    (``metrics``: names from the table, default all).

    Both tables must hold the same prompts in the same order (``compare.pair_rows``).
    Each resample draws one set of prompt weights and applies it to both runs. The p-value is
    the bootstrap's: ``p = min(1, 2 (t + 1) / (B + 1))`` with ``t`` the smaller count of
    differences at or beyond zero among ``B`` usable resamples, so it is never 0 and never
    below ``p_resolution = 2 / (B + 1)``; ``p_is_bound`` is true when ``t == 0`` (the true p
    is below the printed bound). With ``margin``, ``tost`` holds :func:`one_sided_bootstrap`.
    """
    if a.keys != b.keys:
        raise ValueError("paired_bootstrap needs both tables on the same prompts, same order")
    metrics = metric_names() if metrics is None else metrics
    pa, pb = metric_values(a), metric_values(b)
    out: dict[str, dict[str, Any]] = {}
    diffs: dict[str, list[np.ndarray]] = defaultdict(list)
    if len(a.keys) >= 2 and n_resamples >= 1:
        for w in resample_weights(len(a.keys), n_resamples, seed):
            va, vb = metric_values(a, w), metric_values(b, w)
            for m in metrics:
                diffs[m].append(vb[m] - va[m])
    for m in metrics:
        point = None if pa[m] is None or pb[m] is None else pb[m] - pa[m]
        row: dict[str, Any] = {"a": pa[m], "b": pb[m], "delta": point, "ci": None, "p": None}
        if diffs[m]:
            d = np.concatenate(diffs[m])
            d = d[np.isfinite(d)]
            if d.size:
                row["ci"] = _pair(percentile_interval(d[:, None], level)[:, 0])
                tail = int(min(np.sum(d <= 0), np.sum(d >= 0)))
                row["p"] = min(1.0, 2 * (tail + 1) / (d.size + 1))
                row["p_resolution"] = 2 / (d.size + 1)
                row["p_is_bound"] = tail == 0
                row["se"] = float(np.std(d, ddof=1)) if d.size > 1 else None
                if margin is not None:
                    row["tost"] = one_sided_bootstrap(d, margin)
        out[m] = row
    return out


def one_sided_bootstrap(deltas: np.ndarray, margin: float) -> dict[str, Any]:
    """Two one-sided bootstrap tests of ``delta`` against the margin ``m >= 0`` (TOST).

    Over the ``B`` paired-bootstrap differences ``d_i``:

    * non-inferiority, H0 ``delta <= -m`` vs H1 ``delta > -m``:
      ``p_lower = (#{d_i <= -m} + 1) / (B + 1)``;
    * non-superiority, H0 ``delta >= +m`` vs H1 ``delta < +m``:
      ``p_upper = (#{d_i >= m} + 1) / (B + 1)``.

    Ties with the margin count against the claim. Equivalence (within ``±m``) is shown at
    ``alpha`` when both are below it (``p_tost = max(p_lower, p_upper)``), which is the
    ``1 - 2 alpha`` percentile interval lying inside ``(-m, m)``. A one-sided p is never below
    ``p_resolution = 1 / (B + 1)``; ``*_is_bound`` marks a p sitting at it.
    """
    if margin < 0:
        raise ValueError(f"equivalence margin {margin} must be >= 0")
    d = np.asarray(deltas, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"margin": margin, "p_lower": None, "p_upper": None, "p_tost": None}
    below, above = int(np.sum(d <= -margin)), int(np.sum(d >= margin))
    p_lower, p_upper = (below + 1) / (d.size + 1), (above + 1) / (d.size + 1)
    return {
        "margin": margin,
        "p_lower": p_lower,
        "p_upper": p_upper,
        "p_tost": max(p_lower, p_upper),
        "p_resolution": 1 / (d.size + 1),
        "p_lower_is_bound": below == 0,
        "p_upper_is_bound": above == 0,
        "n_resamples": int(d.size),
    }


# ---------------------------------------------------------------- paired tests

EXACT_LIMIT = 5000  # discordant pairs up to which the binomial tail is summed in integers


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``b`` vs ``c`` discordant pairs.

    ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``; 1 when there
    are no discordant pairs. Summed in exact integers up to :data:`EXACT_LIMIT` pairs, in
    log space beyond.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n, k = b + c, min(b, c)
    if n == 0 or 2 * k == n:
        return 1.0
    if n <= EXACT_LIMIT:
        term, tail = 1, 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            tail += term
        return min(1.0, 2 * tail / 2**n)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_tail = top + math.log(sum(math.exp(x - top) for x in logs)) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def discordant(pairs: Iterable[tuple[bool | None, bool | None]]) -> tuple[int, int, int]:
    """(pairs where only A passed, pairs where only B passed, pairs compared), skipping None."""
    b = c = total = 0
    for x, y in pairs:
        if x is None or y is None:
            continue
        total += 1
        b += bool(x) and not y
        c += bool(y) and not x
    return b, c, total


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """BH-adjusted p-values (q-values) in the input order; ``None`` entries stay ``None``."""
    known = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 1.0
    order = sorted(known, key=lambda ip: ip[1])
    for pos in range(m - 1, -1, -1):
        i, p = order[pos]
        running = min(running, p * m / (pos + 1))
        out[i] = min(1.0, running)
    return out


# ---------------------------------------------------------------- repeated samples


def sample_summary(rows: Sequence[VerdictRow]) -> dict[str, Any] | None:
    """With ``n>1`` samples per prompt: each headline metric per sample index, their mean and
    variance across sample indices, and the within-prompt variance of the prompt-level pass.

    The headline metric itself is the mean over samples (every row counted once); its SE,
    clustered by prompt, is in ``metrics[name + '_stderr']``. ``None`` with one sample.
    """
    by_sample: dict[int, list[VerdictRow]] = defaultdict(list)
    for r in rows:
        by_sample[int(r.get("sample", 0))].append(r)
    if len(by_sample) < 2:
        return None
    tables = {s: build_table(group) for s, group in by_sample.items()}
    return sample_summary_of(tables, build_table(rows), len(rows))


def sample_summary_of(
    by_sample: dict[int, Table], table: Table, n_rows: int
) -> dict[str, Any] | None:
    """:func:`sample_summary` from the tables: one per sample index, and the whole one (what
    the streaming scorer keeps instead of the rows)."""
    if len(by_sample) < 2:
        return None
    indices = sorted(by_sample)
    per = {s: metric_values(by_sample[s]) for s in indices}
    out: dict[str, Any] = {
        "per_prompt": len(indices),
        "rows": n_rows,
        "sample_indices": indices,
        "by_sample": {},
        "mean": {},
        "variance": {},
        "within_prompt_variance": {},
    }
    for name in (b.name for b in base_metrics()):
        vals = [per[s][name] for s in indices]
        known = [v for v in vals if v is not None]
        out["by_sample"][name] = vals
        out["mean"][name] = float(np.mean(known)) if known else None
        out["variance"][name] = float(np.var(known, ddof=1)) if len(known) > 1 else None
    for b in base_metrics():
        if not b.bernoulli:
            continue
        # per prompt: unbiased variance of a Bernoulli pass over that prompt's samples
        num, den = table.num[b.name], table.den[b.name]
        ok = den > 1
        p = num[ok] / den[ok]
        v = p * (1 - p) * den[ok] / (den[ok] - 1)
        out["within_prompt_variance"][b.name] = float(v.mean()) if v.size else None
    return out
