"""Issue 14, item 6: Wilson intervals, TOST, flips, p-value resolution, lm-eval logs as runs.

Every number is checked against a hand computation or SciPy.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from ifharness import stats
from ifharness.cli import main
from ifharness.compare import compare_runs, load_input, pvalue, to_markdown, to_text
from ifharness.gate import run_gate
from ifharness.rundir import load_run
from ifharness.scoring import summarize
from tests.support.synthetic import clean, make_rows, noisy_copy, plant_drop, write_run

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is a dev dependency")

Z95 = NormalDist().inv_cdf(0.975)


# ---------------------------------------------------------------- Wilson


def test_wilson_hand_computed():
    z2 = Z95**2
    # 1 of 1: centre (1 + z2/2)/(1 + z2), half (z2/2)/(1 + z2) -> [1/(1 + z2), 1]
    assert stats.wilson_interval(1, 1) == pytest.approx([1 / (1 + z2), 1.0], rel=1e-12)
    assert stats.wilson_interval(1, 1)[0] == pytest.approx(0.2065, abs=1e-4)
    assert stats.wilson_interval(0, 1) == pytest.approx([0.0, z2 / (1 + z2)], rel=1e-12)
    # 17 of 25, written out
    p, n = 17 / 25, 25
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    assert stats.wilson_interval(17, 25) == pytest.approx([centre - half, centre + half])
    assert stats.wilson_interval(17, 25) == pytest.approx([0.4841, 0.8279], abs=1e-4)
    assert stats.wilson_interval(0, 0) is None


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_equals_scipy(level):
    for n in (1, 2, 3, 5, 8, 13, 40, 541):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            ref = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            ours = stats.wilson_interval(k, n, level)
            assert ours == pytest.approx([ref.low, ref.high], rel=1e-9, abs=1e-12), (k, n)


def test_design_effect_hand_computed():
    one_each = np.array([1.0, 0, 1, 1, 0]), np.array([1.0, 1, 1, 1, 1])
    assert stats.design_effect(*one_each) == 1.0
    y, m = np.array([2.0, 0, 1]), np.array([2.0, 2, 1])  # p = 3/5
    # sum (y - p m)^2 = 0.8^2 + 1.2^2 + 0.4^2 = 2.24; n p (1 - p) = 1.2
    assert stats.design_effect(y, m) == pytest.approx(2.24 / 1.2)
    assert stats.design_effect(np.array([2.0, 2]), np.array([2.0, 2])) == 1.0  # p = 1
    # spread evenly over clusters: less variance than binomial, floored at 1
    assert stats.design_effect(np.array([1.0, 1, 1]), np.array([2.0, 2, 2])) == 1.0


def _rows(spec):
    """spec: [(constraint ids, strict verdicts)] -> verdict rows (loose = strict)."""
    return [
        {"key": i, "instruction_id_list": ids, "strict": list(v), "loose": list(v)}
        for i, (ids, v) in enumerate(spec)
    ]


def test_per_constraint_intervals_are_wilson_not_degenerate():
    rows = _rows(
        [
            (["a:rare"], [True]),
            (["a:never"], [False]),
            (["b:x", "b:y"], [True, True]),
            (["b:x", "b:y"], [False, False]),
            (["b:x"], [True]),
        ]
    )
    m = summarize(rows, n_resamples=200)
    assert "wilson" in m["ci"]["per_constraint_method"]
    pc = m["per_constraint"]
    assert pc["a:rare"]["strict_ci"] == pytest.approx([1 / (1 + Z95**2), 1.0])  # not [1, 1]
    assert pc["a:never"]["loose_ci"] == pytest.approx([0.0, Z95**2 / (1 + Z95**2)])
    ref = scipy_stats.binomtest(2, 3).proportion_ci(method="wilson")
    assert pc["b:x"]["strict_ci"] == pytest.approx([ref.low, ref.high])
    # family b: 5 trials over 3 prompts, clustered (y, m) = (2,2), (0,2), (1,1)
    fam = m["per_family"]["b"]
    n_eff = 5 / (2.24 / 1.2)
    assert fam["strict_ci"] == pytest.approx(stats.wilson_interval(0.6 * n_eff, n_eff))
    plain = stats.wilson_interval(3, 5)
    assert fam["strict_ci"][0] < plain[0] and fam["strict_ci"][1] > plain[1]


def test_group_intervals_do_not_touch_the_headline_bootstrap():
    """The headline intervals are drawn from the same seeded weights as before: recompute
    them here from stats' own pieces and compare exactly."""
    rows = clean(make_rows(120, 11))
    t = stats.build_table(rows)
    ours = stats.bootstrap_intervals(t, 300, seed=3)["metrics"]
    w = np.concatenate(list(stats.resample_weights(len(t.keys), 300, 3)))
    for name in stats.METRICS:
        values = stats.metric_values(t, w)[name]
        ref = stats.percentile_interval(values, 0.95)
        assert ours[name] == [float(ref[0]), float(ref[1])]


