"""A generated task (or any task YAML) under lm-eval with no YAML written by hand.

``ifharness lmeval-task TASK --out DIR`` and ``ifharness generate ...`` (into ``<out>/lmeval/``)
write ``ifharness_<name>.yaml``; lm-eval's own ``TaskManager`` must find it, include our
template, and hand out the generated samples as docs with the task's generation settings. The
slow test runs the real ``lm_eval`` CLI on a generated set with the tiny random Llama and checks
that ``ifharness score --from-lmeval`` on its samples file gives lm-eval's numbers exactly.
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
import yaml

from ifharness.cli import main
from ifharness.errors import DataError
from ifharness.lmeval import hooks
from ifharness.lmeval.export import lmeval_task_name, write_lmeval_task

needs_lmeval = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None,
    reason="lm-eval is not installed (pip install -e '.[dev]')",
)
# lm-eval's metric name -> ours in metrics.json (as tests/test_lmeval_plugin.py compares them)
OURS = {
    "prompt_level_strict_acc": "prompt_level_strict_acc",
    "inst_level_strict_acc": "inst_level_strict_acc",
    "prompt_level_loose_acc": "prompt_level_loose_acc",
    "inst_level_loose_acc": "inst_level_loose_acc",
    "prompt_level_strict_acc_se": "prompt_level_strict_acc_stderr",
    "prompt_level_loose_acc_se": "prompt_level_loose_acc_stderr",
    "inst_level_strict_acc_clustered_se": "inst_level_strict_acc_stderr",
    "inst_level_loose_acc_clustered_se": "inst_level_loose_acc_stderr",
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _generate(out: Path, capsys, n: int = 8, name: str = "gen") -> Path:
    """``ifharness generate compose`` as a user types it; the task YAML it printed."""
    cmd = ["generate", "compose", "--suite", "ifeval", "--n", str(n), "--seed", "1"]
    assert main([*cmd, "--out", str(out), "--name", name]) == 0
    captured = capsys.readouterr()
    (printed,) = captured.out.split()  # stdout stays the task paths only
    assert f"--include_path {out / 'lmeval'} --tasks ifharness_{name}" in captured.err
    return Path(printed)


def _load(include: Path, name: str):
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(include), include_defaults=False)
    assert name in tm.all_tasks
    return tm.load([name])["tasks"][name]


def _fake_log(path: Path, docs: list[dict], answers: list[str]) -> Path:
    lines = [
        {"doc_id": i, "doc": d, "target": "0", "resps": [[a]], "filtered_resps": [a]}
        for i, (d, a) in enumerate(zip(docs, answers))
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- fast


@needs_lmeval
def test_generated_task_loads_in_lmeval_with_its_samples_as_docs(tmp_path, capsys):
    spec_path = _generate(tmp_path / "set", capsys)
    written = tmp_path / "set" / "lmeval" / "ifharness_gen.yaml"
    assert written.is_file()
    task = _load(written.parent, "ifharness_gen")
    docs = list(task.test_docs())
    rows = _rows(tmp_path / "set" / "gen.jsonl")
    assert [d["key"] for d in docs] == [r["key"] for r in rows]
    assert [d["prompt"] for d in docs] == [r["prompt"] for r in rows]
    assert [d["instruction_id_list"] for d in docs] == [r["instruction_id_list"] for r in rows]
    assert [[k for _, k in hooks.bound_instructions(d)] for d in docs] == [
        r["kwargs"] for r in rows
    ]
    assert {d["task"] for d in docs} == {"gen"}
    assert {d["task_file"] for d in docs} == {str(spec_path.resolve())}
    assert docs == hooks.task_docs(str(spec_path))
    # the task's generation: settings, as lm-eval will pass them to the model
    spec = yaml.safe_load(spec_path.read_text())
    want = spec.get("generation", {}).get("max_tokens", 1280)
    gen = task.config.generation_kwargs
    assert gen["max_gen_toks"] == want and gen["until"] == [] and gen["do_sample"] is False
    # the template's hooks and metric list, not a copy of them
    assert [m["metric"] for m in task.config.metric_list] == [
        m["metric"] for m in hooks.metric_list()
    ]
    assert task.process_results(docs[0], [""]) == hooks.process_results(docs[0], [""])
    # the generated set's own folder works as the include path too (its task YAMLs are not
    # lm-eval tasks and are passed over)
    assert len(list(_load(tmp_path / "set", "ifharness_gen").test_docs())) == len(rows)


def test_lmeval_task_cli_for_a_user_yaml(tmp_path, monkeypatch, capsys):
    """Relative paths become absolute; generation settings map to lm-eval's names; a task
    name lm-eval would not take is made one it does."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "d.jsonl").write_text(
        json.dumps({"key": 1, "prompt": "Say hi.", "instruction_id_list": [], "kwargs": []}) + "\n"
    )
    (tmp_path / "mine" / "my task.v2.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "my task.v2",
                "suite": "ifeval",
                "source": {"file": "d.jsonl"},
                "generation": {"max_tokens": 77, "temperature": 0.7, "top_p": 0.9, "stop": ["##"]},
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    assert main(["lmeval-task", "mine/my task.v2.yaml", "--out", "lm"]) == 0
    out = capsys.readouterr()
    path = tmp_path / "lm" / "ifharness_my_task_v2.yaml"
    assert out.out.strip() == str(Path("lm") / "ifharness_my_task_v2.yaml")
    assert "--tasks ifharness_my_task_v2" in out.err
    cfg = yaml.safe_load(path.read_text())
    assert cfg["task"] == "ifharness_my_task_v2" == lmeval_task_name("my task.v2")
    assert cfg["generation_kwargs"] == {
        "until": ["##"],
        "do_sample": True,
        "temperature": 0.7,
        "max_gen_toks": 77,
        "top_p": 0.9,
    }
    assert cfg["metadata"]["ifharness_task"] == str(tmp_path / "mine" / "my task.v2.yaml")
    template = Path(cfg["include"])
    assert template.is_absolute() and template.name == "_template_yaml" and template.is_file()
    # same inputs, same bytes (no clock in the file)
    first = path.read_bytes()
    write_lmeval_task("mine/my task.v2.yaml", "lm")
    assert path.read_bytes() == first


def test_bundled_task_stays_a_name_and_data_and_name_options(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"key": 1, "prompt": "x", "instruction_id_list": [], "kwargs": []}\n')
    path = write_lmeval_task("ifevalg", tmp_path, name="ifharness_g2", data=data)
    cfg = yaml.safe_load(path.read_text())
    assert path.name == "ifharness_g2.yaml" and cfg["task"] == "ifharness_g2"
    assert cfg["metadata"] == {"version": 1.0, "ifharness_task": "ifevalg", "data": str(data)}
    assert write_lmeval_task("default", tmp_path, name="plain").name == "ifharness_plain.yaml"
    with pytest.raises(DataError, match="letters, digits"):
        write_lmeval_task("default", tmp_path, name="a,b")
    with pytest.raises(DataError, match="no such file"):
        write_lmeval_task("default", tmp_path, data=tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"turns": "multi", "fields": {"messages": "messages"}}, "turns: multi"),
        ({"check": "reasoning"}, "check: reasoning"),
    ],
)
def test_tasks_lmeval_cannot_run_are_refused(tmp_path, extra, message):
    spec = {"name": "x", "suite": "ifeval", "source": {"file": "x.jsonl"}, **extra}
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match=message):
        write_lmeval_task(tmp_path / "x.yaml", tmp_path / "lm")
    assert not (tmp_path / "lm").exists()


