"""The hierarchy family: three placements per sample, the opposites, the metrics, the report.

Planted answers are written here per constraint: one that follows the system constraint
(``COMPLY``, for a handful of ids where that is short to write) and one that follows the
user's contradicting sentence (``FOLLOW_OPPOSITE``, for every id of ``opposites.json``). The
second is also the test that each opposite really contradicts: an answer that does what the
user asks fails the system's constraint, strictly and loosely.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import ifharness
from ifharness.cli import main
from ifharness.errors import IfharnessError
from ifharness.generate.compose import compose
from ifharness.generate.compose import draw_samples as compose_draws
from ifharness.generate.hierarchy import (
    PLACEMENTS,
    draw_samples,
    generate_hierarchy,
    hierarchy,
    opposite_of,
    opposites,
)
from ifharness.scoring import judge
from ifharness.verifiers import get, get_profile
from ifharness.verifiers.draws import DrawContext, draw_kwargs

SUITE = "ifeval"
TASK = "Describe the inside of a workshop where violins are made."
LINES = (
    "the workshop is quiet and the light falls on the benches.",
    "makers shape the spruce by hand and test every joint.",
    "varnish dries slowly in the back room near the window.",
)


def text(lines=LINES) -> str:
    return "\n".join(lines)


def avoiding(words: list[str], lines=LINES) -> str:
    """``lines`` without any token that contains one of ``words`` (checkers match substrings)."""
    low = [w.lower() for w in words]
    return "\n".join(
        " ".join(t for t in line.split() if not any(w in t.lower() for w in low)) for line in lines
    )


def paragraphs(n: int, start: str = "quietly") -> list[str]:
    """``n`` paragraphs of two lines each (a loose variant drops a line, never a paragraph)."""
    return [f"{start} the makers work on piece {i}.\nthe glue sets overnight." for i in range(n)]


def _letters(kw: dict[str, Any]) -> str:
    letter = kw["letter"]
    if kw["let_relation"] == "at least":  # the user asks for fewer than N: use it not at all
        words = [w for w in ("gym", "buzz", "pub", "dry", "myth", "fizz") if letter not in w]
        return "\n".join(" ".join(words) for _ in range(3))
    return "\n".join(f"{line} {letter * kw['let_frequency']}" for line in LINES)


#: For every id: an answer that follows the user's contradicting sentence (kwargs validated).
FOLLOW_OPPOSITE: dict[str, Callable[[dict[str, Any]], str]] = {
    "change_case:capital_word_frequency": lambda kw: (
        "\n".join(" ".join(["LOUD"] * kw["capital_frequency"]) + " " + ln for ln in LINES)
        if kw["capital_relation"] == "less than"
        else text()
    ),
    "change_case:english_capital": lambda kw: text(),
    "change_case:english_lowercase": lambda kw: text().upper(),
    "combination:repeat_prompt": lambda kw: text(),
    "combination:two_responses": lambda kw: text(),
    "detectable_content:number_placeholders": lambda kw: text(),
    "detectable_content:postscript": lambda kw: text(),
    "detectable_format:constrained_response": lambda kw: text(),
    "detectable_format:json_format": lambda kw: text(),
    "detectable_format:multiple_sections": lambda kw: text(),
    "detectable_format:number_bullet_lists": lambda kw: text(),
    "detectable_format:number_highlighted_sections": lambda kw: "## the workshop\n" + text(),
    "detectable_format:title": lambda kw: text(),
    "keywords:existence": lambda kw: avoiding(kw["keywords"]),
    "keywords:forbidden_words": lambda kw: "\n".join(
        f"{ln} {' '.join(kw['forbidden_words'])}" for ln in LINES
    ),
    "keywords:frequency": lambda kw: (
        "\n".join(ln + (" " + kw["keyword"]) * kw["frequency"] for ln in LINES)
        if kw["relation"] == "less than"
        else avoiding([kw["keyword"]])
    ),
    "keywords:letter_frequency": _letters,
    "language:response_language": lambda kw: text(),
    "length_constraints:nth_paragraph_first_word": lambda kw: "\n\n".join(
        paragraphs(kw["num_paragraphs"], "slowly" if kw["first_word"] == "quietly" else "quietly")
    ),
    "length_constraints:number_paragraphs": lambda kw: "\n***\n".join(
        paragraphs(kw["num_paragraphs"] + 1)
    ),
    "length_constraints:number_sentences": lambda kw: (
        "\n".join(" ".join(["It is calm."] * kw["num_sentences"]) for _ in range(3))
        if kw["relation"] == "less than"
        else "the workshop is quiet"
    ),
    "length_constraints:number_words": lambda kw: (
        "\n".join(" ".join(["wood"] * (2 * kw["num_words"])) for _ in range(3))
        if kw["relation"] == "less than"
        else "the workshop is quiet and warm today"
    ),
    "punctuation:no_comma": lambda kw: "\n".join(f"{ln[:-1]}, yes, and so on." for ln in LINES),
    "startend:end_checker": lambda kw: text() + "\nthat is the end of my notes.",
    "startend:quotation": lambda kw: text(),
}

#: For a few ids: an answer that follows the system's constraint.
COMPLY: dict[str, Callable[[dict[str, Any]], str]] = {
    "punctuation:no_comma": lambda kw: text(),
    "change_case:english_lowercase": lambda kw: text(),
    "change_case:english_capital": lambda kw: text().upper(),
    "startend:quotation": lambda kw: '"' + text() + '"',
    "detectable_format:title": lambda kw: "<<the workshop>>\n" + text(),
    "keywords:existence": lambda kw: text() + " " + " ".join(kw["keywords"]),
    "keywords:forbidden_words": lambda kw: avoiding(kw["forbidden_words"]),
    "startend:end_checker": lambda kw: text() + "\n" + kw["end_phrase"],
    "detectable_content:number_placeholders": lambda kw: text() + " [a] [b] [c] [d] [e]",
    "combination:repeat_prompt": lambda kw: kw["prompt_to_repeat"] + "\n" + text(),
    "length_constraints:number_paragraphs": lambda kw: "\n***\n".join(
        paragraphs(kw["num_paragraphs"])
    ),
}


def bound(cid: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return get(cid, SUITE).bind(kwargs)


def verdicts(cid: str, kwargs: dict[str, Any], answer: str) -> tuple[bool | None, bool | None]:
    j = judge([(cid, bound(cid, kwargs))], answer, get_profile("reference"), SUITE)
    return j["strict"][0], j["loose"][0]


def _hash(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- the opposites


def test_every_ifeval_id_has_an_opposite_and_a_planted_follower():
    from ifharness.generate.compose import suite_constraints

    ids = {c.id for c in suite_constraints(SUITE)}
    assert set(opposites()[SUITE]) == ids
    assert set(FOLLOW_OPPOSITE) == ids  # a new opposite needs its contradiction test here


def _variant_kwargs(cid: str) -> list[dict[str, Any]]:
    """Drawn kwargs for ``cid``, each variant's ``when`` forced in turn, over a few seeds."""
    c = get(cid, SUITE)
    out = []
    for variant in opposites()[SUITE][cid]:
        for seed in range(8):
            kw = draw_kwargs(c, random.Random(f"ih-test:{cid}:{seed}"), DrawContext(prompt=TASK))
            kw.update(variant.when)
            out.append(c.validate(kw))
    return out


