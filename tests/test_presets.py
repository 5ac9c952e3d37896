"""Presets, profiles listing, report.html from run and score, the unterminated-trace policy."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from ifharness import reasoning
from ifharness.cli import main
from ifharness.metrics import metric_names
from ifharness.presets import PRESETS, SETTINGS, Preset, get_preset, register_preset
from ifharness.run import RunConfig, apply_preset
from ifharness.runners.registry import get_backend
from tests.support.data import KEY_BASE, prompt_rows, read_jsonl, write_jsonl

TASKS = Path(__file__).resolve().parents[1] / "tasks"


def _answers(tmp_path: Path, n: int, texts: dict[int, str] | None = None) -> Path:
    """Comma-free answers of 12 words for ``prompt_rows(n)`` (all followed), except ``texts``."""
    rows = [
        {"key": KEY_BASE + i, "response": (texts or {}).get(i, " ".join(["word"] * 12))}
        for i in range(n)
    ]
    return write_jsonl(tmp_path / "answers.jsonl", rows)


def _replay(tmp_path: Path, out: str, *extra: str, n: int = 4, answers: Path | None = None):
    data = write_jsonl(tmp_path / "prompts.jsonl", prompt_rows(n))
    answers = answers or _answers(tmp_path, n)
    argv = ["run", "--backend", "replay", "--responses", str(answers), "--data", str(data)]
    return main([*argv, "--out", str(tmp_path / out), *extra])


def _run_json(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_names_things_that_exist(name):
    p = get_preset(name)
    from ifharness.verifiers import load_all
    from ifharness.verifiers.profiles import PROFILES

    load_all()
    assert (TASKS / f"{p.task}.yaml").is_file()
    assert p.profile is None or p.profile in PROFILES
    assert p.metric is None or p.metric in metric_names()
    assert p.reasoning_parser == "auto" or p.reasoning_parser in reasoning.names()
    assert p.unterminated_reasoning in reasoning.UNTERMINATED_POLICIES
    for backend, options in p.backend_options.items():
        assert set(options) <= set(get_backend(backend).options.model_fields)
    assert p.source and p.summary and set(p.settings()) == set(SETTINGS)


def test_a_preset_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_preset(PRESETS["lm-eval-ifeval"])
    with pytest.raises(ValueError):  # pydantic: a token budget must be positive
        Preset(name="x", version=1, benchmark="b", summary="s", source="s", task="t", max_tokens=0)


def test_profiles_lists_profiles_and_presets_one_line_each(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in ("reference", "ifeval-fixes-v1", "ifbench-2025", *PRESETS):
        assert sum(line.strip().startswith(f"{name}") for line in lines) == 1, name
    assert "nvidia-ifbench" in out and "16384" in out


@pytest.mark.parametrize("command", ["run", "score"])
def test_profile_and_preset_help_name_them_all(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    text = text.replace("- ", "-")  # argparse breaks long names at their hyphens
    for name in ("reference", "ifeval-fixes-v1", "ifbench-2025", *PRESETS):
        assert name in text, name


# ----------------------------------------------------------------------------- run


def test_run_writes_the_report_and_says_where(tmp_path, capsys):
    assert _replay(tmp_path, "r", "--task", "ifeval") == 0
    out = capsys.readouterr().out
    report = tmp_path / "r" / "report.html"
    assert f"report: {report}" in out.splitlines() and report.is_file()
    html = report.read_text()
    assert "Provenance" in html and f"key {KEY_BASE}" in html
    info = _run_json(tmp_path / "r")
    assert "preset" not in info and info["reasoning_parser"]["unterminated"] == "empty"


def test_a_preset_run_is_recorded_and_shown_in_report_and_leaderboard(tmp_path, capsys):
    # no --task: the preset's (ifeval); its headline metric replaces the task's
    assert _replay(tmp_path, "oll", "--preset", "open-llm-leaderboard-v2-ifeval") == 0
    info = _run_json(tmp_path / "oll")
    assert info["task"] == "ifeval" and info["metric"] == "ifeval_mean"
    p = info["preset"]
    assert (p["name"], p["version"], p["overridden"]) == ("open-llm-leaderboard-v2-ifeval", 1, {})
    assert "leaderboard_ifeval" in p["source"] and p["settings"]["metric"] == "ifeval_mean"
    assert p["effective"]["metric"] == "ifeval_mean" and p["effective"]["task"] == "ifeval"
    html = (tmp_path / "oll" / "report.html").read_text()
    assert "open-llm-leaderboard-v2-ifeval@v1" in html and "leaderboard_ifeval" in html
    assert "preset open-llm-leaderboard-v2-ifeval@v1" in capsys.readouterr().out

    assert _replay(tmp_path, "plain", "--task", "ifeval", "--model", "other") == 0
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path / "oll"), str(tmp_path / "plain")]) == 0
    md = capsys.readouterr().out
    assert "| preset |" in md and "open-llm-leaderboard-v2-ifeval@v1" in md
    assert main(["leaderboard", str(tmp_path / "oll"), "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df["preset"]) == ["open-llm-leaderboard-v2-ifeval@v1"]
    assert list(df["metric"]) == ["ifeval_mean"]


def test_an_explicit_flag_wins_over_the_preset(tmp_path, capsys):
    code = _replay(tmp_path, "r", "--preset", "lm-eval-ifeval", "--max-tokens", "99")
    assert code == 0
    info = _run_json(tmp_path / "r")
    assert info["sampling"]["max_tokens"] == 99  # the flag
    assert info["sampling"]["temperature"] == 0.0 and info["sampling"]["stop"] == []  # preset
    p = info["preset"]
    assert p["settings"]["max_tokens"] == 1280 and p["overridden"] == {"max_tokens": 99}
    assert p["effective"]["sampling"]["max_tokens"] == 99
    assert "overridden by flags: max_tokens" in capsys.readouterr().out
    assert "max_tokens" in (tmp_path / "r" / "report.html").read_text()


def test_preset_backend_options_yield_to_typed_ones():
    base = {"base_url": "http://127.0.0.1:9/v1"}
    cfg, preset, over = apply_preset(
        RunConfig(backend="openai", options=base, preset="ifbench-aa-v2")
    )
    assert preset is not None and cfg.task == "ifbench"
    assert cfg.backend_options.max_retries == 30 and cfg.max_tokens == 16384 and over == {}
    cfg, _, over = apply_preset(
        RunConfig(
            backend="openai", options={**base, "max_retries": 2}, preset="ifbench-aa-v2", task="x"
        )
    )
    assert cfg.backend_options.max_retries == 2 and cfg.task == "x"
    assert over == {"task": "x", "backend_options": {"max_retries": 2}}
    cfg, preset, _ = apply_preset(RunConfig())
    assert preset is None and cfg.task == "default" and cfg.unterminated_reasoning == "empty"


def test_an_unknown_preset_names_the_known_ones(tmp_path, capsys):
    assert _replay(tmp_path, "r", "--preset", "nope") == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "lm-eval-ifeval" in err


# ----------------------------------------------------------------------------- score


def test_score_writes_the_report_and_records_the_preset(tmp_path, capsys):
    data = write_jsonl(tmp_path / "prompts.jsonl", prompt_rows(3))
    answers = _answers(tmp_path, 3)
    out = tmp_path / "s"
    argv = ["score", "--data", str(data), "--responses", str(answers), "--out", str(out)]
    assert main([*argv, "--preset", "open-llm-leaderboard-v2-ifeval"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out.splitlines()
    info = _run_json(out)
    assert info["kind"] == "score" and info["metric"] == "ifeval_mean"
    assert info["preset"]["name"] == "open-llm-leaderboard-v2-ifeval"
    assert info["preset"]["effective"] == {
        "task": "ifeval",
        "profile": "reference",
        "metric": "ifeval_mean",
    }
    assert "open-llm-leaderboard-v2-ifeval@v1" in (out / "report.html").read_text()

    # without a preset: the report all the same, and --task is needed
    assert main([*argv, "--task", "ifeval", "--profile", "ifeval-fixes-v1"]) == 0
    assert "report:" in capsys.readouterr().out and "preset" not in _run_json(out)
    assert _run_json(out)["profile"]["name"] == "ifeval-fixes-v1"
    assert main(argv) == 2
    assert "--task" in capsys.readouterr().err


# ----------------------------------------------------------------------------- unterminated


def test_the_policy_is_applied_in_the_split():
    think = reasoning.get("think")
    text = "<think>still thinking about it"
    assert think.split(text) == reasoning.Split("still thinking about it", "")
    assert think.split(text).unterminated
    raw = reasoning.with_unterminated(think, "raw")
    assert raw.name == "think" and raw.split(text) == reasoning.Split(None, text)
    assert reasoning.is_unterminated(raw, text) and reasoning.is_unterminated(think, text)
    closed = "<think>done</think>The answer."
    assert raw.split(closed) == think.split(closed) == reasoning.Split("done", "The answer.")
    assert not reasoning.is_unterminated(think, closed)
    harmony = reasoning.with_unterminated(reasoning.get("harmony"), "raw")
    assert harmony.split("analysisno final yet").answer == "analysisno final yet"
    with pytest.raises(Exception, match="choose one of empty, raw"):
        reasoning.with_unterminated(think, "keep")


def test_unterminated_traces_are_counted_and_scored_by_the_policy(tmp_path, capsys):
    cut = "<think>" + " ".join(["hmm"] * 12)  # comma-free and 13 words: followed if scored raw
    answers = _answers(tmp_path, 3, {0: cut})
    common = ["--task", "ifeval", "--reasoning-parser", "think"]
    assert _replay(tmp_path, "empty", *common, n=3, answers=answers) == 0
    assert "1 answer(s) ended inside their reasoning" in capsys.readouterr().out
    info = _run_json(tmp_path / "empty")
    assert info["generation"]["unterminated_reasoning"] == 1
    assert info["generation"]["unterminated_policy"] == "empty"
    assert "unterminated_reasoning" not in info["identity"]  # the default: older folders resume
    rows = {r["key"]: r for r in read_jsonl(tmp_path / "empty" / "completions.jsonl")}
    assert rows[KEY_BASE]["response"] == "" and rows[KEY_BASE]["raw"] == cut
    verdicts = {r["key"]: r for r in read_jsonl(tmp_path / "empty" / "verdicts.jsonl")}
    assert verdicts[KEY_BASE]["strict"] == [False, False]
    html = (tmp_path / "empty" / "report.html").read_text()
    assert "reasoning never closed" in html and "scored as an empty answer" in html

    extra = ["--unterminated-reasoning", "raw"]
    assert _replay(tmp_path, "raw", *common, *extra, n=3, answers=answers) == 0
    info = _run_json(tmp_path / "raw")
    assert info["reasoning_parser"]["unterminated"] == "raw"
    assert info["identity"]["unterminated_reasoning"] == "raw"
    assert info["generation"]["unterminated_reasoning"] == 1
    rows = {r["key"]: r for r in read_jsonl(tmp_path / "raw" / "completions.jsonl")}
    assert rows[KEY_BASE]["response"] == cut and rows[KEY_BASE]["reasoning"] is None
    verdicts = {r["key"]: r for r in read_jsonl(tmp_path / "raw" / "verdicts.jsonl")}
    assert verdicts[KEY_BASE]["strict"] == [True, True]
    assert "the raw text is scored" in (tmp_path / "raw" / "report.html").read_text()
