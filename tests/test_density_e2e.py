"""End to end: a small density sweep on the embedded SmolLM2, its report in headless Chromium.

`ifharness generate density` (levels 1, 5, 20) writes the set, `ifharness run` answers it with
SmolLM2-135M-Instruct on vLLM's CPU build (short answers: this checks the pipeline, not the
model), and the run folder's report.html must show the accuracy-vs-density and primacy curves
in a real browser.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.support.browser import dump_dom, screenshot, screenshot_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (make install installs it)",
    ),
]


def test_density_sweep_on_smollm2(tmp_path):
    pytest.importorskip("wordfreq", reason="pip install 'ifharness[generate]'")
    pytest.importorskip("english_words", reason="pip install 'ifharness[generate]'")
    from ifharness.generate.density import generate_density

    (task_yaml,) = generate_density([1, 5, 20], [0], 0, "prose", tmp_path / "set", "density")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ifharness.cli", "run", "--task", str(task_yaml)]
    cmd += ["--max-tokens", "160", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert r.returncode == 0, r.stderr[-4000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["n_samples"] == 3
    assert run["generated"]["family"] == "density"
    assert run["generated"]["vocabulary"]["package"] == "wordfreq"
    block = json.loads((out / "metrics.json").read_text())["density"]
    assert [lv["level"] for lv in block["levels"]] == [1, 5, 20]
    for lv in block["levels"]:
        e = lv["errors"]
        assert lv["n_instructions"] == lv["level"]
        assert e["missed"] == lv["level"] - lv["followed"] == e["omitted"] + e["modified"]
        assert sum(d["n"] for d in lv["primacy"]) == lv["level"]
    report = out / "report.html"
    dom = dump_dom(report)
    assert 'data-chart="density"' in dom and 'data-chart="primacy"' in dom
    assert "<polyline" in dom  # the accuracy curve joins the three levels
    png = screenshot_dir(tmp_path) / "density-report.png"
    width, height = screenshot(report, png)
    assert width > 0 and height > 0 and png.stat().st_size > 10_000