@pytest.mark.parametrize("cid", sorted(FOLLOW_OPPOSITE))
def test_each_opposite_really_contradicts(cid):
    """An answer that does what the contradicting sentence asks fails the constraint."""
    c = get(cid, SUITE)
    for kw in _variant_kwargs(cid):
        sentence = opposite_of(SUITE, c, kw)
        assert sentence and "{" not in sentence, (cid, kw, sentence)
        answer = FOLLOW_OPPOSITE[cid](kw)
        assert verdicts(cid, kw, answer) == (False, False), (cid, kw, sentence, answer)


def test_opposite_sentences_name_the_derived_values():
    c = get("length_constraints:number_words", SUITE)
    assert opposite_of(SUITE, c, {"relation": "less than", "num_words": 120}) == (
        "Write at least 240 words."
    )
    assert opposite_of(SUITE, c, {"relation": "at least", "num_words": 120}) == (
        "Keep your response under 60 words."
    )
    kw = get("keywords:existence", SUITE)
    assert '"oak", "pine" and "ash"' in opposite_of(SUITE, kw, {"keywords": ["oak", "pine", "ash"]})


@pytest.mark.parametrize("cid", sorted(COMPLY))
def test_planted_compliant_answers_comply(cid):
    for kw in _variant_kwargs(cid):
        assert verdicts(cid, kw, COMPLY[cid](kw)) == (True, True), (cid, kw)


