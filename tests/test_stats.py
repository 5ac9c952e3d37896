"""stats.py against hand-computed values and SciPy, on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ifharness import stats
from ifharness.scoring import summarize
from tests.support.synthetic import clean, make_rows, noisy_copy, plant_drop

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is a dev dependency")


# ---------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    "b, c, expected",
    [
        (1, 5, 14 / 64),  # n=6: P(X<=1) = (1+6)/64, doubled
        (0, 10, 2 / 1024),  # only the all-one-way outcome and its mirror
        (2, 8, 2 * 56 / 1024),  # C(10,0)+C(10,1)+C(10,2) = 56
        (3, 3, 1.0),
        (0, 0, 1.0),
        (0, 1, 1.0),  # min(1, 2 * 1/2)
    ],
)
def test_mcnemar_hand_computed(b, c, expected):
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert stats.mcnemar_exact(c, b) == stats.mcnemar_exact(b, c)


def test_mcnemar_equals_scipy_binomial_test():
    for b in range(0, 41, 3):
        for c in range(0, 41, 4):
            if b + c == 0:
                continue
            ref = scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue
            assert stats.mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_mcnemar_large_counts_log_space_path():
    for b, c in [(2400, 2650), (3000, 3300), (5200, 5100)]:
        ref = scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert stats.mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-6)


def test_discordant_skips_unscorable():
    pairs = [
        (True, False),
        (True, False),
        (False, True),
        (True, True),
        (None, False),
        (False, None),
    ]
    assert stats.discordant(pairs) == (2, 1, 4)


# ---------------------------------------------------------------- Benjamini-Hochberg


def test_benjamini_hochberg_hand_and_scipy():
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.04*4/3 -> min(.., 0.0533)=0.0533, 0.0533, 0.20
    q = stats.benjamini_hochberg(p)
    assert q == pytest.approx([0.04, 0.04 * 4 / 3 * 1, 0.04 * 4 / 3, 0.20])
    rng = np.random.default_rng(3)
    for _ in range(20):
        ps = rng.uniform(0, 0.2, size=rng.integers(1, 30)).tolist()
        ref = scipy_stats.false_discovery_control(ps, method="bh")
        assert stats.benjamini_hochberg(ps) == pytest.approx(list(ref), rel=1e-12)


def test_benjamini_hochberg_keeps_none_in_place():
    q = stats.benjamini_hochberg([0.02, None, 0.01])
    assert q[1] is None
    assert q[0] == pytest.approx(0.02) and q[2] == pytest.approx(0.02)


# ---------------------------------------------------------------- closed-form SEs


def test_stderr_mean_and_clustered_hand_computed():
    assert stats.stderr_mean(3, 4) == pytest.approx(math.sqrt(0.75 * 0.25 / 3))
    assert stats.stderr_mean(1, 1) is None
    clusters = [(2, 2), (0, 1), (1, 3)]  # p = 3/6 = 0.5
    s = (2 - 1) ** 2 + (0 - 0.5) ** 2 + (1 - 1.5) ** 2  # 1.5
    assert stats.stderr_clustered(clusters) == pytest.approx(math.sqrt(3 / 2 * s) / 6)
    singles = [(1, 1)] * 7 + [(0, 1)] * 3
    assert stats.stderr_clustered(singles) == pytest.approx(stats.stderr_mean(7, 10))


# ---------------------------------------------------------------- bootstrap


def _table(n=541, seed=0, samples=1):
    return stats.build_table(make_rows(n, seed, samples))


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    t = _table()
    a = stats.bootstrap_intervals(t, 1000, seed=0)
    b = stats.bootstrap_intervals(t, 1000, seed=0)
    c = stats.bootstrap_intervals(t, 1000, seed=1)
    assert a == b and a != c
    point = stats.metric_values(t)
    for name in stats.METRICS:
        lo, hi = a["metrics"][name]
        assert lo < point[name] < hi


def test_bootstrap_prompt_level_matches_scipy_and_normal_theory():
    t = _table()
    x = t.num["prompt_level_strict_acc"] / t.den["prompt_level_strict_acc"]  # one row: 0/1
    ours = stats.bootstrap_intervals(t, 4000, seed=0)["metrics"]["prompt_level_strict_acc"]
    ref = scipy_stats.bootstrap(
        (x,), np.mean, n_resamples=4000, method="percentile", random_state=np.random.default_rng(0)
    ).confidence_interval
    assert ours == pytest.approx([ref.low, ref.high], abs=0.006)
    se = stats.stderr_mean(int(x.sum()), len(x))
    assert ours == pytest.approx([x.mean() - 1.96 * se, x.mean() + 1.96 * se], abs=0.006)


def test_bootstrap_instruction_level_resamples_prompts_like_scipy():
    t = _table()
    y, m = t.num["inst_level_strict_acc"], t.den["inst_level_strict_acc"]
    ours = stats.bootstrap_intervals(t, 4000, seed=0)["metrics"]["inst_level_strict_acc"]
    ref = scipy_stats.bootstrap(
        (y, m),
        lambda a, b: a.sum() / b.sum(),
        paired=True,
        n_resamples=4000,
        method="percentile",
        vectorized=False,
        random_state=np.random.default_rng(0),
    ).confidence_interval
    assert ours == pytest.approx([ref.low, ref.high], abs=0.006)
    se = stats.stderr_clustered(list(zip(y, m)))
    mid = y.sum() / m.sum()
    assert ours == pytest.approx([mid - 1.96 * se, mid + 1.96 * se], abs=0.006)


def test_per_constraint_intervals_cover_their_accuracy():
    t = _table()
    iv = stats.bootstrap_intervals(t, 500, seed=0)
    acc = stats.group_values(t, "constraint", "strict")
    for j, cid in enumerate(t.groups["constraint"][0]):
        lo, hi = iv["constraint"][cid]["strict"]
        assert lo <= acc[j] <= hi


def test_paired_bootstrap_identical_runs_and_scipy():
    base = make_rows(541, 0)
    t = stats.build_table(base)
    same = stats.paired_bootstrap(t, t, n_resamples=300)
    for row in same.values():
        assert row["delta"] == 0 and row["ci"] == [0.0, 0.0] and row["p"] == 1.0
    cand = stats.build_table(plant_drop(noisy_copy(base, 1), 5, seed=2))
    res = stats.paired_bootstrap(t, cand, n_resamples=4000, seed=0)["prompt_level_strict_acc"]
    d = cand.num["prompt_level_strict_acc"] - t.num["prompt_level_strict_acc"]
    assert res["delta"] == pytest.approx(d.mean())
    ref = scipy_stats.bootstrap(
        (d,), np.mean, n_resamples=4000, method="percentile", random_state=np.random.default_rng(0)
    ).confidence_interval
    assert res["ci"] == pytest.approx([ref.low, ref.high], abs=0.004)
    assert res["ci"][1] < 0 and res["p"] < 0.01


def test_paired_bootstrap_needs_aligned_tables():
    with pytest.raises(ValueError):
        stats.paired_bootstrap(_table(10, 0), _table(11, 0))


def test_unscorable_instructions_leave_denominators():
    rows = [
        {
            "key": 1,
            "instruction_id_list": ["a:x", "b:y"],
            "strict": [True, None],
            "loose": [True, True],
        },
        {"key": 2, "instruction_id_list": ["a:x"], "strict": [False], "loose": [True]},
    ]
    t = stats.build_table(rows)
    v = stats.metric_values(t)
    assert v["prompt_level_strict_acc"] == 0.0  # prompt 1 is not scored
    assert v["inst_level_strict_acc"] == 0.5
    assert v["prompt_level_loose_acc"] == 1.0
    assert v["ifeval_mean"] == 0.25 and v["mean4"] == pytest.approx((0 + 0.5 + 1 + 1) / 4)


# ---------------------------------------------------------------- summarize


def test_summarize_adds_intervals_and_composites():
    rows = clean(make_rows(200, 4))
    m = summarize(rows)
    assert m["ci"]["n_resamples"] == 1000 and m["ci"]["seed"] == 0
    assert m == summarize(rows)
    for name in stats.METRICS:
        lo, hi = m["ci"][name]
        assert lo <= m[name] <= hi
    assert m["ifeval_mean"] == pytest.approx(
        (m["prompt_level_strict_acc"] + m["inst_level_strict_acc"]) / 2
    )
    entry = m["per_constraint"]["punctuation:no_comma"]
    assert len(entry["strict_ci"]) == 2 and len(entry["loose_ci"]) == 2
    assert "strict_ci" in next(iter(m["per_family"].values()))
    small = summarize(rows, n_resamples=200, seed=5)
    assert small["ci"]["n_resamples"] == 200 and small["ci"] != m["ci"]
    assert "ci" not in summarize(rows, n_resamples=0)


def test_summarize_many_samples_per_prompt():
    k, n = 4, 150
    rows = clean(make_rows(n, 7, samples=k))
    m = summarize(rows, n_resamples=200)
    assert m["n_prompts"] == n and m["n_rows"] == n * k
    s = m["samples"]
    assert s["per_prompt"] == k and len(s["by_sample"]["prompt_level_strict_acc"]) == k
    # every row scored: the metric is the mean over samples of the per-sample metric
    assert m["prompt_level_strict_acc"] == pytest.approx(s["mean"]["prompt_level_strict_acc"])
    per_sample = s["by_sample"]["prompt_level_strict_acc"]
    assert s["variance"]["prompt_level_strict_acc"] == pytest.approx(np.var(per_sample, ddof=1))
    # SE clustered by prompt = SE of the mean of per-prompt means (equal sample counts)
    means = np.array(
        [
            np.mean([all(r["strict"]) for r in rows if r["key"] == key])
            for key in sorted({r["key"] for r in rows})
        ]
    )
    assert m["prompt_level_strict_acc_stderr"] == pytest.approx(
        np.std(means, ddof=1) / math.sqrt(n)
    )
    p_i = means
    within = np.mean(p_i * (1 - p_i) * k / (k - 1))
    assert s["within_prompt_variance"]["prompt_level_strict_acc"] == pytest.approx(within)


def test_identical_samples_have_no_between_sample_variance():
    one = clean(make_rows(80, 9))
    rows = [dict(r, sample=s) for r in one for s in range(3)]
    m = summarize(rows, n_resamples=100)
    assert m["samples"]["variance"]["prompt_level_strict_acc"] == 0
    assert m["samples"]["within_prompt_variance"]["prompt_level_strict_acc"] == 0
    assert m["prompt_level_strict_acc"] == summarize(one, n_resamples=0)["prompt_level_strict_acc"]


def test_real_gpt4_intervals(gpt4_result):
    m = gpt4_result.metrics
    for name in stats.BASE_METRICS:
        lo, hi = m["ci"][name]
        se = m[f"{name}_stderr"]
        assert lo < m[name] < hi
        assert (hi - lo) / (2 * 1.96 * se) == pytest.approx(1, abs=0.15)