# ---------------------------------------------------------------- TOST


def test_one_sided_bootstrap_hand_computed():
    d = np.array([-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.05, np.nan])
    t = stats.one_sided_bootstrap(d, 0.02)
    # 7 finite draws; at or below -0.02: 2 (ties count against the claim); at or above: 2
    assert t["p_lower"] == pytest.approx(3 / 8) and t["p_upper"] == pytest.approx(3 / 8)
    assert t["p_tost"] == pytest.approx(3 / 8) and t["p_resolution"] == pytest.approx(1 / 8)
    t = stats.one_sided_bootstrap(d, 0.04)
    assert t["p_lower"] == pytest.approx(1 / 8) and t["p_lower_is_bound"]
    assert t["p_upper"] == pytest.approx(2 / 8) and not t["p_upper_is_bound"]
    with pytest.raises(ValueError):
        stats.one_sided_bootstrap(d, -0.01)


@pytest.mark.parametrize("margin", [0.06, 0.07, 0.08])
def test_tost_p_matches_scipy_one_sided_t_test(margin):
    """Non-inferiority p of a prompt-level delta ~ the one-sided t-test of the per-prompt
    differences shifted by the margin (normal theory; the bootstrap converges to it)."""
    base = make_rows(541, 0)
    ta, tb = stats.build_table(base), stats.build_table(plant_drop(noisy_copy(base, 1), 5, 2))
    name = "prompt_level_strict_acc"
    t = stats.paired_bootstrap(ta, tb, [name], 4000, 0, 0.95, margin)[name]["tost"]
    d = tb.num[name] - ta.num[name]
    ref = scipy_stats.ttest_1samp(d + margin, 0, alternative="greater").pvalue
    assert t["p_lower"] == pytest.approx(ref, abs=0.015)
    assert t["p_upper"] == pytest.approx(1 / 4001) and t["p_upper_is_bound"]


def test_tost_verdict_agrees_with_the_one_minus_two_alpha_interval():
    base = make_rows(541, 0)
    ta, tb = stats.build_table(base), stats.build_table(noisy_copy(base, 1))
    name = "inst_level_strict_acc"
    for margin in (0.005, 0.01, 0.02, 0.04):
        row = stats.paired_bootstrap(ta, tb, [name], 2000, 0, 0.90, margin)[name]
        lo, hi = row["ci"]  # 90% interval: TOST at alpha 0.05
        shown = row["tost"]["p_tost"] < 0.05
        if lo > -margin + 1e-3 and hi < margin - 1e-3:
            assert shown
        if lo < -margin - 1e-3 or hi > margin + 1e-3:
            assert not shown


# ---------------------------------------------------------------- flips and p bounds


@pytest.fixture
def runs(tmp_path):
    base = make_rows(541, seed=0)
    return {
        "base": write_run(tmp_path / "base", base, model="base-model"),
        "drop": write_run(
            tmp_path / "drop", plant_drop(noisy_copy(base, seed=1), 5, seed=2), model="worse"
        ),
    }


