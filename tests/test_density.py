"""The density family: IFScale's inclusion rules, the vocabulary, generation and the metrics.

The metric tests build density tasks in memory from made-up keywords (so they need no
vocabulary package) and score planted answers through ``ifharness.score`` and
``ScoreResult.write``, the path `score` and `run` take. The vocabulary and generation tests
need the ``generate`` extra (wordfreq, english-words) and skip with its install line without it.
"""

from __future__ import annotations

import hashlib
import json
import string
import sys
from pathlib import Path

import pytest

import ifharness
from ifharness.leaderboard import collect, to_html
from ifharness.loader import Task
from ifharness.report import write_report
from ifharness.results import write_score_run
from ifharness.schema import Instruction, Message, Sample, TaskSpec
from ifharness.verifiers import Text, get, get_profile
from ifharness.verifiers.ifscale.keywords import classify_miss

ID = "keywords:include_exact"
LEVELS = (2, 10, 20, 50)


def include(text: str, keyword: str, profile: str = "reference") -> bool:
    c = get(ID, "ifscale")
    return c(Text(text, get_profile(profile)), **c.bind({"keyword": keyword}))


# ---------------------------------------------------------------- the two inclusion rules


@pytest.mark.parametrize(
    ("text", "rule_b", "rule_a"),
    [
        ("We thank every customer.", True, True),
        ("Our customers grew.", False, False),  # a plural is another word under both
        ("A customer-driven plan.", True, False),  # the hyphen is a \b boundary, not a space
        ("The customer's view.", True, False),  # so is the apostrophe
        ("**Customer** first", True, True),  # case folds; emphasis is stripped by rule (a)
        ("(customer)", True, True),  # edge punctuation is stripped by rule (a)
        ("'customer'", True, False),  # the single quote is not in rule (a)'s strip set
        ("customercare", False, False),
    ],
)
def test_inclusion_rules_on_the_spec_examples(text, rule_b, rule_a):
    assert include(text, "customer") is rule_b
    assert include(text, "customer", "ifscale-token") is rule_a


def test_token_rule_wildcard_and_markdown_pairs():
    assert include("a _customer_ and __growth__", "growth", "ifscale-token")
    assert include("customized offers", "custom*", "ifscale-token")
    assert not include("our custom", "custom*d", "ifscale-token")


def test_every_miss_form_is_named():
    assert classify_miss("customer", "Our customers grew.") == ("modified", "inflected")
    assert classify_miss("customer", "A customer-driven plan.") == ("modified", "hyphenated")
    assert classify_miss("customer", "The customer's view.") == ("modified", "possessive")
    assert classify_miss("customer", "'customer'") == ("modified", "punctuation")
    assert classify_miss("customer", "Nothing like it here.") == ("omitted", None)
    assert classify_miss("analyze", "We analyzed it.") == ("modified", "inflected")


# ---------------------------------------------------------------- planted answers


def made_up_keywords(n: int) -> list[str]:
    """``n`` five-letter words whose first three letters differ (so no keyword's IFScale
    prefix matches another keyword) and none a substring of another."""
    a = string.ascii_lowercase
    return [f"{a[i // 676 % 26]}{a[i // 26 % 26]}{a[i % 26]}ol" for i in range(n)]


def density_task(levels=LEVELS, seeds=(0, 1), profile: str = "reference") -> Task:
    words = made_up_keywords(sum(levels) * len(seeds))
    samples = []
    for n in levels:
        for s in seeds:
            kws, words = words[:n], words[n:]
            samples.append(
                Sample(
                    key=f"n{n}-s{s}",
                    messages=[Message(role="user", content="Write a report.")],
                    instructions=[Instruction(id=ID, kwargs={"keyword": k}) for k in kws],
                    meta={"level": n, "rendering": "prose"},
                )
            )
    spec = TaskSpec(
        name="density-test",
        suite="ifscale",
        profile=profile,
        source={"file": "density-test.jsonl"},
        metric="inst_level_strict_acc",
        generated={
            "version": "1",
            "family": "density",
            "seed": 0,
            "rendering": "prose",
            "set_id": "0" * 16,
            "args": {"levels": list(levels)},
        },
    )
    return Task(spec, samples, "memory", "0" * 64, get_profile(profile))