def test_score_from_lmeval_finds_a_generated_task_by_its_logged_file(tmp_path, capsys):
    spec_path = _generate(tmp_path / "set", capsys, n=5)
    docs = hooks.task_docs(str(spec_path))
    answers = ["Sure, here.", "", "NO COMMAS HERE", "[x] [y] [z]", "p.s. fine"]
    log = _fake_log(tmp_path / "samples_ifharness_gen_x.jsonl", docs, answers)
    got = {}
    # by the lm-eval task name (found again through the logged task_file), or by the YAML
    for i, task in enumerate([["--task", "ifharness_gen"], ["--task", str(spec_path)]]):
        out = tmp_path / f"run{i}"
        assert main(["score", "--from-lmeval", str(log), *task, "--out", str(out)]) == 0
        run = json.loads((out / "run.json").read_text())
        assert run["source"] == "lm-eval" and run["n_samples"] == 5
        got[i] = json.loads((out / "metrics.json").read_text())
    per_doc = [hooks.process_results(d, [a]) for d, a in zip(docs, answers)]
    for lm_name, ours in OURS.items():
        want = hooks.aggregation(lm_name)([r[lm_name] for r in per_doc])
        for metrics in got.values():
            value = metrics[ours]
            assert (value is None and math.isnan(want)) or value == want, lm_name
    # another task's YAML is refused by name, and a moved task file is said to be missing
    with pytest.raises(DataError, match="logged for task gen, not default"):
        from ifharness.lmeval.rescore import rescore

        rescore(log, "default")
    moved = spec_path.with_name("elsewhere.yaml")
    spec_path.rename(moved)
    with pytest.raises(DataError, match="not here.*--task"):
        rescore(log)
    assert rescore(log, str(moved)).task.name == "gen"
    moved.rename(spec_path)
    assert rescore(log).task.name == "gen"  # Python: no task needed at all


# ----------------------------------------------------------------------------- slow: real lm-eval


@pytest.mark.slow
@needs_lmeval
def test_lmeval_cli_on_a_generated_task_equals_rescore(tmp_path, capsys, tiny_model):
    spec_path = _generate(tmp_path / "set", capsys, n=6)
    task, limit = "ifharness_gen", 3
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable, "-m", "lm_eval",
        "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
        "--tasks", task, "--include_path", str(tmp_path / "set" / "lmeval"),
        "--limit", str(limit), "--log_samples", "--output_path", str(tmp_path / "lm"),
        "--apply_chat_template", "--gen_kwargs", "max_gen_toks=24",
        "--device", "cpu", "--batch_size", str(limit),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (results,) = (tmp_path / "lm").glob("*/results_*.json")
    (samples,) = (tmp_path / "lm").glob(f"*/samples_{task}_*.jsonl")
    lmeval = json.loads(results.read_text())["results"][task]
    logged = _rows(samples)
    assert [x["doc"]["key"] for x in logged] == [
        r["key"] for r in _rows(spec_path.with_suffix(".jsonl"))
    ][:limit]
    assert {x["doc"]["task_file"] for x in logged} == {str(spec_path.resolve())}

    out = tmp_path / "run"
    assert main(["score", "--from-lmeval", str(samples), "--task", task, "--out", str(out)]) == 0
    ours = json.loads((out / "metrics.json").read_text())
    assert lmeval["sample_len"] == limit and ours["n_prompts"] == limit
    for lm_name, our_name in OURS.items():
        value = lmeval[f"{lm_name},none"]
        if isinstance(value, float) and math.isnan(value):
            value = None
        assert value == ours[our_name], lm_name
    run = json.loads((out / "run.json").read_text())
    assert (
        run["generated"]["set_id"] == yaml.safe_load(spec_path.read_text())["generated"]["set_id"]
    )