def test_flips_on_a_constructed_pair(tmp_path):
    a_spec = [(["x:a"], [True])] * 6 + [(["x:a"], [False])] * 4
    b_spec = (
        [(["x:a"], [False])] * 3  # passed only by A: 3
        + [(["x:a"], [True])] * 3
        + [(["x:a"], [True])] * 2  # passed only by B: 2
        + [(["x:a"], [False])] * 2
    )
    a = write_run(tmp_path / "a", _rows(a_spec))
    b = write_run(tmp_path / "b", _rows(b_spec))
    res = compare_runs(load_run(a), load_run(b), n_resamples=100)
    assert res["flips"]["prompt_level_strict_acc"] == {"a_only": 3, "b_only": 2, "pairs": 10}
    mc = res["metrics"]["prompt_level_strict_acc"]
    assert mc["test"] == "mcnemar_exact" and mc["p"] == pytest.approx(1.0)  # 2*P(X<=2|5)=1
    assert not mc["p_is_bound"]
    line = "3 prompts passed only by A, 2 only by B (of 10 paired)"
    assert line in to_text(res) and line in to_markdown(res)
    verdict = run_gate(load_run(a), load_run(b), n_resamples=100)
    assert verdict["flips"]["prompt_level_strict_acc"] == {
        "baseline_only": 3,
        "candidate_only": 2,
        "pairs": 10,
    }
    out = tmp_path / "g.md"
    main(["gate", "--baseline", str(a), "--candidate", str(b), "--markdown", str(out)])
    assert "3 prompts passed only by the baseline, 2 only by the candidate" in out.read_text()