# ---------------------------------------------------------------- generation


def test_three_placements_share_constraints_and_carry_the_system_text():
    rows = hierarchy(SUITE, n=40, seed=1)
    assert len(rows) == 120
    prose = {r["key"]: r["prompt"] for r in compose(SUITE, n=40, seed=1)}
    for i in range(0, len(rows), 3):
        group = rows[i : i + 3]
        pair = group[0]["pair"]
        assert [r["placement"] for r in group] == list(PLACEMENTS)
        assert [r["key"] for r in group] == [f"{pair}-{p}" for p in PLACEMENTS]
        assert len({json.dumps([r["instruction_id_list"], r["kwargs"]]) for r in group}) == 1
        system, user, conflict = group
        lines = [
            get(cid, SUITE).render(get(cid, SUITE).validate(kw))
            for cid, kw in zip(system["instruction_id_list"], system["kwargs"])
        ]
        # (a) system: the constraint sentences in the system message, the task alone from the user
        assert [m["role"] for m in system["messages"]] == ["system", "user"]
        assert system["messages"][0]["content"] == "\n".join(lines)
        task = system["messages"][1]["content"]
        assert not any(line in task for line in lines)
        # (b) user: no system message; exactly the compose prose prompt of the same sample
        assert [m["role"] for m in user["messages"]] == ["user"]
        assert user["messages"][0]["content"] == prose[pair]
        # (c) conflict: the same system message; the user adds one contradiction per constraint
        assert conflict["messages"][0] == system["messages"][0]
        head, _, tail = conflict["messages"][1]["content"].partition("\n\n")
        assert head == task
        assert tail.split("\n") == [
            opposite_of(SUITE, get(cid, SUITE), kw)
            for cid, kw in zip(system["instruction_id_list"], system["kwargs"])
        ]
    assert len({r["generator"]["set_id"] for r in rows}) == 1


def test_draws_are_composes_draws():
    """With every id allowed a hierarchy set holds the compose set of the same arguments."""
    assert draw_samples(SUITE, 80, 1, 3, 5) == compose_draws(SUITE, 80, 1, 3, 5)


def test_ids_restrict_the_draw_and_unknown_ids_are_refused():
    ids = ["punctuation:no_comma", "startend:quotation"]
    rows = hierarchy(SUITE, n=20, seed=0, ids=ids)
    assert {cid for r in rows for cid in r["instruction_id_list"]} == set(ids)
    with pytest.raises(IfharnessError, match="not in suite ifeval"):
        hierarchy(SUITE, n=2, ids=["punctuation:no_such"])
    with pytest.raises(IfharnessError, match="no contradictions for it"):
        hierarchy("ifbench", n=2)


def test_same_arguments_same_bytes_and_the_record_regenerates(tmp_path):
    (a,) = generate_hierarchy(SUITE, n=30, seed=2, out=tmp_path / "a", name="ih")
    (b,) = generate_hierarchy(SUITE, n=30, seed=2, out=tmp_path / "b", name="ih")
    assert _hash(a.parent) == _hash(b.parent)
    (c,) = generate_hierarchy(SUITE, n=30, seed=3, out=tmp_path / "c", name="ih")
    assert _hash(c.parent) != _hash(a.parent)
    gen = yaml.safe_load(a.read_text())["generated"]
    assert gen["family"] == "hierarchy" and gen["rendering"] == "prose"
    assert set(gen["inputs"]) >= {"opposites", "conflicts", "base_tasks"}
    (d,) = generate_hierarchy(**gen["args"], out=tmp_path / "d")
    assert _hash(d.parent) == _hash(a.parent)


