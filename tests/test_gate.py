"""compare and gate: planted drops are caught, noise is not, exit codes 0/1/2 end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ifharness import stats
from ifharness.cli import main
from ifharness.compare import compare_runs
from ifharness.errors import IfharnessError
from ifharness.gate import parse_drop, run_gate
from ifharness.rundir import load_run
from tests.support.synthetic import make_rows, noisy_copy, plant_drop, write_run


@pytest.fixture
def runs(tmp_path):
    base = make_rows(541, seed=0)
    return {
        "base": write_run(tmp_path / "base", base, model="base-model"),
        "noise": write_run(tmp_path / "noise", noisy_copy(base, seed=1), model="same-model"),
        "drop": write_run(
            tmp_path / "drop", plant_drop(noisy_copy(base, seed=1), 5, seed=2), model="worse-model"
        ),
    }


def gate(*args: str) -> int:
    return main(["gate", *args])


def test_planted_five_point_drop_fails_the_gate(runs, tmp_path):
    out_json, out_md = tmp_path / "v.json", tmp_path / "v.md"
    code = gate(
        "--baseline",
        str(runs["base"]),
        "--candidate",
        str(runs["drop"]),
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
    )
    assert code == 1
    verdict = json.loads(out_json.read_text())
    assert verdict["passed"] is False and verdict["exit_code"] == 1
    check = verdict["checks"][0]
    assert check["metric"] == "prompt_level_strict_acc"  # the default headline
    assert check["test"] == "mcnemar_exact" and check["p"] < 0.05
    assert check["delta"] < -0.02 and check["status"] == "regression"
    md = out_md.read_text()
    assert md.startswith("## ifharness gate: ❌") and "prompt_level_strict_acc" in md
    assert "Benjamini-Hochberg" in md and "| constraint |" in md


def test_noise_only_passes_the_gate(runs, tmp_path, capsys):
    out_json = tmp_path / "v.json"
    code = gate(
        "--baseline",
        str(runs["base"]),
        "--candidate",
        str(runs["noise"]),
        "--metric",
        "prompt_level_strict_acc",
        "--metric",
        "inst_level_strict_acc",
        "--alpha",
        "0.05",
        "--json",
        str(out_json),
    )
    assert code == 0
    verdict = json.loads(out_json.read_text())
    assert verdict["passed"] and [c["regression"] for c in verdict["checks"]] == [False, False]
    assert "gate: PASS" in capsys.readouterr().out


def test_gate_error_rate_and_power_at_alpha():
    """Over many seeded pairs: noise is flagged at most about alpha of the time (even with
    no drop threshold), a planted 5-point drop nearly always."""
    alpha, false_pos, caught = 0.05, 0, 0
    trials = 60
    for seed in range(trials):
        base = make_rows(541, seed=100 + seed)
        t_base = stats.build_table(base)
        noise = noisy_copy(base, seed=500 + seed)
        for rows, is_drop in ((noise, False), (plant_drop(noise, 5, seed=seed), True)):
            b, c, _ = stats.discordant(
                (all(x["strict"]), all(y["strict"])) for x, y in zip(base, rows)
            )
            flagged = stats.mcnemar_exact(b, c) < alpha and c < b
            if is_drop:
                caught += flagged
            else:
                false_pos += flagged
        boot = stats.paired_bootstrap(
            t_base, stats.build_table(noise), ["inst_level_strict_acc"], n_resamples=200, seed=seed
        )
        false_pos += (
            boot["inst_level_strict_acc"]["p"] < alpha
            and boot["inst_level_strict_acc"]["delta"] < 0
        )
    assert false_pos <= 0.1 * 2 * trials  # two tests per null pair
    assert caught >= 0.95 * trials


def test_ci_rule_and_thresholds(runs):
    base, drop = load_run(runs["base"]), load_run(runs["drop"])
    strict_rule = run_gate(base, drop, max_drop=0.0, rule="ci", n_resamples=300)
    assert strict_rule["passed"] is False
    huge = run_gate(base, drop, max_drop=0.2, n_resamples=300)
    assert huge["passed"] is True  # significant, but within the tolerated drop
    assert huge["checks"][0]["status"] == "ok"
    improved = run_gate(drop, base, n_resamples=300)
    assert improved["passed"] and improved["checks"][0]["status"] == "improvement"


def test_compare_reports_pairs_and_bh(runs, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert (
        main(
            [
                "compare",
                str(runs["base"]),
                str(runs["drop"]),
                "--json",
                str(out),
                "--markdown",
                str(tmp_path / "c.md"),
                "--n-resamples",
                "300",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "mcnemar_exact" in printed and "q (BH)" in printed
    res = json.loads(out.read_text())
    assert res["paired"]["rows"] == 541 and res["paired"]["only_a"] == 0
    assert set(res["metrics"]) == set(stats.METRICS)
    ps = [r["p"] for r in res["constraints"]]
    assert ps == sorted(ps)
    assert all(r["q"] >= r["p"] for r in res["constraints"])
    mc = res["metrics"]["prompt_level_strict_acc"]["mcnemar"]
    assert mc["a_only"] > mc["b_only"]


def test_partial_candidate_is_paired_on_common_prompts(tmp_path):
    base = make_rows(200, seed=3)
    a = write_run(tmp_path / "a", base)
    b = write_run(tmp_path / "b", base[:120])
    res = compare_runs(load_run(a), load_run(b), n_resamples=50)
    assert res["paired"]["rows"] == 120 and res["paired"]["only_a"] == 80
    assert any("paired on 120 rows" in n for n in res["notes"])


def test_samples_per_prompt_pair_by_sample(tmp_path):
    base = make_rows(150, seed=4, samples=3)
    a = write_run(tmp_path / "a", base)
    b = write_run(tmp_path / "b", noisy_copy(base, seed=5))
    res = compare_runs(load_run(a), load_run(b), n_resamples=100)
    assert res["paired"] == {
        "rows": 450,
        "prompts": 150,
        "only_a": 0,
        "only_b": 0,
        "samples_per_prompt": 3,
    }
    assert res["metrics"]["prompt_level_strict_acc"]["test"] == "paired_bootstrap"


# ---------------------------------------------------------------- exit code 2


def test_missing_folder_is_exit_2(runs, tmp_path, capsys):
    assert gate("--baseline", str(runs["base"]), "--candidate", str(tmp_path / "nope")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_mismatched_task_and_data_are_exit_2(runs, tmp_path, capsys):
    rows = make_rows(541, seed=0)
    other_task = write_run(tmp_path / "t", rows, task="other")
    other_data = write_run(tmp_path / "d", rows, dataset_hash="0" * 64)
    assert gate("--baseline", str(runs["base"]), "--candidate", str(other_task)) == 2
    assert "different tasks" in capsys.readouterr().err
    assert gate("--baseline", str(runs["base"]), "--candidate", str(other_data)) == 2
    assert "different data" in capsys.readouterr().err


def test_unreadable_files_are_exit_2(runs, tmp_path, capsys):
    bad = write_run(tmp_path / "bad", make_rows(5))
    (bad / "verdicts.jsonl").write_text('{"key": 1, "strict": [true]\n', encoding="utf-8")
    assert gate("--baseline", str(runs["base"]), "--candidate", str(bad)) == 2
    assert "verdicts.jsonl:1" in capsys.readouterr().err
    (bad / "run.json").write_text("{not json", encoding="utf-8")
    assert gate("--baseline", str(bad), "--candidate", str(runs["base"])) == 2
    assert "run.json" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert gate("--baseline", str(empty), "--candidate", str(runs["base"])) == 2
    assert "run folder" in capsys.readouterr().err


def test_bad_options_are_exit_2(runs, capsys):
    args = ["--baseline", str(runs["base"]), "--candidate", str(runs["noise"])]
    assert gate(*args, "--metric", "accuracy") == 2
    assert "unknown metric" in capsys.readouterr().err
    assert gate(*args, "--max-drop", "5") == 2
    assert gate(*args, "--alpha", "1.5") == 2
    with pytest.raises(SystemExit) as e:
        gate("--baseline", str(runs["base"]))
    assert e.value.code == 2


def test_parse_drop():
    assert parse_drop("0.02") == 0.02 and parse_drop("2pt") == 0.02 and parse_drop("2%") == 0.02
    assert parse_drop("0.5 points") == 0.005
    with pytest.raises(IfharnessError):
        parse_drop("-1")


def test_console_exit_codes_in_a_subprocess(runs, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "ifharness.cli", "gate", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )

    fail = run(
        "--baseline", str(runs["base"]), "--candidate", str(runs["drop"]), "--n-resamples", "200"
    )
    assert fail.returncode == 1 and "gate: FAIL" in fail.stdout
    ok = run(
        "--baseline", str(runs["base"]), "--candidate", str(runs["noise"]), "--n-resamples", "200"
    )
    assert ok.returncode == 0, ok.stderr
    err = run("--baseline", str(runs["base"]), "--candidate", str(tmp_path / "missing"))
    assert err.returncode == 2 and err.stderr.startswith("error:")


def test_real_gpt4_run_against_itself_passes(gpt4_result, gpt4_path, tmp_path):
    from ifharness.results import write_score_run

    write_score_run(tmp_path / "gpt4", gpt4_result, gpt4_path)
    assert (
        gate(
            "--baseline",
            str(tmp_path / "gpt4"),
            "--candidate",
            str(tmp_path / "gpt4"),
            "--metric",
            "ifeval_mean",
        )
        == 0
    )