def test_bootstrap_p_printed_as_a_bound(runs, tmp_path, capsys):
    out = tmp_path / "c.json"
    args = ["compare", str(runs["base"]), str(runs["drop"]), "--n-resamples", "300"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    row = json.loads(out.read_text())["metrics"]["inst_level_strict_acc"]
    assert row["test"] == "paired_bootstrap" and row["p_is_bound"] is True
    assert row["p"] == pytest.approx(2 / 301) and row["p_resolution"] == pytest.approx(2 / 301)
    inst_line = next(x for x in printed.splitlines() if x.startswith("inst_level_strict_acc"))
    assert "<0.0067" in inst_line and "0.0066" not in inst_line  # rounded up, never below
    assert "flips, prompt_level_strict_acc:" in printed
    assert pvalue(2 / 1001, bound=True) == "<0.002" and pvalue(1 / 1001, bound=True) == "<0.001"
    assert pvalue(0.0312) == "0.0312"


# ---------------------------------------------------------------- the gate with a margin


def test_gate_margin_passes_the_baseline_against_itself(runs, tmp_path, capsys):
    out = tmp_path / "v.json"
    b = str(runs["base"])
    code = main(["gate", "--baseline", b, "--candidate", b, "--equivalence-margin", "0.02"])
    assert code == 0
    assert "non-inferior" in capsys.readouterr().out
    code = main(
        ["gate", "--baseline", b, "--candidate", b, "--equivalence-margin", "2pt"]
        + ["--json", str(out), "--markdown", str(tmp_path / "v.md")]
    )
    assert code == 0
    v = json.loads(out.read_text())
    assert v["rule"] == "noninferiority" and v["equivalence_margin"] == 0.02
    t = v["checks"][0]["tost"]
    assert t["p_lower"] == pytest.approx(1 / 1001) and t["p_lower_is_bound"] and t["noninferior"]
    assert (tmp_path / "v.md").read_text().startswith("## ifharness gate: ✅ non-inferior")


def test_gate_margin_fails_a_planted_five_point_drop(runs, tmp_path, capsys):
    out = tmp_path / "v.json"
    code = main(
        ["gate", "--baseline", str(runs["base"]), "--candidate", str(runs["drop"])]
        + ["--equivalence-margin", "0.02", "--json", str(out)]
    )
    assert code == 1
    assert "not shown" in capsys.readouterr().out
    check = json.loads(out.read_text())["checks"][0]
    assert check["delta"] < -0.02 and check["status"] == "non-inferiority not shown"
    assert check["tost"]["p_lower"] > 0.5
    # the drop rule would say the same; a generous margin shows non-inferiority
    wide = run_gate(load_run(runs["base"]), load_run(runs["drop"]), margin=0.12)
    assert wide["passed"] and wide["checks"][0]["status"] == "non-inferior"


def test_gate_margin_needs_enough_prompts_and_one_rule(runs, tmp_path, capsys):
    few = write_run(tmp_path / "few", make_rows(1, seed=0))
    assert (
        main(
            [
                "gate",
                "--baseline",
                str(few),
                "--candidate",
                str(few),
                "--equivalence-margin",
                "0.02",
            ]
        )
        == 1
    )
    b = str(runs["base"])
    args = ["gate", "--baseline", b, "--candidate", b, "--equivalence-margin"]
    assert main([*args, "0.02", "--rule", "ci"]) == 2
    assert "two different rules" in capsys.readouterr().err
    assert main([*args, "150"]) == 2


def test_compare_reports_both_one_sided_p_values(runs, tmp_path, capsys):
    out = tmp_path / "c.json"
    args = ["compare", str(runs["base"]), str(runs["base"]), "--equivalence-margin", "0.02"]
    assert main([*args, "--json", str(out), "--n-resamples", "200"]) == 0
    printed = capsys.readouterr().out
    assert "TOST" in printed and "equivalent" in printed
    res = json.loads(out.read_text())
    assert res["equivalence"]["margin"] == 0.02
    for row in res["metrics"].values():
        t = row["tost"]
        assert t["p_lower"] == t["p_upper"] == pytest.approx(1 / 201) and t["equivalent"]


# ---------------------------------------------------------------- lm-eval logs as runs


def _samples_file(path, answer):
    from ifharness.lmeval.hooks import task_docs

    docs = task_docs("default")
    path.write_text(
        "".join(
            json.dumps(
                {
                    "doc_id": i,
                    "doc": d,
                    "resps": [[answer(i)]],
                    "filtered_resps": [answer(i)],
                    "filter": "none",
                }
            )
            + "\n"
            for i, d in enumerate(docs)
        ),
        encoding="utf-8",
    )
    return path


def test_lmeval_samples_files_are_compared_and_gated_directly(tmp_path, capsys):
    good = _samples_file(
        tmp_path / "samples_ifharness_default_a.jsonl",
        lambda i: "here is a short answer, in lower case. is there anything else i can help with?",
    )
    run = load_input(good)
    assert run.info.source == "lm-eval" and run.task == "default"
    assert run.path == good and not (tmp_path / "lm").exists()
    assert len(run.verdicts) == len(run.completions) == run.info.n_samples
    # the same log scored into a folder by `score --from-lmeval` gives the same verdicts
    folder = tmp_path / "lm"
    assert (
        main(["score", "--task", "default", "--from-lmeval", str(good), "--out", str(folder)]) == 0
    )
    assert load_run(folder).verdicts == run.verdicts
    capsys.readouterr()
    assert main(["gate", "--baseline", str(folder), "--candidate", str(good)]) == 0
    assert main(["compare", str(good), str(folder), "--n-resamples", "50"]) == 0
    assert "samples_ifharness_default_a.jsonl" in capsys.readouterr().out
    bad = tmp_path / "other.jsonl"
    bad.write_text('{"doc_id": 0, "doc": {"question": "x"}, "resps": [["y"]]}\n')
    assert main(["gate", "--baseline", str(folder), "--candidate", str(bad)]) == 2
    assert "ifharness_* task" in capsys.readouterr().err
