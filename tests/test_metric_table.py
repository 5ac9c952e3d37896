"""The one metric table (ifharness/metrics.py): a metric added as one entry reaches every stage.

A toy base metric (a prompt passes when more than half of its scorable instructions are
followed) and a toy composite are registered through the public ``register_metric``; the
scorer, the lm-eval hooks, the leaderboard, compare and the CLI help must all show them with
no other edit, and the built-in numbers must not move.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from ifharness import metrics, stats
from ifharness.cli import main
from ifharness.lmeval import hooks
from ifharness.metrics import BaseMetric, CompositeMetric, register_metric
from ifharness.scoring import summarize

TOY = "majority_strict_acc"
TOY_MEAN = "toy_mean"


def majority(verdicts: Sequence[bool | None]) -> tuple[int, int]:
    known = [bool(v) for v in verdicts if v is not None]
    return (0, 0) if not known else (int(sum(known) * 2 > len(known)), 1)


@pytest.fixture
def toy(monkeypatch):
    """The table with a toy base metric and a toy composite, restored afterwards."""
    monkeypatch.setattr(metrics, "TABLE", dict(metrics.TABLE))
    register_metric(
        BaseMetric(
            name=TOY,
            level="prompt",
            mode="strict",
            stderr="binomial",
            count=majority,
            label="majority strict",
            description="share of prompts with most instructions followed",
        )
    )
    register_metric(
        CompositeMetric(
            name=TOY_MEAN, parts=(TOY, "inst_level_strict_acc"), description="a toy composition"
        )
    )
    return TOY


ROWS = [
    {
        "key": 1,
        "instruction_id_list": ["a:x", "a:y", "b:z"],
        "strict": [True, False, True],
        "loose": [True, True, True],
    },
    {
        "key": 2,
        "instruction_id_list": ["a:x", "b:z"],
        "strict": [False, False],
        "loose": [False, True],
    },
    {"key": 3, "instruction_id_list": ["a:y"], "strict": [True], "loose": [True]},
    {
        "key": 4,
        "instruction_id_list": ["a:x", "a:y"],
        "strict": [None, True],
        "loose": [None, True],
    },
]


def test_toy_metric_in_summarize_without_moving_the_builtins(toy):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            metrics, "TABLE", {k: v for k, v in metrics.TABLE.items() if k not in (TOY, TOY_MEAN)}
        )
        before = summarize(ROWS, n_resamples=200, seed=3)
    after = summarize(ROWS, n_resamples=200, seed=3)
    # rows 1, 3, 4 have a majority followed (row 4 only counts its scorable instruction)
    assert after[TOY] == 3 / 4
    assert after[f"{TOY}_followed"] == 3 and after[f"{TOY}_scored"] == 4
    assert after[f"{TOY}_stderr"] == stats.stderr_mean(3, 4)
    assert after[TOY_MEAN] == (3 / 4 + after["inst_level_strict_acc"]) / 2
    assert after["ci"][TOY] is not None and after["ci"][TOY_MEAN] is not None
    assert before["prompt_level_strict_acc"] == 1 / 3  # row 4 is unscorable at prompt level
    for key, value in before.items():
        if key == "ci":
            assert {k: after["ci"][k] for k in value} == value
        else:
            assert after[key] == value, key
    assert TOY in stats.METRICS and stats.BASE_METRICS[TOY] == ("prompt", "strict")


def test_toy_metric_in_lmeval_hooks(toy):
    docs = hooks.task_docs("default")[:4]
    answers = ["hello there", "Sure, here it is. HELLO.", "", "a\n\nb, c"]
    per_doc = [hooks.process_results(d, [a]) for d, a in zip(docs, answers)]
    want = [majority(hooks.verdicts(d, a)["strict"]) for d, a in zip(docs, answers)]
    assert [p[TOY] for p in per_doc] == [float(y) if m else None for y, m in want]
    assert TOY + "_se" in per_doc[0]
    trials = sum(m for _, m in want)
    assert hooks.agg_majority_strict_acc([p[TOY] for p in per_doc]) == pytest.approx(
        sum(y for y, _ in want) / trials
    )
    assert {
        "metric": TOY,
        "aggregation": "ifharness.lmeval.hooks.agg_majority_strict_acc",
        "higher_is_better": True,
    } in hooks.metric_list()


def _score(tmp_path: Path, name: str, answer: str) -> str:
    docs = hooks.task_docs("default")
    responses = tmp_path / f"{name}.jsonl"
    responses.write_text(
        "".join(
            json.dumps({"key": d["key"], "response": answer.format(i=i)}) + "\n"
            for i, d in enumerate(docs)
        ),
        encoding="utf-8",
    )
    out = tmp_path / name
    assert (
        main(["score", "--task", "default", "--responses", str(responses), "--out", str(out)]) == 0
    )
    return str(out)


def test_toy_metric_in_leaderboard_and_compare(toy, tmp_path, capsys):
    a = _score(tmp_path, "a", "hello world, this is answer {i}.")
    b = _score(tmp_path, "b", "Hello world this is answer {i}")
    capsys.readouterr()
    assert (
        main(["leaderboard", a, b, "--metric", TOY, "--format", "json", "--n-resamples", "50"]) == 0
    )
    board = json.loads(capsys.readouterr().out)
    assert board["metric_definitions"][TOY] == metrics.TABLE[TOY].description
    assert all(r["metric"] == TOY and r["score"] == r[TOY] for r in board["rows"])
    assert main(["leaderboard", a, b, "--format", "md", "--n-resamples", "50"]) == 0
    assert "| majority strict |" in capsys.readouterr().out
    assert main(["compare", a, b, "--json", str(tmp_path / "cmp.json"), "--n-resamples", "50"]) == 0
    assert TOY in capsys.readouterr().out
    cmp = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert list(cmp["metrics"]) == list(metrics.metric_names())
    assert cmp["metrics"][TOY]["test"] == "mcnemar_exact"  # a prompt-level (Bernoulli) metric
    assert cmp["metrics"][TOY_MEAN]["test"] == "paired_bootstrap"
    assert "mcnemar" not in cmp["metrics"]["inst_level_strict_acc"]


def test_toy_metric_in_cli_help(toy, capsys):
    for command in ("leaderboard", "compare", "gate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert TOY_MEAN in " ".join(capsys.readouterr().out.split()), command


def test_lmeval_yaml_metric_list_is_the_table():
    """lm-eval reads metric_list from the static YAML: it must say what the table says."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    path = Path(hooks.__file__).with_name("_template_yaml")
    got = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)["metric_list"]
    assert got == hooks.metric_list(), "regenerate metric_list from hooks.metric_list()"
    for entry in got:  # every aggregation the YAML names resolves
        assert callable(getattr(hooks, entry["aggregation"].rsplit(".", 1)[1]))


def test_register_metric_refuses_bad_entries(monkeypatch):
    monkeypatch.setattr(metrics, "TABLE", dict(metrics.TABLE))
    with pytest.raises(ValueError, match="already"):
        register_metric(CompositeMetric(name="mean4", parts=("ifeval_mean",), description=""))
    with pytest.raises(ValueError, match="unknown parts"):
        register_metric(CompositeMetric(name="x", parts=("nope",), description=""))
    with pytest.raises(ValueError, match="one trial per row"):
        BaseMetric(
            name="y",
            level="inst",
            mode="strict",
            stderr="binomial",
            count=metrics.inst_counts,
            description="",
        )
    with pytest.raises(ValueError, match="choose one of"):
        stats.check_metric("nope")
