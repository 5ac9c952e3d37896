"""Every registered constraint can be generated: its ``draw=`` gives kwargs that bind and render.

``ifharness generate`` composes samples from the registry, so a constraint whose declared ranges
produce kwargs its own schema rejects, or whose template keeps an unfilled ``{field}``, would
only show up as a crash (or a garbled prompt) deep inside a generation run. These tests draw
every constraint of every suite package over many seeds instead, check that the conflict maps
cover exactly their suite's ids, and that a few hand-written answers pass the drawn
constraints (so the ranges mean what the instructions say).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import random
import re
from importlib import resources

import pytest

import ifharness.verifiers as verifiers_pkg
from ifharness.verifiers import load_all
from ifharness.verifiers.draws import PROMPT, DrawContext, common_words, draw_kwargs
from ifharness.verifiers.registry import Constraint

SEEDS = range(40)
TASKS = (
    "Write a short blog post about the history of the bicycle and why cities should build "
    "more bike lanes for commuters.",
    "Describe a quiet morning at a mountain lake to a friend who has never been there.",
)
# An unfilled format field: "{name}", "{name!r}", "{name:>4}". A set display in pseudo-code
# ("{strip_p(w) for w in ...}") is not one.
LEFTOVER = re.compile(r"\{[A-Za-z_]\w*(![rsa])?(:[^{}]*)?\}")


def package_suites() -> list[str]:
    """The suites shipped as packages under ``verifiers/`` (not runtime or test suites)."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(verifiers_pkg.__path__)
        if info.ispkg and not info.name.startswith("_")
    )


def constraints() -> list[Constraint]:
    registry = load_all()
    suites = set(package_suites())
    return sorted((c for c in registry if c.suite in suites), key=lambda c: (c.suite, c.id))


def ids_of(suite: str) -> set[str]:
    return {c.id for c in constraints() if c.suite == suite}


ALL = constraints()


def test_every_suite_package_has_constraints() -> None:
    # Guards the parametrisation below: an empty list would make every test vacuous.
    for suite in package_suites():
        assert ids_of(suite), f"suite {suite} registers no constraint"
    assert {"ifeval", "ifbench", "ifevalg"} <= set(package_suites())


@pytest.mark.parametrize("c", ALL, ids=lambda c: f"{c.suite}/{c.id}")
def test_draws_bind_and_render(c: Constraint) -> None:
    fields = set(c.kwargs_model.model_fields)
    unknown = set(c.draw or {}) - fields
    assert not unknown, f"{c.suite} {c.id}: draw= names {sorted(unknown)}, not kwargs {fields}"
    if fields:
        assert c.draw, f"{c.suite} {c.id} has kwargs {sorted(fields)} but no draw= ranges"
    seen = set()
    for seed in SEEDS:
        task = TASKS[seed % len(TASKS)]
        drawn = draw_kwargs(c, random.Random(seed), DrawContext(prompt=task))
        bound = c.bind(drawn)  # raises KwargsError on a value the schema rejects
        # Set-up must keep what was drawn (no falsy value it would redraw at random), so the
        # kwargs written to the JSONL mean what the rendered instruction says.
        changed = {k: (v, bound[k]) for k, v in drawn.items() if bound[k] != v}
        assert not changed, f"{c.suite} {c.id}: set-up changed drawn kwargs {changed}"
        for name, spec in (c.draw or {}).items():
            if spec is PROMPT:
                assert drawn[name] == task, f"{c.id}: {name} is not the base task's text"
        for pseudo in (False, True):
            text = c.render(bound, pseudo=pseudo)
            kind = "pseudo-code" if pseudo else "instruction"
            assert text.strip(), f"{c.suite} {c.id}: empty {kind} for {bound}"
            left = LEFTOVER.search(text)
            assert left is None, f"{c.suite} {c.id}: unfilled {left[0]} in {kind}: {text!r}"
        seen.add(repr(sorted((k, v) for k, v in drawn.items() if c.draw[k] is not PROMPT)))
    if any(spec is not PROMPT for spec in (c.draw or {}).values()):
        assert len(seen) > 1, f"{c.suite} {c.id}: {len(SEEDS)} seeds all drew {seen}"


def test_draws_are_reproducible() -> None:
    # Same seed, same context: same kwargs (generation is byte-identical only if this holds).
    for c in ALL:
        a = draw_kwargs(c, random.Random(7), DrawContext(prompt=TASKS[0]))
        b = draw_kwargs(c, random.Random(7), DrawContext(prompt=TASKS[0]))
        assert a == b, c.id


def test_one_sample_never_draws_a_word_twice() -> None:
    # Several keyword constraints in one sample share a context, so none repeats another's word.
    registry = load_all()
    parts = [
        registry["ifbench", "count:keywords_multiple"],
        registry["ifbench", "sentence:keyword"],
        registry["ifevalg", "count:count_increment_word"],
    ]
    for seed in range(20):
        ctx, rng, words = DrawContext(prompt=TASKS[0]), random.Random(seed), []
        for c in parts:
            drawn = draw_kwargs(c, rng, ctx)
            words += [v for k, v in drawn.items() if k.startswith(("keyword", "word"))]
        assert len(words) == 8 and len(set(words)) == 8, words
        assert not set(words) & set(TASKS[0].lower().split()), words


