"""report.html: complete, filterable, and model text shown as text (checked in Chromium)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

import ifharness
from ifharness.cli import main
from ifharness.report import write_report
from ifharness.results import write_score_run
from tests.support.browser import dump_dom, screenshot, screenshot_dir
from tests.support.synthetic import make_rows, write_run

SCRIPT = "<script>document.title='PWNED'</script>"
IMG = "<img src=x onerror=\"document.body.appendChild(document.createElement('xss-marker'))\">"
PAYLOAD = f"Dear landlord {SCRIPT} the faucet {IMG} drips"


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory) -> Path:
    """A run folder as `ifharness run` writes it: completions with hostile text."""
    task = ifharness.load_task("default").limit(6)
    keys = [s.key for s in task.samples]
    texts = {
        keys[0]: PAYLOAD,
        keys[1]: "a short answer without commas",
        keys[2]: f"</pre></section>{SCRIPT}",
        keys[3]: "ok",
        keys[4]: "",
        keys[5]: IMG,
    }
    result = ifharness.score(task, texts)
    out = tmp_path_factory.mktemp("run") / "gen"
    write_score_run(out, result)
    run = json.loads((out / "run.json").read_text())
    run.update(
        kind="run",
        model={"name": f"evil{SCRIPT}-model"},
        sampling={"temperature": 0.0, "max_tokens": 512},
        chat_template_sha256="abc123",
    )
    (out / "run.json").write_text(json.dumps(run))
    comps = [
        {
            "key": k,
            "sample": 0,
            "response": texts[k],
            "reasoning": f"thinking {IMG}" if i == 0 else None,
            "finish_reason": "length" if i == 3 else "stop",
            "n_tokens": None,
        }
        for i, k in enumerate(keys)
    ]
    (out / "completions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in comps))
    return out


def test_report_escapes_all_model_text(generated_run):
    path = write_report(generated_run)
    assert path == generated_run / "report.html"
    page = path.read_text(encoding="utf-8")
    assert SCRIPT not in page and IMG not in page and "<xss-marker" not in page
    assert html.escape(PAYLOAD) in page
    assert html.escape(f"thinking {IMG}") in page  # the reasoning, escaped
    assert html.escape(f"evil{SCRIPT}-model") in page  # run.json text too
    # every sample, prompts from the task, constraint kwargs, per-constraint table
    assert page.count('<section class="sample"') == 6
    task = ifharness.load_task("default")
    assert html.escape(task.samples[0].prompt) in page
    assert "finish: length" in page and "punctuation:no_comma" in page
    assert page.count("<script>") == 1  # only the report's own


def test_report_in_chromium_shows_script_as_text(generated_run, tmp_path):
    path = write_report(generated_run)
    dom = dump_dom(path)
    assert 'data-ready="1"' in dom, "the report's own script did not run"
    title = re.search(r"<title>(.*?)</title>", dom, re.DOTALL).group(1)
    # the title holds the model name as text; the script would have replaced it by PWNED
    assert html.unescape(title) == f"ifharness report · default · evil{SCRIPT}-model"
    assert "<xss-marker" not in dom
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in dom
    assert 'data-shown="6"' in dom


def test_report_filters_in_chromium(generated_run):
    path = write_report(generated_run)
    shown = re.compile(r'data-shown="(\d+)"')
    fails = dump_dom(path, "verdict=strict-fail")
    n_fail = sum(
        'data-strict="fail"' in s for s in re.findall(r'<section class="sample"[^>]*>', fails)
    )
    assert int(shown.search(fails).group(1)) == n_fail > 0
    only = dump_dom(path, "constraint=punctuation:no_comma")
    expected = sum(
        'data-c="punctuation:no_comma"' in s.split("</section>")[0]
        for s in only.split('<section class="sample"')[1:]
    )
    assert 0 < int(shown.search(only).group(1)) == expected < 6


def test_sentinels_detect_a_real_injection(tmp_path):
    """Positive control: the same payload, unescaped, does run and is seen by the checks."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!DOCTYPE html><html><head><title>ok</title></head><body>{PAYLOAD}</body></html>",
        encoding="utf-8",
    )
    dom = dump_dom(bad)
    assert "<title>PWNED</title>" in dom and "<xss-marker" in dom