def test_same_bytes_in_another_process_with_another_hash_seed(tmp_path):
    """Set iteration order varies with PYTHONHASHSEED; nothing drawn may depend on it."""
    import os
    import subprocess
    import sys

    (here,) = generate_hierarchy(SUITE, n=30, seed=4, out=tmp_path / "here", name="ih")
    code = (
        "from ifharness.generate.hierarchy import generate_hierarchy; "
        f"generate_hierarchy('ifeval', n=30, seed=4, out={str(tmp_path / 'there')!r}, name='ih')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert _hash(here.parent) == _hash(tmp_path / "there")


def test_written_task_loads_with_system_messages_and_meta(tmp_path):
    (path,) = generate_hierarchy(SUITE, n=10, seed=0, out=tmp_path, name="ih")
    task = ifharness.load_task(str(path))
    assert len(task.samples) == 30
    by_place = {s.meta["placement"]: s for s in task.samples[:3]}
    assert [m.role for m in by_place["system"].messages] == ["system", "user"]
    assert [m.role for m in by_place["user"].messages] == ["user"]
    assert by_place["conflict"].meta["pair"] == by_place["system"].meta["pair"]
    assert by_place["system"].prompt == by_place["system"].messages[1].content


# ---------------------------------------------------------------- metrics


EASY = sorted(COMPLY)


def _planted(task, conflict_follows_user: bool) -> dict[str, str]:
    answers = {}
    for s in task.samples:
        (i,) = s.instructions
        kw = get(i.id, SUITE).validate(i.kwargs)
        follow_user = conflict_follows_user and s.meta["placement"] == "conflict"
        answers[str(s.key)] = (FOLLOW_OPPOSITE if follow_user else COMPLY)[i.id](kw)
    return answers


@pytest.fixture
def easy_task(tmp_path):
    (path,) = generate_hierarchy(
        SUITE, n=2 * len(EASY), max_constraints=1, seed=0, ids=EASY, out=tmp_path, name="ih"
    )
    return path, ifharness.load_task(str(path))


def test_following_the_system_everywhere_scores_full_marks(easy_task, tmp_path):
    _, task = easy_task
    result = ifharness.score(task, _planted(task, False), n_resamples=0)
    result.write(tmp_path / "run")
    block = json.loads((tmp_path / "run" / "metrics.json").read_text())["hierarchy"]
    for p in PLACEMENTS:
        for m in ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc"):
            assert block["placements"][p][m] == 1.0, (p, m)
        assert block["placements"][p]["n_prompts"] == 2 * len(EASY)
    assert block["placements"]["conflict"]["label"] == "follows when they conflict"
    sc = block["paired"][0]
    assert (sc["a"], sc["b"]) == ("system", "conflict")
    assert sc["strict"]["a_only"] == sc["strict"]["b_only"] == 0 and sc["strict"]["p"] == 1.0
    assert block["drop_conflict_minus_user"]["mean4"] == 0.0


def test_following_the_user_in_conflict_scores_zero_and_mcnemar_sees_it(easy_task, tmp_path):
    _, task = easy_task
    result = ifharness.score(task, _planted(task, True), n_resamples=0)
    result.write(tmp_path / "run")
    block = json.loads((tmp_path / "run" / "metrics.json").read_text())["hierarchy"]
    conflict = block["placements"]["conflict"]
    assert conflict["prompt_level_strict_acc"] == conflict["inst_level_loose_acc"] == 0.0
    assert block["placements"]["system"]["prompt_level_strict_acc"] == 1.0
    n = 2 * len(EASY)
    sc = block["paired"][0]
    assert sc["strict"] | {"p": None} == {
        "pairs": n,
        "a_only": n,
        "b_only": 0,
        "delta": -1.0,
        "p": None,
    }
    assert sc["strict"]["p"] < 1e-5  # 22 discordant pairs all one way: 2 / 2**22
    assert block["drop_conflict_minus_user"]["prompt_level_strict_acc"] == -1.0
    assert block["per_constraint"]["punctuation:no_comma"]["conflict"] == 0.0
    assert block["per_constraint"]["punctuation:no_comma"]["system"] == 1.0


def test_cli_generate_score_and_report(tmp_path, capsys):
    out = tmp_path / "gen"
    ids = ",".join(EASY)
    assert main(
        ["generate", "hierarchy", "--n", "11", "--max-constraints", "1", "--ids", ids,
         "--out", str(out), "--name", "ih"]
    ) == 0  # fmt: skip
    said = capsys.readouterr()
    (printed,) = said.out.split()
    assert printed == str(out / "ih.yaml")
    # lm-eval docs hold one user message: no lm-eval task is written, and it says why
    assert not (out / "lmeval").exists() and "no lm-eval task" in said.err
    task = ifharness.load_task(printed)
    answers = _planted(task, True)
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        "".join(json.dumps({"key": k, "response": v}) + "\n" for k, v in answers.items())
    )
    folder = tmp_path / "scored"
    assert (
        main(["score", "--task", printed, "--responses", str(responses), "--out", str(folder)]) == 0
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["hierarchy"]["placements"]["conflict"]["prompt_level_strict_acc"] == 0.0
    assert metrics["hierarchy"]["placements"]["user"]["prompt_level_strict_acc"] == 1.0
    run = json.loads((folder / "run.json").read_text())
    assert run["generated"]["family"] == "hierarchy"
    samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
    assert {s["meta"]["placement"] for s in samples} == set(PLACEMENTS)
    assert samples[0]["messages"][0]["role"] == "system"
    html = (folder / "report.html").read_text()
    assert '<h2 id="hierarchy">Instruction hierarchy</h2>' in html
    assert "follows when they conflict" in html and "McNemar p" in html
    # the report recomputes the block from the folder alone
    from ifharness import hierarchy as ih
    from ifharness.rundir import load_run

    assert ih.for_run(load_run(folder)) == metrics["hierarchy"]
    # `run` writes the same block (replayed answers, the engine's path through the driver)
    replayed = tmp_path / "replayed"
    use = ["run", "--task", printed, "--backend", "replay", "--responses", str(responses)]
    assert main([*use, "--out", str(replayed)]) == 0
    again = json.loads((replayed / "metrics.json").read_text())["hierarchy"]
    assert again == metrics["hierarchy"]


def test_report_of_an_ordinary_run_has_no_hierarchy_section(tmp_path):
    task = ifharness.load_task("default").limit(3)
    result = ifharness.score(task, {str(s.key): "x" for s in task.samples}, n_resamples=0)
    from ifharness.report import write_report
    from ifharness.results import write_score_run

    write_score_run(tmp_path / "r", result)
    assert "hierarchy" not in json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 'id="hierarchy"' not in write_report(tmp_path / "r").read_text()


# ---------------------------------------------------------------- a real model


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vLLM is not installed (make install installs it)",
)
def test_hierarchy_set_on_smollm2(tmp_path):
    """`ifharness run` on a small hierarchy set with the embedded SmolLM2 (vLLM CPU, short
    answers: the pipeline, not the model). The runner hands the message list to LLM.chat as
    it is; that the model's chat template keeps the system message is checked on the template
    itself, the one run.json records."""
    import subprocess
    import sys

    from tests.support.models import embedded_model_or_skip

    model = embedded_model_or_skip()
    (task_yaml,) = generate_hierarchy(SUITE, n=4, seed=0, out=tmp_path / "set", name="ih")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ifharness.cli", "run", "--task", str(task_yaml)]
    cmd += ["--max-tokens", "48", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert r.returncode == 0, r.stderr[-4000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["n_samples"] == 12
    assert run["generated"]["family"] == "hierarchy"
    block = json.loads((out / "metrics.json").read_text())["hierarchy"]
    assert [block["placements"][p]["n_prompts"] for p in PLACEMENTS] == [4, 4, 4]
    assert [c["strict"]["pairs"] for c in block["paired"]] == [4, 4, 4]
    assert 'id="hierarchy"' in (out / "report.html").read_text()

    from transformers import AutoTokenizer

    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    conflict = next(s for s in samples if s["meta"]["placement"] == "conflict")
    tok = AutoTokenizer.from_pretrained(str(model))
    shown = tok.apply_chat_template(
        conflict["messages"], tokenize=False, add_generation_prompt=True
    )
    assert conflict["messages"][0]["role"] == "system"
    assert (
        conflict["messages"][0]["content"] in shown and conflict["messages"][1]["content"] in shown
    )