# ---------------------------------------------------------------------------- conflict maps


@pytest.mark.parametrize("suite", package_suites())
def test_conflict_file_lists_exactly_the_suite_ids(suite: str) -> None:
    path = resources.files(f"ifharness.verifiers.{suite}").joinpath("conflicts.json")
    assert path.is_file(), f"verifiers/{suite}/conflicts.json is missing"
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = ids_of(suite)
    assert set(raw) == ids, (
        f"verifiers/{suite}/conflicts.json: missing {sorted(ids - set(raw))}, "
        f"unknown {sorted(set(raw) - ids)}"
    )
    listed = {b for bs in raw.values() for b in bs}
    assert listed <= ids, f"verifiers/{suite}/conflicts.json lists {sorted(listed - ids)}"


@pytest.mark.parametrize("suite", package_suites())
def test_symmetrised_conflict_map(suite: str) -> None:
    conflicts = importlib.import_module("ifharness.verifiers.conflicts")
    table = conflicts.conflict_map(suite)
    ids = ids_of(suite)
    assert set(table) == ids
    for a, bs in table.items():
        assert a in bs, f"{suite}: {a} does not conflict with itself"
        assert bs <= ids, f"{suite}: {a} lists {sorted(bs - ids)}"
        for b in bs:
            assert a in table[b], f"{suite}: {a} lists {b} but {b} does not list {a}"


def test_ifbench_conflicts_cover_known_contradictions() -> None:
    conflicts = importlib.import_module("ifharness.verifiers.conflicts")
    table = conflicts.conflict_map("ifbench")
    ids = ids_of("ifbench")
    # Copy-the-request and fixed-answer constraints rule out everything else.
    for exclusive in ("repeat:repeat_simple", "repeat:repeat_change", "format:options"):
        assert table[exclusive] == ids, exclusive
    for a, b in [
        ("ratio:sentence_type", "ratio:sentence_balance"),  # D == 2Q and D == Q == E
        ("words:vowel", "format:newline"),  # one paragraph vs one word per line
        ("format:thesis", "format:title_case"),  # the <i> tag is a lower-case token
        ("words:alphabet", "words:last_first"),  # adjacent words share the first letter
        ("words:repeats", "count:keywords_multiple"),  # at most 5 vs seven times
    ]:
        assert b in table[a], (a, b)
    assert "format:parentheses" not in table["format:title_case"]


def test_no_drawable_word_hides_in_fixed_instruction_text() -> None:
    # count:keywords_multiple counts case-insensitive substrings, and verifiers/ifbench/
    # conflicts.json lets it share a prompt with format:output_template and format:list only
    # because no drawable word sits inside the text those two force into the answer.
    fixed = ("My Answer:", "My Conclusion:", "Future Outlook:", "SEPARATOR", "!?!?")
    hidden = [w for w in common_words() if any(w in f.lower() for f in fixed)]
    assert not hidden, f"common_words.txt words inside forced text: {hidden}"


# ---------------------------------------------------------------- hand-written answers pass


def _drawn(suite: str, cid: str, seed: int) -> dict:
    c = load_all()[suite, cid]
    return c.bind(draw_kwargs(c, random.Random(seed), DrawContext(prompt=TASKS[0])))


def _check(suite: str, cid: str, text: str, kwargs: dict) -> bool:
    return load_all()[suite, cid](text, **kwargs)


def test_answers_written_to_the_drawn_kwargs_pass() -> None:
    assert _check("ifeval", "punctuation:no_comma", "Bikes are quiet and cheap.", {})
    for seed in range(10):
        kw = _drawn("ifbench", "count:word_count_range", seed)
        low, high = kw["min_words"], kw["max_words"]
        assert low < high
        assert _check("ifbench", "count:word_count_range", " ".join(["ride"] * low), kw)
        assert not _check("ifbench", "count:word_count_range", " ".join(["ride"] * (high + 1)), kw)

        kw = _drawn("ifbench", "count:numbers", seed)
        answer = " ".join(f"lane {i}" for i in range(kw["N"]))
        assert _check("ifbench", "count:numbers", answer, kw)

        kw = _drawn("ifbench", "sentence:keyword", seed)
        filler = ["Zzq vvx."] * (kw["N"] - 1)
        assert _check("ifbench", "sentence:keyword", " ".join([*filler, f"Zq {kw['word']}."]), kw)

        kw = _drawn("ifevalg", "keywords:word_once", seed)
        assert _check("ifevalg", "keywords:word_once", f"Zzq {kw['keyword']} vvx.", kw)

        kw = _drawn("ifevalg", "first_word:first_word_answer", seed)
        assert _check("ifevalg", "first_word:first_word_answer", f"{kw['first_word']} zzq.", kw)

        kw = _drawn("ifevalg", "letters:letter_counting", seed)
        n = kw["N"] if kw["relation"] == "at least" else kw["N"] - 1
        assert _check("ifevalg", "letters:letter_counting", "a" * n, kw)

        kw = _drawn("ifevalg", "copy:copy", seed)
        assert _check("ifevalg", "copy:copy", TASKS[0], kw)
