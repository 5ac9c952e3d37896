"""End to end on the embedded SmolLM2: generate one set in every rendering, run prose and
pseudo-code, compare them sample by sample, and look at the reports in a real browser.

This is the issue's "does this model follow pseudo-code better than prose?" as users type it:
``ifharness generate compose`` → ``ifharness run`` twice → ``ifharness compare`` →
``ifharness report``. Answers are kept short (``--max-tokens``) so two CPU runs of 24 prompts
stay within a few minutes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.browser import screenshot, screenshot_dir
from tests.support.models import embedded_model_or_skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (make install installs it)",
    ),
]

N = 24
NAME = "e2e"


def ifharness(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "ifharness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert r.returncode == 0, f"ifharness {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}"
    return r


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_prose_vs_pseudocode_on_one_generated_set(tmp_path: Path) -> None:
    embedded_model_or_skip()
    sets = tmp_path / "sets"
    ifharness(
        "generate", "compose", "--suite", "ifeval", "--n", str(N), "--seed", "0",
        "--rendering", "all", "--out", str(sets), "--name", NAME,
    )  # fmt: skip
    specs = {
        r: yaml.safe_load((sets / f"{NAME}-{r}.yaml").read_text())
        for r in ("prose", "pseudocode", "json")
    }
    set_ids = {s["generated"]["set_id"] for s in specs.values()}
    assert len(set_ids) == 1, set_ids
    (set_id,) = set_ids
    data = {r: rows(sets / f"{NAME}-{r}.jsonl") for r in specs}
    same = [[(x["key"], x["instruction_id_list"], x["kwargs"]) for x in data[r]] for r in data]
    assert len(data["prose"]) == N and same[0] == same[1] == same[2]
    assert {x["rendering"] for x in data["pseudocode"]} == {"pseudocode"}
    assert all("```python" in x["prompt"] for x in data["pseudocode"])

    runs = {}
    for r in ("prose", "pseudocode"):
        out = tmp_path / f"run-{r}"
        ifharness(
            "run", "--task", str(sets / f"{NAME}-{r}.yaml"), "--max-tokens", "96", "--out", str(out)
        )
        info = json.loads((out / "run.json").read_text())
        assert info["status"] == "complete" and info["n_samples"] == N
        assert info["generated"]["set_id"] == set_id and info["generated"]["rendering"] == r
        runs[r] = out

    cmp_json = tmp_path / "compare.json"
    text = ifharness(
        "compare", str(runs["prose"]), str(runs["pseudocode"]), "--json", str(cmp_json)
    ).stdout
    assert f"(prose vs pseudocode, set {set_id})" in text
    assert f"{N} prompts, {N} paired rows" in text
    assert "mcnemar_exact" in text and "passed only by A" in text
    result = json.loads(cmp_json.read_text())
    assert result["paired"]["rows"] == N and result["paired"]["only_a"] == 0
    assert result["metrics"]["prompt_level_strict_acc"]["test"] == "mcnemar_exact"

    shots = screenshot_dir(tmp_path)
    for r, out in runs.items():
        ifharness("report", str(out))
        html = out / "report.html"
        assert html.stat().st_size > 0
        png = shots / f"generate-e2e-{r}.png"
        width, height = screenshot(html, png)
        assert png.stat().st_size > 0 and width > 0 and height > 0
