"""``ifharness generate compose``: seeded, conflict-free, covering, reproducible, loadable."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest
import yaml

import ifharness
from ifharness.cli import main
from ifharness.errors import IfharnessError
from ifharness.generate import GENERATOR_VERSION
from ifharness.generate.compose import (
    DENSITY_TASK_ID,
    base_tasks,
    compose,
    compose_tasks,
    draw_samples,
    generate_compose,
    suite_constraints,
)
from ifharness.generate.io import set_id
from ifharness.verifiers import load_all
from ifharness.verifiers.conflicts import ConflictMapError, conflict_map
from ifharness.verifiers.draws import DrawContext, common_words, draw_kwargs
from ifharness.verifiers.ifeval.startend import END_PHRASES
from ifharness.verifiers.ifevalg.conflicts import symmetric_table

COMPOSE_SUITES = ("ifeval", "ifbench", "ifevalg")
ALL_SUITES = ("ifeval", "ifbench", "ifevalg", "ifscale")


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --- draws ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_every_constraint_draws_kwargs_it_accepts(suite):
    """What ``draw=`` declares must bind, for every registered constraint (contract)."""
    constraints = [c for c in load_all() if c.suite == suite]
    assert constraints
    rng = random.Random(7)
    tasks = compose_tasks()
    for c in constraints:
        for i in range(60):
            ctx = DrawContext(prompt=tasks[i % len(tasks)].task)
            kwargs = draw_kwargs(c, rng, ctx)
            assert set(kwargs) <= set(c.kwargs_model.model_fields), c.id
            c.bind(kwargs)  # raises KwargsError on a bad draw
            json.dumps(kwargs)  # stored in JSONL as it is


def test_drawn_words_are_distinct_within_a_sample_and_never_the_tasks_own():
    c_exist = ifharness.verifiers.get("keywords:existence", "ifeval")
    c_forbid = ifharness.verifiers.get("keywords:forbidden_words", "ifeval")
    task = "Write a blog post about a garden picnic by the river in autumn."
    for s in range(300):
        rng = random.Random(s)
        ctx = DrawContext(prompt=task)
        a = draw_kwargs(c_exist, rng, ctx)["keywords"]
        b = draw_kwargs(c_forbid, rng, ctx)["forbidden_words"]
        assert len(set(a) | set(b)) == len(a) + len(b)
        assert not {"garden", "picnic", "river", "autumn"} & (set(a) | set(b))


def test_common_words_plain_lower_case_and_none_inside_another():
    words = common_words()
    assert len(words) >= 300 and len(set(words)) == len(words)
    assert all(re.fullmatch(r"[a-z]{4,}", w) for w in words)
    assert not [(a, b) for a in words for b in words if a != b and a in b]


def test_end_phrases_fit_no_comma_and_forbidden_words():
    words = set(common_words())
    for phrase in END_PHRASES:
        assert "," not in phrase
        assert not words & set(re.findall(r"[a-z]+", phrase.lower())), phrase


def test_nth_paragraph_never_past_the_paragraph_count():
    c = ifharness.verifiers.get("length_constraints:nth_paragraph_first_word", "ifeval")
    rng = random.Random(0)
    for _ in range(500):
        kw = draw_kwargs(c, rng, "Write an essay.")
        assert 1 <= kw["nth_paragraph"] <= kw["num_paragraphs"]
        assert c.bind(kw)["nth_paragraph"] == kw["nth_paragraph"]  # no set-up redraw


# --- conflict maps ---------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_conflict_map_covers_the_suite_and_is_symmetric(suite):
    table = conflict_map(suite)
    assert set(table) == {c.id for c in load_all() if c.suite == suite}
    assert all(a in table[a] for a in table)
    assert all(a in table[b] for a, listed in table.items() for b in listed)


def test_conflict_map_error_names_the_missing_file():
    with pytest.raises(ConflictMapError, match=r"verifiers/nosuch/conflicts.json"):
        conflict_map("nosuch")


def test_ifeval_map_extends_lm_evals():
    table = conflict_map("ifeval")
    reference = symmetric_table()  # IFEvalG = lm-eval's map for the 25 ids
    for a in table:
        assert reference[a] & set(table) <= table[a], a
    added = {
        ("detectable_format:multiple_sections", "change_case:english_capital"),
        ("detectable_format:multiple_sections", "change_case:english_lowercase"),
        ("combination:repeat_prompt", "punctuation:no_comma"),
        ("language:response_language", "keywords:letter_frequency"),
        ("language:response_language", "length_constraints:nth_paragraph_first_word"),
    }
    for a, b in added:
        assert b in table[a] and b not in reference[a]
    extra = {frozenset((a, b)) for a in table for b in table[a] - reference[a] if a != b}
    assert extra == {frozenset(p) for p in added}
    # Kept compatible on purpose: the end check strips the wrapping quotes.
    assert "startend:end_checker" not in table["startend:quotation"]


def test_added_conflicts_really_contradict():
    """Why two additions are needed: no answer passes both checks with drawn kwargs."""
    check = ifharness.verifiers.check
    lower = "section 1\nfirst part\nsection 2\nsecond part"
    assert check("change_case:english_lowercase", lower, suite="ifeval")
    assert not check(
        "detectable_format:multiple_sections",
        lower,
        suite="ifeval",
        section_spliter="Section",
        num_sections=2,
    )
    task = "Write an email to a landlord, politely."
    assert check("combination:repeat_prompt", task + " Dear ...", prompt_to_repeat=task)
    assert not check("punctuation:no_comma", task + " Dear ...")


def test_ifevalg_inherits_ifevals_conflicts_between_shared_checkers():
    table = conflict_map("ifevalg")
    assert "punctuation:no_comma" in table["combination:repeat_prompt"]
    assert "punctuation:no_comma" not in symmetric_table()["combination:repeat_prompt"]
    assert symmetric_table()["copy:copy"] <= table["copy:copy"]  # the reference's own pairs


# --- base tasks ------------------------------------------------------------------------------


def test_base_tasks_authored_varied_and_unique():
    tasks = compose_tasks()
    assert len(tasks) >= 100
    assert len({t.id for t in base_tasks()}) == len(base_tasks())
    assert len({t.task for t in tasks}) == len(tasks)
    assert len({t.kind for t in tasks}) >= 10
    assert DENSITY_TASK_ID in {t.id for t in base_tasks()}
    assert DENSITY_TASK_ID not in {t.id for t in tasks}


# --- composing -------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", COMPOSE_SUITES)
def test_no_conflicting_pair_in_ten_thousand_samples(suite):
    table = conflict_map(suite)
    drawn = draw_samples(suite, 10_000, 1, 5, seed=3)
    sizes = set()
    for d in drawn:
        ids = [c.id for c, _ in d.instructions]
        sizes.add(len(ids))
        assert len(set(ids)) == len(ids), d.key
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                assert b not in table[a], (d.key, a, b)
    assert max(sizes) >= 4 and min(sizes) == 1


@pytest.mark.parametrize("suite", COMPOSE_SUITES)
def test_every_id_of_the_suite_appears_in_a_default_size_set(suite):
    rows = compose(suite, seed=11)
    assert len(rows) == 200
    seen = {cid for r in rows for cid in r["instruction_id_list"]}
    assert seen == {c.id for c in suite_constraints(suite)}


def test_sample_i_does_not_depend_on_n():
    def content(rows):
        return [{k: v for k, v in r.items() if k != "generator"} for r in rows]

    assert content(compose("ifeval", n=40, seed=5))[:15] == content(compose("ifeval", n=15, seed=5))


def test_constraint_counts_and_rendering_recorded():
    rows = compose("ifeval", n=300, min_constraints=2, max_constraints=4, seed=2)
    counts = {len(r["instruction_id_list"]) for r in rows}
    assert counts <= {1, 2, 3, 4} and {2, 3, 4} <= counts
    # Only a lead that bars nearly everything leaves a sample short of its minimum.
    short = {r["instruction_id_list"][0] for r in rows if len(r["instruction_id_list"]) < 2}
    assert short <= {"detectable_format:constrained_response"}
    for r in rows:
        assert r["rendering"] == "prose"
        assert r["generator"] == {"version": GENERATOR_VERSION, "seed": 2, "set_id": set_id(rows)}
        assert len(r["kwargs"]) == len(r["instruction_id_list"])


def test_renderings_share_keys_constraints_and_set_id():
    by = {r: compose("ifeval", n=20, seed=1, rendering=r) for r in ("prose", "pseudocode", "json")}
    ids = {
        r: [(x["key"], x["instruction_id_list"], x["kwargs"]) for x in rows]
        for r, rows in by.items()
    }
    assert ids["prose"] == ids["pseudocode"] == ids["json"]
    sids = {rows[0]["generator"]["set_id"] for rows in by.values()}
    assert len(sids) == 1
    assert by["prose"][0]["prompt"] != by["pseudocode"][0]["prompt"]


def test_bad_arguments_are_refused_with_the_flag():
    with pytest.raises(IfharnessError, match="--min-constraints"):
        compose("ifeval", n=5, min_constraints=3, max_constraints=2)
    with pytest.raises(IfharnessError, match="--rendering"):
        compose("ifeval", n=5, rendering="yaml")
    with pytest.raises(Exception, match="nosuch"):
        compose("nosuch", n=5)


# --- files: determinism, provenance, loading and scoring ----------------------------------


def test_same_arguments_same_bytes_other_seed_other_set(tmp_path):
    a = generate_compose("ifeval", n=60, seed=4, rendering="all", out=tmp_path / "a", name="g")
    generate_compose("ifeval", n=60, seed=4, rendering="all", out=tmp_path / "b", name="g")
    generate_compose("ifeval", n=60, seed=5, rendering="all", out=tmp_path / "c", name="g")
    assert [p.name for p in a] == ["g-prose.yaml", "g-pseudocode.yaml", "g-json.yaml"]
    ha, hb, hc = (_hashes(tmp_path / x) for x in "abc")
    assert len(ha) == 6 and ha == hb
    assert all(ha[k] != hc[k] for k in ha)
    text = (tmp_path / "a" / "g-prose.jsonl").read_bytes()
    assert b"\r\n" not in text and text.endswith(b"\n")


def test_provenance_block_regenerates_the_files_exactly(tmp_path):
    paths = generate_compose("ifbench", n=30, seed=9, rendering="all", out=tmp_path / "a")
    for path in paths:
        spec = yaml.safe_load(path.read_text())
        gen = spec["generated"]
        assert gen["generator"] == "ifharness" and gen["version"] == GENERATOR_VERSION
        assert gen["family"] == "compose" and gen["seed"] == 9
        assert gen["rendering"] == gen["args"]["rendering"] == path.stem.rsplit("-", 1)[1]
        again = generate_compose(**gen["args"], out=tmp_path / "b")
        assert [p.name for p in again] == [path.name]
        for suffix in (".yaml", ".jsonl"):
            assert (tmp_path / "b" / (path.stem + suffix)).read_bytes() == path.with_suffix(
                suffix
            ).read_bytes()
        rows = [json.loads(x) for x in path.with_suffix(".jsonl").read_text().splitlines()]
        assert all(r["generator"]["set_id"] == gen["set_id"] for r in rows)
    assert len({yaml.safe_load(p.read_text())["generated"]["set_id"] for p in paths}) == 1


def test_written_task_loads_and_scores(tmp_path):
    (path,) = generate_compose("ifeval", n=40, seed=0, out=tmp_path, name="gen")
    task = ifharness.load_task(str(path))
    assert len(task.samples) == 40
    assert task.spec.generated is not None and task.spec.generated.family == "compose"
    empty = ifharness.score(task, {str(s.key): "" for s in task.samples}, n_resamples=0)
    assert empty.metrics["prompt_level_strict_acc"] == 0.0 and not empty.metrics["missing"]
    # A planted answer for the json-only samples: they pass, the rest do not.
    answers = {
        str(s.key): '{"a": 1}'
        if [i.id for i in s.instructions] == ["detectable_format:json_format"]
        else ""
        for s in task.samples
    }
    planted = [k for k, v in answers.items() if v]
    result = ifharness.score(task, answers, n_resamples=0)
    assert result.metrics["prompt_level_strict_acc"] == pytest.approx(len(planted) / 40)


def test_cli_compose_then_score(tmp_path, capsys):
    out = tmp_path / "gen"
    command = ["generate", "compose", "--suite", "ifeval", "--n", "25", "--seed", "3"]
    assert main([*command, "--rendering", "all", "--out", str(out), "--name", "set"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / f"set-{r}.yaml") for r in ("prose", "pseudocode", "json")]
    rows = [json.loads(x) for x in (out / "set-json.jsonl").read_text().splitlines()]
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        "".join(json.dumps({"key": r["key"], "response": "No."}) + "\n" for r in rows)
    )
    set_of = yaml.safe_load(Path(printed[2]).read_text())["generated"]["set_id"]
    for use in (
        ["score", "--task", printed[2], "--responses", str(responses)],
        ["run", "--task", printed[2], "--backend", "replay", "--responses", str(responses)],
    ):
        folder = tmp_path / use[0]
        assert main([*use, "--out", str(folder)]) == 0
        run = json.loads((folder / "run.json").read_text())
        assert run["n_samples"] == 25
        assert run["generated"]["set_id"] == set_of and run["generated"]["rendering"] == "json"


def test_cli_refuses_a_bad_count(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "compose", "--n", "0", "--out", "x"])
    assert "must be at least 1" in capsys.readouterr().err


def test_same_bytes_in_another_process_with_another_hash_seed(tmp_path):
    """Set iteration order varies with PYTHONHASHSEED; nothing drawn may depend on it."""
    import os
    import subprocess
    import sys

    generate_compose("ifevalg", n=40, seed=2, out=tmp_path / "here", name="g")
    code = (
        "from ifharness.generate.compose import generate_compose; "
        f"generate_compose('ifevalg', n=40, seed=2, out={str(tmp_path / 'there')!r}, name='g')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert _hashes(tmp_path / "here") == _hashes(tmp_path / "there")
