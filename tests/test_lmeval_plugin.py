"""The lm-eval plugin (ifharness/lmeval/): the ifharness_* tasks under the real `lm_eval` CLI
give the same four numbers as `ifharness score --from-lmeval` on the same logged answers,
and do not shadow lm-eval's own tasks.

The fast tests check the hooks on fixed docs; the slow ones run lm-eval on CPU with the
embedded SmolLM2-135M-Instruct (a few prompts, 64 new tokens) and build lm-eval's task index.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ifharness.lmeval import hooks
from ifharness.scoring import judge
from tests.support.data import shared
from tests.support.models import embedded_model_or_skip

needs_lmeval = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None,
    reason="lm-eval is not installed (pip install -e '.[dev]')",
)
BASE_METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)
# One torch thread: on a small shared CPU, more threads than idle cores made greedy
# generation 25x slower here (155 s against 6 s for 3 answers of 64 tokens).
SUBPROCESS_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


# ----------------------------------------------------------------------------- fast: the hooks


@pytest.fixture(scope="module")
def default_docs():
    return hooks.task_docs("default")


def _doc(docs, *ids):
    return next(d for d in docs if d["instruction_id_list"] == list(ids))


def test_docs_carry_bound_instructions_and_settings(default_docs):
    doc = default_docs[0]
    assert doc["task"] == "default" and doc["profile"] == "reference"
    assert doc["reasoning_parser"] == "think"  # unknown model family: split only on tags
    assert [c for c, _ in hooks.bound_instructions(doc)] == doc["instruction_id_list"]
    assert hooks.doc_to_text(doc) == doc["prompt"]
    json.dumps(doc)  # a --log_samples line must hold it


def test_process_results_strips_think_then_verifies(default_docs):
    doc = _doc(default_docs, "length_constraints:number_words", "punctuation:no_comma")
    answer = "Hello there. When will the faucet be fixed? Thank you."
    plain = hooks.process_results(doc, [answer])
    assert plain["prompt_level_strict_acc"] == plain["prompt_level_strict_acc_se"] == 1.0
    assert plain["inst_level_strict_acc"] == [True, True]
    assert plain["inst_level_strict_acc_clustered_se"] == [True, True]
    # a trace full of commas and words is not what is checked
    trace = "<think>" + "Well, hmm, let me think, carefully, " * 40 + "</think>\n\n"
    assert hooks.process_results(doc, [trace + answer]) == plain
    # without the split the trace would fail both instructions
    bare = judge(
        hooks.bound_instructions(doc),
        trace.replace("<think>", "").replace("</think>", "") + answer,
        hooks._profile("reference"),
        doc["suite"],
    )
    assert bare["strict"] == [False, False]
    # cut off inside the trace: nothing is answered
    cut = hooks.process_results(doc, ["<think>still thinking, about it"])
    assert cut["prompt_level_strict_acc"] == 0.0 and cut["inst_level_loose_acc"] == [False, False]


def test_process_results_matches_judge_and_loose(default_docs):
    doc = _doc(default_docs, "length_constraints:number_words", "punctuation:no_comma")
    answer = "**Sure, here it is.**\nHello there. When will the faucet be fixed?"
    got = hooks.process_results(doc, [answer])
    want = judge(hooks.bound_instructions(doc), answer, hooks._profile("reference"), doc["suite"])
    assert got["inst_level_strict_acc"] == want["strict"]
    assert got["inst_level_loose_acc"] == want["loose"]
    assert want["strict"][1] is False and want["loose"][1] is True  # first line dropped
    assert got["prompt_level_strict_acc"] == 0.0 and got["prompt_level_loose_acc"] == 1.0


def test_aggregations_micro_average_and_clustered_se():
    from ifharness import stats

    assert hooks.agg_prompt_level_acc([1.0, None, 0.0, 1.0]) == 2 / 3
    assert hooks.agg_prompt_level_se([1.0, None, 0.0, 1.0]) == stats.stderr_mean(2, 3)
    items = [[True, False], [True], [False, None, True]]
    assert hooks.agg_inst_level_acc(items) == 3 / 5  # None (unscorable) left out
    assert hooks.agg_clustered_se(items) == stats.stderr_clustered([(1, 2), (1, 1), (1, 2)])
    assert hooks.agg_inst_level_acc([[None]]) != hooks.agg_inst_level_acc([[None]])  # nan


def test_data_path_from_metadata_or_env(monkeypatch):
    monkeypatch.delenv(hooks.DATA_ENV, raising=False)
    assert hooks._data_for("ifeval", None) is None
    assert hooks._data_for("ifeval", "x.jsonl") == "x.jsonl"
    assert hooks._data_for("ifeval", {"ifharness_ifeval": "a.jsonl"}) == "a.jsonl"
    assert hooks._data_for("ifbench", {"ifeval": "a.jsonl"}) is None
    monkeypatch.setenv(hooks.DATA_ENV, "e.jsonl")
    assert hooks._data_for("ifeval", None) == "e.jsonl"


def _fake_log(path: Path, docs, answers) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, (doc, text) in enumerate(zip(docs, answers)):
            f.write(
                json.dumps(
                    {
                        "doc_id": i,
                        "doc": doc,
                        "target": "0",
                        "resps": [[text]],
                        "filtered_resps": [text],
                        "filter": "none",
                    }
                )
                + "\n"
            )
    return path


AGGREGATIONS = {
    "prompt_level_strict_acc": hooks.agg_prompt_level_acc,
    "inst_level_strict_acc": hooks.agg_inst_level_acc,
    "prompt_level_loose_acc": hooks.agg_prompt_level_acc,
    "inst_level_loose_acc": hooks.agg_inst_level_acc,
    "prompt_level_strict_acc_se": hooks.agg_prompt_level_se,
    "prompt_level_loose_acc_se": hooks.agg_prompt_level_se,
    "inst_level_strict_acc_clustered_se": hooks.agg_clustered_se,
    "inst_level_loose_acc_clustered_se": hooks.agg_clustered_se,
}
# lm-eval's metric name -> the name in our metrics.json
OURS = {
    **{m: m for m in BASE_METRICS},
    "prompt_level_strict_acc_se": "prompt_level_strict_acc_stderr",
    "prompt_level_loose_acc_se": "prompt_level_loose_acc_stderr",
    "inst_level_strict_acc_clustered_se": "inst_level_strict_acc_stderr",
    "inst_level_loose_acc_clustered_se": "inst_level_loose_acc_stderr",
}


def _lmeval_aggregate(docs, answers) -> dict[str, float]:
    """What lm-eval computes from process_results, without lm-eval."""
    per_doc = [hooks.process_results(d, [a]) for d, a in zip(docs, answers)]
    assert set(per_doc[0]) == set(AGGREGATIONS)
    return {m: agg([r[m] for r in per_doc]) for m, agg in AGGREGATIONS.items()}


def _assert_same(lmeval: dict, ours: dict, suffix: str = "") -> None:
    """Every lm-eval number equals ours exactly (not approximately)."""
    for name, our_name in OURS.items():
        value = lmeval[name + suffix]
        if isinstance(value, float) and math.isnan(value):  # ours: None (nothing to divide)
            value = None
        assert value == ours[our_name], name


def test_ifbench_with_unscorable_instructions_matches_score():
    """IFBench's sample output has unscorable instructions: prompt level leaves them out."""
    from ifharness.loader import load_task
    from ifharness.scoring import score

    data = shared("ifbench/IFBench_test.jsonl")
    outputs = [
        json.loads(x)
        for x in shared("ifbench/sample_output.jsonl").read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    by_prompt = {r["prompt"]: r["response"] for r in outputs}
    docs = hooks.task_docs("ifbench", data=str(data))
    answers = [by_prompt.get(d["prompt"], "") for d in docs]
    ours = score(
        load_task("ifbench", data=data),
        [{"key": d["key"], "response": a} for d, a in zip(docs, answers)],
        n_resamples=0,
    ).metrics
    assert ours["unscorable_instructions"] > 0
    _assert_same(_lmeval_aggregate(docs, answers), ours)


def test_score_from_lmeval_log_equals_process_results(tmp_path, default_docs):
    from ifharness.cli import main

    docs = default_docs[:6]
    answers = [
        "<think>a, b, c</think>Short reply.",
        "",
        "plain answer, with a comma",
        "HELLO WORLD",
        "P.S. done",
        "**bold** text\nsecond line",
    ]
    log = _fake_log(tmp_path / "samples_ifharness_default_x.jsonl", docs, answers)
    assert (
        main(
            [
                "score",
                "--from-lmeval",
                str(log),
                "--task",
                "ifharness_default",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["source"] == "lm-eval" and run["n_samples"] == 6
    _assert_same(_lmeval_aggregate(docs, answers), metrics)
    verdicts = [
        json.loads(x) for x in (tmp_path / "run" / "verdicts.jsonl").read_text().splitlines()
    ]
    assert [v["key"] for v in verdicts] == [d["key"] for d in docs]


def test_score_requires_responses_or_from_lmeval(tmp_path, capsys):
    from ifharness.cli import main

    assert main(["score", "--task", "default", "--out", str(tmp_path)]) == 2
    assert "--from-lmeval" in capsys.readouterr().err


def test_lmeval_path_prints_the_task_folder(capsys):
    from ifharness.cli import main

    assert main(["lmeval-path"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert sorted(p.name for p in folder.glob("*.yaml")) == [
        "ifharness_default.yaml",
        "ifharness_ifbench.yaml",
        "ifharness_ifeval.yaml",
    ]


# ----------------------------------------------------------------------------- slow: real lm-eval


@pytest.mark.slow
@needs_lmeval
def test_builtin_ifeval_is_untouched():
    import lm_eval
    from lm_eval.tasks import TaskManager

    import ifharness.lmeval as plugin

    tm = plugin.task_manager()
    builtin = Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml"
    assert Path(tm.task_index["ifeval"].yaml_path).resolve() == builtin.resolve()
    ours = {
        n
        for n, e in tm.task_index.items()
        if e.yaml_path and Path(e.yaml_path).resolve().parent == Path(plugin.include_path())
    }
    assert ours == {"ifharness_default", "ifharness_ifeval", "ifharness_ifbench"}
    assert all(n.startswith(plugin.TASK_PREFIX) for n in ours)
    # nothing lm-eval knows by itself changes when the include path is added
    plain = TaskManager()
    assert set(tm.task_index) - set(plain.task_index) == ours
    for name in ("ifeval", "leaderboard_ifeval"):
        if name in plain.task_index:
            assert tm.task_index[name].yaml_path == plain.task_index[name].yaml_path


def _run_lmeval(
    task: str, limit: int, out: Path, metadata: dict | None = None
) -> tuple[dict, Path]:
    env = {**os.environ, **SUBPROCESS_ENV}
    include = subprocess.run(
        [sys.executable, "-m", "ifharness.cli", "lmeval-path"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={embedded_model_or_skip()},dtype=float32",
        "--tasks",
        task,
        "--include_path",
        include,
        "--limit",
        str(limit),
        "--log_samples",
        "--output_path",
        str(out),
        "--apply_chat_template",
        "--gen_kwargs",
        "max_gen_toks=64",
        "--device",
        "cpu",
        "--batch_size",
        str(limit),
    ]
    if metadata:
        cmd += ["--metadata", json.dumps(metadata)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (results,) = out.glob("*/results_*.json")
    (samples,) = out.glob(f"*/samples_{task}_*.jsonl")
    return json.loads(results.read_text())["results"][task], samples


def _rescore(samples: Path, task: str, out: Path, *extra: str) -> dict:
    from ifharness.cli import main

    assert (
        main(["score", "--from-lmeval", str(samples), "--task", task, "--out", str(out), *extra])
        == 0
    )
    assert json.loads((out / "run.json").read_text())["source"] == "lm-eval"
    return json.loads((out / "metrics.json").read_text())


def _assert_same_run(lmeval: dict, ours: dict, n: int) -> None:
    assert lmeval["sample_len"] == n and ours["n_prompts"] == n
    _assert_same(lmeval, ours, ",none")


@pytest.mark.slow
@needs_lmeval
def test_lmeval_default_equals_rescore(tmp_path):
    lmeval, samples = _run_lmeval("ifharness_default", 4, tmp_path / "lm")
    ours = _rescore(samples, "ifharness_default", tmp_path / "run")
    _assert_same_run(lmeval, ours, 4)


@pytest.mark.slow
@needs_lmeval
def test_lmeval_ifeval_local_data_equals_rescore(tmp_path):
    data = shared("ifeval/input_data.jsonl")  # ../shared/data/ifeval/input_data.jsonl
    lmeval, samples = _run_lmeval(
        "ifharness_ifeval", 3, tmp_path / "lm", metadata={"data": str(data)}
    )
    docs = [json.loads(x)["doc"] for x in samples.read_text().splitlines()]
    assert docs[0]["data"] == str(data) and docs[0]["key"] == 1000
    # from the task's data (as loaded here), then from the logged docs alone
    ours = _rescore(samples, "ifeval", tmp_path / "run", "--data", str(data))
    _assert_same_run(lmeval, ours, 3)
    from_docs = _rescore(samples, "ifeval", tmp_path / "run2")
    assert {m: from_docs[m] for m in BASE_METRICS} == {m: ours[m] for m in BASE_METRICS}
