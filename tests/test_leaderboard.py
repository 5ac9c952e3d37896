"""ifharness leaderboard: rows, named metrics, provenance, formats, and the HTML in Chromium."""

from __future__ import annotations

import html
import io
import json
import os
import re
import time

import pandas as pd
import pytest

from ifharness.cli import main
from ifharness.leaderboard import collect
from ifharness.scoring import summarize
from tests.support.browser import dump_dom, screenshot, screenshot_dir
from tests.support.synthetic import clean, make_rows, noisy_copy, plant_drop, write_run

EVIL = "<script>document.title='PWNED'</script>"


@pytest.fixture
def results(tmp_path):
    base = make_rows(300, seed=0)
    root = tmp_path / "results"
    sampling = {"temperature": 0.0, "max_tokens": 512, "seed": 0}
    write_run(root / "a", base, model="model-a", sampling=sampling, chat_template_sha256="c0ffee")
    write_run(
        root / "b",
        plant_drop(noisy_copy(base, 1), 8, seed=1),
        model="model-b",
        sampling=sampling,
        completions=[
            {"key": r["key"], "response": "x", "finish_reason": "length" if i % 10 == 0 else "stop"}
            for i, r in enumerate(base)
        ],
    )
    write_run(
        root / "c",
        make_rows(80, seed=5),
        model=f"evil{EVIL}",
        task="other-task",
        dataset_hash="e" * 64,
    )
    (root / "not-a-run").mkdir()
    return root


def test_rows_metrics_and_provenance(results):
    rows = collect([str(results / "*")], warn=lambda m: None)
    assert [(r["task"], r["model"], r["rank"]) for r in rows] == [
        ("other-task", f"evil{EVIL}", 1),
        ("synthetic", "model-a", 1),
        ("synthetic", "model-b", 2),
    ]
    a = rows[1]
    m = summarize(clean(make_rows(300, seed=0)))
    assert a["metric"] == "prompt_level_strict_acc"  # unknown task: the default headline
    assert a["score"] == m["prompt_level_strict_acc"]
    assert [a["ci_low"], a["ci_high"]] == m["ci"]["prompt_level_strict_acc"]
    assert a["sampling"] == "max_tokens=512, seed=0, temperature=0.0"
    assert a["chat_template_hash"] == "c0ffee" and a["profile"] == "reference"
    assert a["dataset_hash"] == "f" * 64 and a["truncation_rate"] is None
    assert rows[2]["truncation_rate"] == pytest.approx(0.1)


def test_ifeval_mean_is_the_oll_composition(results):
    rows = collect([str(results)], metric="ifeval_mean", warn=lambda m: None)
    for r in rows:
        assert r["metric"] == "ifeval_mean"
        assert r["score"] == pytest.approx(
            (r["prompt_level_strict_acc"] + r["inst_level_strict_acc"]) / 2
        )
        assert r["ci_low"] < r["score"] < r["ci_high"]


def test_bundled_task_metric_comes_from_the_task(tmp_path):
    run = write_run(tmp_path / "d", make_rows(20), task="default", model="m")
    assert collect([str(run)])[0]["metric"] == "prompt_level_strict_acc"
    run2 = write_run(
        tmp_path / "e", make_rows(20), task="default", model="m2", metric="inst_level_loose_acc"
    )
    assert collect([str(run2)])[0]["metric"] == "inst_level_loose_acc"


def test_duplicate_model_task_keeps_newest(tmp_path):
    rows = make_rows(50)
    old = write_run(tmp_path / "old", rows, model="m")
    new = write_run(tmp_path / "new", plant_drop(rows, 10, 0), model="m")
    past = time.time() - 1000
    os.utime(old / "verdicts.jsonl", (past, past))
    warnings = []
    out = collect([str(old), str(new)], warn=warnings.append)
    assert len(out) == 1 and out[0]["run"] == str(new)
    assert any("newer than" in w for w in warnings)


def test_formats_via_cli(results, tmp_path, capsys):
    assert main(["leaderboard", str(results / "*"), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "skipped" not in captured.err  # the glob silently passes over non-run folders
    df = pd.read_csv(io.StringIO(captured.out))
    assert list(df["model"]) == [f"evil{EVIL}", "model-a", "model-b"]
    assert {
        "metric",
        "score",
        "ci_low",
        "ci_high",
        "truncation_rate",
        "dataset_hash",
        "profile",
        "sampling",
        "chat_template_hash",
    } <= set(df.columns)

    assert main(["leaderboard", str(results), "--metric", "mean4"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| # | model | task | metric |") and "`mean4`: mean of the four" in md

    out = tmp_path / "lb.json"
    assert main(["leaderboard", str(results / "a"), str(results / "b"), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["rows"][0]["per_family"] and "ifeval_mean" in doc["metric_definitions"]


def test_errors_are_exit_2(results, tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "nothing-*")]) == 2
    assert "no run folder matches" in capsys.readouterr().err
    assert main(["leaderboard", str(results / "not-a-run")]) == 2
    err = capsys.readouterr().err
    assert "skipped" in err and "none of the given folders" in err
    assert main(["leaderboard", str(results), "--metric", "bogus"]) == 2


def test_html_in_chromium(results, tmp_path):
    out = tmp_path / "leaderboard.html"
    assert main(["leaderboard", str(results), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert EVIL not in page and html.escape(EVIL) in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no CDN
    assert page.count("<svg") == 4  # per task: family bars and a constraint heat map
    dom = dump_dom(out)
    assert 'data-ready="1"' in dom
    assert re.search(r"<title>ifharness leaderboard</title>", dom)
    assert "<rect" in dom and 'class="sortable"' in dom
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in dom
    png = screenshot_dir(tmp_path) / "leaderboard.png"
    assert screenshot(out, png) == (1400, 1800)
    assert png.stat().st_size > 20_000
