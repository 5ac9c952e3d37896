"""The three renderings of a generated sample: every constraint renders in each, the code and
the JSON parse, and the wording is all that differs between them."""

from __future__ import annotations

import ast
import json
import random
import re
import typing
from typing import Any

import pytest

from ifharness.generate.render import RENDERINGS, function_name, render
from ifharness.verifiers.registry import Constraint, get, load_all

TASK = "Write a short blog post about a weekend trip to the mountains."


def _synth(annotation: Any) -> Any:
    """A value of ``annotation`` for a required kwarg whose draw is not declared (yet)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    if args and origin is not list:  # a union: its first non-None member
        return _synth(next(a for a in args if a is not type(None)))
    if origin is list:
        return ["river", "garden"]
    return {int: 2, str: "river", float: 0.5, bool: True}[annotation]


def kwargs_for(c: Constraint, rng: random.Random) -> dict[str, Any]:
    """Bound kwargs for ``c``: drawn from its declared ranges where they bind, else built from
    its signature (required kwargs only; ``keyword`` given where the reference needs one)."""
    try:
        from ifharness.verifiers.draws import draw_kwargs

        drawn = draw_kwargs(c, rng, TASK)
        return c.bind(drawn, random.Random(0))
    except Exception:  # noqa: BLE001 - ranges still being declared: fall back to the signature
        pass
    fields = c.kwargs_model.model_fields
    built = {n: _synth(f.annotation) for n, f in fields.items() if f.is_required()}
    if "keyword" in fields and "keyword" not in built:
        built["keyword"] = "river"
    return c.bind(built, random.Random(0))


def _all() -> list[Constraint]:
    return sorted(load_all(), key=lambda c: (c.suite, c.id))


ALL = _all()


def _code(prompt: str) -> tuple[str, str]:
    """The function part of a pseudocode prompt (up to the ``>>>`` line) and the call line."""
    m = re.search(r"```python\n(.*?)\n(>>> .*)\n```", prompt, re.S)
    assert m, prompt
    return m.group(1), m.group(2)


def _spec(prompt: str) -> dict[str, Any]:
    m = re.search(r"```json\n(.*?)\n```", prompt, re.S)
    assert m, prompt
    return json.loads(m.group(1))


def test_every_constraint_has_an_instruction_and_a_pseudo_template() -> None:
    missing = [
        f"{c.suite}/{c.id}"
        for c in ALL
        if not c.instruction.strip() or not (c.pseudo or "").strip()
    ]
    assert {c.suite for c in ALL} >= {"ifeval", "ifbench", "ifevalg"}
    assert not missing, f"constraints without both templates: {missing}"


@pytest.mark.parametrize("c", ALL, ids=lambda c: f"{c.suite}/{c.id}")
def test_every_constraint_renders_in_every_rendering(c: Constraint) -> None:
    kw = kwargs_for(c, random.Random(7))
    sentence, pseudo = c.render(kw), c.render(kw, pseudo=True)

    prose = render(TASK, [(c, kw)], "prose")
    assert prose == f"{TASK}\n\n{sentence}"

    code, call = _code(render(TASK, [(c, kw)], "pseudocode"))
    tree = ast.parse(code)  # the part that claims to be code is Python
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert call == f">>> {fn.name}()"
    assert ast.get_docstring(fn, clean=True).startswith(TASK)
    ast.parse(pseudo)  # every registered template is Python: a statement, never a comment
    assert pseudo in code and "# " + pseudo not in code
    asserts = [n for n in ast.walk(fn) if isinstance(n, ast.Assert)]
    if "assert" in pseudo:
        assert asserts, code

    spec = _spec(render(TASK, [(c, kw)], "json"))
    assert spec == {
        "constraints": [{"id": c.id, "instruction": sentence, "kwargs": json.loads(json.dumps(kw))}]
    }


def _sample() -> list[tuple[Constraint, dict[str, Any]]]:
    return [
        (get("punctuation:no_comma", "ifeval"), {}),
        (
            get("length_constraints:number_words", "ifeval"),
            {"num_words": 120, "relation": "at least"},
        ),
        (get("keywords:existence", "ifeval"), {"keywords": ["lantern", "pebble"]}),
        (get("combination:two_responses", "ifeval"), {}),
    ]


def test_one_sample_carries_the_same_constraints_in_every_rendering() -> None:
    sample = _sample()
    prose = render(TASK, sample, "prose")
    code, _ = _code(render(TASK, sample, "pseudocode"))
    spec = _spec(render(TASK, sample, "json"))

    assert prose.split("\n\n", 1)[1].split("\n") == [c.render(kw) for c, kw in sample]
    assert [x["id"] for x in spec["constraints"]] == [c.id for c, _ in sample]
    assert [x["kwargs"] for x in spec["constraints"]] == [c.validate(kw) for c, kw in sample]
    body = [ln.strip() for ln in code.splitlines()]
    at = [
        body.index(ln)
        for ln in body
        if any(ln.endswith(c.render(kw, pseudo=True)) for c, kw in sample)
    ]
    assert len(at) == len(sample) and at == sorted(at)  # one line each, in sample order
    assert any(ln.startswith("parts = split(") for ln in body)
    ast.parse(code)


def test_rendering_is_deterministic_and_ignores_kwarg_order() -> None:
    sample = _sample()
    reordered = [(c, dict(reversed(list(kw.items())))) for c, kw in sample]
    for r in RENDERINGS:
        assert render(TASK, sample, r) == render(TASK, sample, r) == render(TASK, reordered, r)
    assert len({render(TASK, sample, r) for r in RENDERINGS}) == 3


def test_defaults_are_filled_in_so_the_wording_names_what_is_checked() -> None:
    c = get("detectable_format:number_bullet_lists", "ifeval")
    spec = _spec(render(TASK, [(c, {"num_bullets": 4})], "json"))
    assert spec["constraints"][0]["kwargs"] == {"num_bullets": 4}
    assert "4" in render(TASK, [(c, {"num_bullets": 4})], "prose")


def test_docstring_survives_quotes_and_backslashes() -> None:
    task = 'Explain the path C:\\temp and the string """x""" to a child, then say "done"'
    code, _ = _code(render(task, _sample()[:1], "pseudocode"))
    fn = ast.parse(code).body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert ast.get_docstring(fn, clean=False).splitlines()[0] == task


def test_multiline_task_stays_inside_the_docstring() -> None:
    task = "Write a poem about rain.\n\nUse the voice of an old sailor."
    code, _ = _code(render(task, _sample()[:1], "pseudocode"))
    fn = ast.parse(code).body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert "old sailor" in ast.get_docstring(fn, clean=True)


def test_function_name_says_what_the_task_makes() -> None:
    assert function_name(TASK) == "write_short_blog_post_weekend"
    assert function_name("!!!") == "respond"
    assert function_name("10 reasons to walk").startswith("task_10")
    assert function_name(TASK).isidentifier()


def test_a_prompt_with_no_constraints_is_the_task() -> None:
    assert render(TASK, [], "prose") == TASK
    assert _spec(render(TASK, [], "json")) == {"constraints": []}
    ast.parse(_code(render(TASK, [], "pseudocode"))[0])


def test_pseudocode_tells_the_model_to_answer_in_text() -> None:
    prompt = render(TASK, _sample(), "pseudocode")
    head = prompt.split("```", 1)[0].lower()
    assert "not code" in head and "reply with" in head


def test_unknown_rendering_and_bad_kwargs_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="prose, pseudocode, json"):
        render(TASK, _sample(), "yaml")
    c = get("length_constraints:number_words", "ifeval")
    with pytest.raises(ValueError, match="length_constraints:number_words"):
        render(TASK, [(c, {"num_words": "many"})], "prose")


def test_a_language_reads_as_its_name_in_words_and_as_its_code_in_code() -> None:
    c = get("language:response_language", "ifeval")
    sample = [(c, {"language": "pt"})]
    assert "in Portuguese language" in render(TASK, sample, "prose")
    code, _ = _code(render(TASK, sample, "pseudocode"))
    assert "langdetect(response) == 'pt'" in code
    (entry,) = _spec(render(TASK, sample, "json"))["constraints"]
    assert entry["kwargs"] == {"language": "pt"} and "Portuguese" in entry["instruction"]