def keywords(sample: Sample) -> list[str]:
    return [i.kwargs["keyword"] for i in sample.instructions]


def first_half_answers(task: Task) -> dict[str, str]:
    out = {}
    for s in task.samples:
        kws = keywords(s)
        out[str(s.key)] = "Report. " + " ".join(kws[: len(kws) // 2]) + "."
    return out


def scored_density(task: Task, answers: dict[str, str], out: Path) -> dict:
    result = ifharness.score(task, answers)
    write_score_run(out, result)
    return json.loads((out / "metrics.json").read_text())["density"]


def test_first_half_planted_scores_half_with_a_step_primacy_curve(tmp_path):
    task = density_task()
    block = scored_density(task, first_half_answers(task), tmp_path / "run")
    assert [lv["level"] for lv in block["levels"]] == list(LEVELS)
    for lv in block["levels"]:
        n = lv["level"]
        assert lv["n_samples"] == 2 and lv["n_instructions"] == 2 * n
        assert lv["accuracy"] == 0.5 and lv["seed_mean"] == 0.5 and lv["seed_std"] == 0.0
        lo, hi = lv["ci"]
        assert lo < 0.5 < hi
        curve = [(d["decile"], d["accuracy"]) for d in lv["primacy"] if d["n"]]
        assert curve, n
        for decile, acc in curve:
            assert acc == (1.0 if decile < 5 else 0.0), (n, decile, acc)
        assert sum(d["n"] for d in lv["primacy"]) == 2 * n
        assert lv["errors"]["missed"] == n and lv["errors"]["omitted"] == n
        assert lv["errors"]["modified"] == 0 and lv["errors"]["omitted_share"] == 1.0
        # every early keyword kept, every late one missed: IFScale's ratio has no early miss
        assert lv["recency_ratio"] is None
    # N = 10 fills every decile; N = 2 only deciles 0 and 5
    by_level = {lv["level"]: lv for lv in block["levels"]}
    assert all(d["n"] == 2 for d in by_level[10]["primacy"])
    assert [d["decile"] for d in by_level[2]["primacy"] if d["n"]] == [0, 5]


def test_last_half_planted_gives_the_mirror_curve_and_a_recency_ratio(tmp_path):
    task = density_task(levels=(10,), seeds=(0,))
    kws = keywords(task.samples[0])
    block = scored_density(task, {"n10-s0": " ".join(kws[5:])}, tmp_path / "run")
    lv = block["levels"][0]
    assert [d["accuracy"] for d in lv["primacy"]] == [0.0] * 5 + [1.0] * 5
    # first bucket (3 keywords) all missed, last bucket none missed
    assert lv["recency_ratio"] == 0.0


def test_inflected_answers_are_modified_not_omitted(tmp_path):
    words = ["customer", "analyze", "strategy", "market", "invoice"]
    task = density_task(levels=(5,), seeds=(0,))
    task.samples[0].instructions = [Instruction(id=ID, kwargs={"keyword": w}) for w in words]
    answer = "Our customers analyzed new strategies in three markets and invoiced them."
    for profile in ("reference", "ifscale-token"):
        task.profile = get_profile(profile)
        block = scored_density(task, {"n5-s0": answer}, tmp_path / profile)
        lv = block["levels"][0]
        assert lv["accuracy"] == 0.0
        e = lv["errors"]
        assert (e["missed"], e["omitted"], e["modified"]) == (5, 0, 5), e
        assert e["modified_forms"]["inflected"] == 5 and e["modified_share"] == 1.0


def test_hyphenated_forms_miss_only_under_the_token_rule(tmp_path):
    task = density_task(levels=(2,), seeds=(0,), profile="ifscale-token")
    task.samples[0].instructions = [
        Instruction(id=ID, kwargs={"keyword": w}) for w in ("customer", "growth")
    ]
    answer = "A customer-driven plan and growth's pace."
    block = scored_density(task, {"n2-s0": answer}, tmp_path / "a")
    lv = block["levels"][0]
    assert lv["accuracy"] == 0.0 and block["rule"].startswith("token")
    assert lv["errors"]["modified_forms"] == {
        "hyphenated": 1,
        "possessive": 1,
        "punctuation": 0,
        "inflected": 0,
    }
    task.profile = get_profile("reference")
    assert scored_density(task, {"n2-s0": answer}, tmp_path / "b")["levels"][0]["accuracy"] == 1


def test_missing_answer_omits_every_keyword(tmp_path):
    task = density_task(levels=(10,), seeds=(0, 1))
    kws = keywords(task.samples[0])
    block = scored_density(task, {"n10-s0": " ".join(kws)}, tmp_path / "run")
    lv = block["levels"][0]
    assert lv["accuracy"] == 0.5 and lv["missing_answers"] == 1
    assert lv["errors"]["omitted"] == 10


def test_echoed_and_list_answers_are_flagged(tmp_path):
    task = density_task(levels=(10,), seeds=(0, 1, 2))
    kws = [keywords(s) for s in task.samples]
    answers = {
        "n10-s0": "\n".join(f"{i}. Include the exact word: '{k}'." for i, k in enumerate(kws[0])),
        "n10-s1": ", ".join(kws[1]),
        "n10-s2": "A long report. " * 10 + " ".join(kws[2]),
    }
    lv = scored_density(task, answers, tmp_path / "run")["levels"][0]
    assert lv["accuracy"] == 1.0
    assert lv["flagged"] == {"keyword_list": 1, "under_20_words": 1, "echoed_instructions": 1}


def test_several_samples_per_prompt_count_every_sample(tmp_path):
    """`run -n 2`: the scorer's hook reads the second sample's answers from the folder."""
    from ifharness.run import score_completions
    from ifharness.rundir import RunFolder

    task = density_task(levels=(10,), seeds=(0,))
    kws = keywords(task.samples[0])
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_completions(
        [
            {
                "key": "n10-s0",
                "sample": i,
                "response": " ".join(kws[:cut]),
                "reasoning": None,
                "finish_reason": "stop",
                "n_tokens": None,
            }
            for i, cut in ((0, 10), (1, 4))
        ]
    )
    result = score_completions(task, folder, 2)
    result.write(folder)
    lv = json.loads(folder.file("metrics.json").read_text())["density"]["levels"][0]
    assert (lv["n_samples"], lv["n_instructions"], lv["followed"]) == (2, 20, 14)
    assert lv["errors"]["missed"] == 6 and lv["seed_mean"] == 0.7


def test_no_density_block_for_other_tasks(tmp_path):
    task = ifharness.load_task("default").limit(2)
    write_score_run(tmp_path / "run", ifharness.score(task, {}))
    assert "density" not in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_report_and_leaderboard_draw_the_curves(tmp_path):
    task = density_task()
    answers = first_half_answers(task)
    for model, cut in (("model-a", 2), ("model-b", 4)):
        texts = {}
        for s in task.samples:
            kws = keywords(s)
            texts[str(s.key)] = " ".join(kws[: len(kws) * (cut - 1) // cut])
        write_score_run(tmp_path / model, ifharness.score(task, texts or answers))
    page = write_report(tmp_path / "model-a").read_text()
    assert 'data-chart="density"' in page and 'data-chart="primacy"' in page
    assert "<h2>Density</h2>" in page and "polyline" in page
    rows = collect([str(tmp_path / "model-a"), str(tmp_path / "model-b")], n_resamples=0)
    board = to_html(rows)
    chart = board[board.index('data-chart="density"') :]
    chart = chart[: chart.index("</svg>")]
    assert 'data-series="model-a"' in chart and 'data-series="model-b"' in chart


# ---------------------------------------------------------------- vocabulary and generation


@pytest.fixture
def vocabulary():
    pytest.importorskip("wordfreq", reason="pip install 'ifharness[generate]'")
    pytest.importorskip("english_words", reason="pip install 'ifharness[generate]'")
    from ifharness.generate import density as gen

    return gen


def test_vocabulary_filter_and_pool(vocabulary):
    import wordfreq

    words = vocabulary.candidates()
    assert len(words) > 5000 and len(set(words)) == len(words)
    for w in words[:: max(1, len(words) // 300)]:
        assert w.isalpha() and w.islower() and w.isascii() and len(w) >= 4
        assert 2.5 <= wordfreq.zipf_frequency(w, "en") <= 4.5
    pool = vocabulary.substring_free_pool(words, 500, 0)
    assert len(pool) == len(set(pool)) == 500
    assert not [(a, b) for a in pool for b in pool if a != b and a in b]
    assert vocabulary.substring_free_pool(words, 500, 0) == pool
    assert vocabulary.substring_free_pool(words, 500, 1) != pool
    one = vocabulary.keywords_for(pool, 50, 0, 0)
    assert one == vocabulary.keywords_for(pool, 50, 0, 0) != vocabulary.keywords_for(pool, 50, 0, 1)
    assert len(set(one)) == 50


def test_generation_without_the_vocabulary_names_the_install(monkeypatch):
    from ifharness.generate import density as gen

    monkeypatch.setitem(sys.modules, "wordfreq", None)  # import wordfreq now raises
    with pytest.raises(gen.VocabularyUnavailable, match=r"pip install 'ifharness\[generate\]'"):
        gen.candidates()


def _hashes(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        for f in (p, p.with_suffix(".jsonl")):
            out[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_generation_is_deterministic_and_recorded(vocabulary, tmp_path):
    pytest.importorskip("ifharness.generate.io")
    levels = [1, 5, 20]
    a = vocabulary.generate_density(levels, [0, 1], 0, "all", tmp_path / "a")
    b = vocabulary.generate_density(levels, [0, 1], 0, "all", tmp_path / "b")
    c = vocabulary.generate_density(levels, [0, 1], 1, "prose", tmp_path / "c")
    assert len(a) == 3 and _hashes(a) == _hashes(b)
    prose_a = next(p for p in a if p.stem.endswith("prose")).with_suffix(".jsonl").read_bytes()
    assert prose_a != c[0].with_suffix(".jsonl").read_bytes()
    tasks = [ifharness.load_task(str(p)) for p in a]
    set_ids = {t.spec.generated.set_id for t in tasks}
    assert len(set_ids) == 1
    for t in tasks:
        g = t.spec.generated
        assert g.family == "density" and g.seed == 0 and g.args["levels"] == levels
        assert g.vocabulary == {"package": "wordfreq", "version": "3.1.1"}
        assert t.spec.generation.max_tokens >= 8192 and t.spec.suite == "ifscale"
        assert [s.meta["level"] for s in t.samples] == [1, 1, 5, 5, 20, 20]
        for s in t.samples:
            kws = keywords(s)
            assert len(kws) == s.meta["level"] == len(set(kws))
            assert s.instruction_ids == [ID] * len(kws)
            assert all(k in s.prompt for k in kws)
    prose = tasks[[t.spec.generated.rendering for t in tasks].index("prose")]
    last = prose.samples[-1]
    assert f"20. Include the exact word: '{keywords(last)[-1]}'." in last.prompt
    # regenerating from the record reproduces the set
    g = prose.spec.generated
    again = vocabulary.generate_density(
        g.args["levels"], g.args["seeds"], g.seed, g.rendering, tmp_path / "d", name="density-prose"
    )
    assert _hashes(again) == {k: v for k, v in _hashes(a).items() if "prose" in k}