def test_report_screenshot(generated_run, tmp_path):
    path = write_report(generated_run)
    png = screenshot_dir(tmp_path) / "report.png"
    width, height = screenshot(path, png, "1400,2200")
    assert (width, height) == (1400, 2200)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one


def test_scored_run_report_reads_the_response_file(gpt4_result, gpt4_path, tmp_path):
    out = tmp_path / "gpt4"
    write_score_run(out, gpt4_result, gpt4_path)
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<section class="sample"') == 541
    first = json.loads(gpt4_path.read_text(encoding="utf-8").splitlines()[0])
    assert html.escape(first["response"]) in page
    assert "answer not available" in page  # key 2785 has no answer


def test_large_run_report_shows_the_first_rows_and_all_metrics(
    gpt4_result, gpt4_path, tmp_path, monkeypatch
):
    """Past REPORT_ROWS prompts the page holds the first rows (their prompts and answers
    only are read) and the metrics of all rows, from metrics.json."""
    from ifharness import report, rundir

    out = tmp_path / "gpt4"
    write_score_run(out, gpt4_result, gpt4_path)
    full = (write_report(out, tmp_path / "full.html")).read_text(encoding="utf-8")
    monkeypatch.setattr(report, "REPORT_ROWS", 40)
    read: list[int] = []
    real = rundir.RunFolder.read_completions

    def counting(self, only=None):
        rows = real(self, only)
        read.append(len(rows))
        return rows

    monkeypatch.setattr(rundir.RunFolder, "read_completions", counting)
    page = write_report(out).read_text(encoding="utf-8")
    assert page.count('<section class="sample"') == 40
    assert "the first 40 of 541 prompts are shown" in page
    assert read == [40]
    metrics_part = page.split("<h2>Provenance</h2>")[0].split("<h2>Metrics</h2>")[1]
    assert metrics_part == full.split("<h2>Provenance</h2>")[0].split("<h2>Metrics</h2>")[1]
    per_constraint = page.split("<h2>Per constraint</h2>")[1].split("<h2>Samples</h2>")[0]
    assert per_constraint == full.split("<h2>Per constraint</h2>")[1].split("<h2>Samples</h2>")[0]


def test_large_run_without_metrics_file_is_summarized_from_every_row(
    gpt4_result, gpt4_path, tmp_path, monkeypatch
):
    """No metrics.json to take the numbers from: every row is read, not the first ones."""
    from ifharness import report

    out = tmp_path / "gpt4"
    write_score_run(out, gpt4_result, gpt4_path)
    full = write_report(out, tmp_path / "full.html").read_text(encoding="utf-8")
    (out / "metrics.json").unlink()
    monkeypatch.setattr(report, "REPORT_ROWS", 40)
    page = write_report(out).read_text(encoding="utf-8")
    assert page.count('<section class="sample"') == 541
    assert "prompts are shown below" not in page
    head = page.split("<h2>Provenance</h2>")[0].split("<h2>Metrics</h2>")[1]
    assert head == full.split("<h2>Provenance</h2>")[0].split("<h2>Metrics</h2>")[1]


def test_report_without_task_or_answers_still_renders(tmp_path):
    run = write_run(tmp_path / "r", make_rows(12, seed=1, samples=2), task="no-such-task")
    path = write_report(run, tmp_path / "elsewhere.html")
    page = path.read_text(encoding="utf-8")
    assert "prompts and constraint kwargs are not shown" in page
    assert "answers are not shown" in page
    assert page.count('<section class="sample"') == 24  # every (prompt, sample)
    assert "key 1000 · sample 1" in page and "12 prompts" in page


def test_report_cli_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
