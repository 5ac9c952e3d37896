"""The hf runner: transformers generate on CPU, end to end on the embedded SmolLM2."""

from __future__ import annotations

import importlib.util
import json

import pytest

from ifharness.cli import main
from tests.support.models import embedded_model_or_skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("transformers") is None
        or importlib.util.find_spec("torch") is None,
        reason="transformers/torch are not installed",
    ),
]


@pytest.fixture(scope="module")
def smollm2():
    return embedded_model_or_skip()


def test_hf_run_on_smollm2_writes_the_usual_run_folder(tmp_path, smollm2, capsys):
    out = tmp_path / "run"
    args = [
        "run",
        "--backend",
        "hf",
        "--limit",
        "2",
        "--max-tokens",
        "12",
        "--out",
        str(out),
        "--batch-size",
        "2",
    ]
    assert main(args) == 0, capsys.readouterr().err
    for name in ("run.json", "completions.jsonl", "verdicts.jsonl", "metrics.json"):
        assert (out / name).is_file(), name
    assert not (out / "failed.jsonl").exists()
    rows = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and len({r["key"] for r in rows}) == 2
    for r in rows:
        assert r["response"].strip() and 0 < r["n_tokens"] <= 12
        assert r["finish_reason"] in ("stop", "length")
        assert "<|im_start|>" not in r["response"] and "<|im_end|>" not in r["response"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["backend"]["name"] == "hf"
    assert run["engine"]["backend"] == "hf" and run["engine"]["device"] == "cpu"
    assert run["engine"]["padding_side"] == "left"
    assert run["identity"]["backend"] == "hf"
    assert run["engine"]["engine_chat_template_sha256"] == run["chat_template_sha256"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["missing"] == []


def test_hf_left_padding_stop_strings_and_sampling(smollm2):
    from ifharness.runners.base import Request, SamplingSettings
    from ifharness.runners.hf import HFOptions, HFRunner

    runner = HFRunner(HFOptions(model=str(smollm2), batch_size=2))
    runner.start()
    try:
        # batched with left padding gives the answers of one prompt at a time (greedy)
        prompts = ["Say hello.", "Write one sentence about the sea and the sky at night."]
        reqs = [
            Request(k, [{"role": "user", "content": p}], SamplingSettings(max_tokens=6))
            for k, p in enumerate(prompts)
        ]
        batched = [(c.key, c.text) for chunk in runner.generate(reqs, 4) for c in chunk]
        runner.options.batch_size = 1
        single = [(c.key, c.text) for chunk in runner.generate(reqs, 4) for c in chunk]
        runner.options.batch_size = 2
        assert batched == single and len(batched) == 2

        msgs = [{"role": "user", "content": "List three fruits, one per line."}]
        greedy = SamplingSettings(max_tokens=12, stop=("\n",))
        got = [c for chunk in runner.generate([Request(1, msgs, greedy)], 4) for c in chunk]
        assert len(got) == 1 and "\n" not in got[0].text and got[0].finish_reason == "stop"
        sampled = SamplingSettings(max_tokens=4, temperature=0.9, top_p=0.95, n=2, seed=3)
        reqs = [Request(k, msgs, sampled) for k in (1, 2)]
        first = [(c.key, c.index, c.text) for chunk in runner.generate(reqs, 4) for c in chunk]
        again = [(c.key, c.index, c.text) for chunk in runner.generate(reqs, 4) for c in chunk]
        assert [(k, i) for k, i, _ in first] == [(1, 0), (1, 1), (2, 0), (2, 1)]
        assert first == again  # seeded per batch
    finally:
        runner.close()
