"""Suites as namespaces: one constraint id, two meanings, scored side by side.

The toy suites below live outside the package (modules written into ``tmp_path``) and reach
the registry only through its public API: an explicit ``suite=`` on ``@constraint``, or the
``ifharness.suites`` entry point group read by ``importlib.metadata`` from a real
``*.dist-info`` folder. Each fixture unregisters its suite again, so nothing leaks into
other tests.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import ifharness
from ifharness.cli import main
from ifharness.errors import DataError
from ifharness.lmeval import hooks
from ifharness.scoring import judge
from ifharness.verifiers import (
    PROFILES,
    REFERENCE,
    AmbiguousConstraintError,
    Text,
    UnknownConstraintError,
    UnknownSuiteError,
    check,
    constraint,
    get,
    load_all,
    register_sentence_splitter,
    suites,
    unregister_suite,
)
from ifharness.verifiers import text as text_module

NO_COMMA = "punctuation:no_comma"

TOY_MODULE = """
from ifharness.verifiers import Text, constraint


@constraint("punctuation:no_comma", suite="toy", instruction="Use at most one comma.")
def at_most_one_comma(t: Text) -> bool:
    return t.raw.count(",") <= 1


@constraint("toy:shout", suite="toy", instruction="Write in capitals.")
def shout(t: Text) -> bool:
    return t.raw.isupper()
"""

# Answers and the verdict each suite's "punctuation:no_comma" gives them (ifeval, toy).
ANSWERS = {
    "none": ("Plain words and nothing else.", True, True),
    "one": ("First, the point.", False, True),
    "two": ("First, second, third.", False, False),
}


def _import_from(folder: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch):
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    return importlib.import_module(name)


@pytest.fixture
def toy_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    load_all()  # the bundled suites first, as any real caller would have them
    name = f"toy_suite_{tmp_path.name.replace('-', '_')}"
    try:
        _import_from(tmp_path, name, TOY_MODULE, monkeypatch)
        yield "toy"
    finally:
        unregister_suite("toy")
        sys.modules.pop(name, None)


def _write_task(folder: Path, suite: str, ids: list[str], name: str) -> Path:
    rows = [
        {
            "key": k,
            "prompt": f"Answer {k}.",
            "instruction_id_list": ids,
            "kwargs": [{} for _ in ids],
        }
        for k in ANSWERS
    ]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"name": name, "suite": suite, "source": {"file": f"{name}.jsonl"}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _responses() -> list[dict[str, str]]:
    return [{"key": k, "response": text} for k, (text, _, _) in ANSWERS.items()]


def test_two_suites_score_one_id_side_by_side(toy_suite: str, tmp_path: Path):
    toy = ifharness.load_task(str(_write_task(tmp_path, "toy", [NO_COMMA], "toy-task")))
    ifeval = ifharness.load_task(str(_write_task(tmp_path, "ifeval", [NO_COMMA], "ifeval-task")))

    by_toy = {r["key"]: r["strict"][0] for r in ifharness.score(toy, _responses()).verdicts}
    by_ifeval = {r["key"]: r["strict"][0] for r in ifharness.score(ifeval, _responses()).verdicts}

    assert by_ifeval == {k: want for k, (_, want, _) in ANSWERS.items()}
    assert by_toy == {k: want for k, (_, _, want) in ANSWERS.items()}
    assert by_toy["one"] != by_ifeval["one"]


def test_bare_id_refuses_when_two_suites_define_it(toy_suite: str):
    with pytest.raises(
        AmbiguousConstraintError,
        match=r"'punctuation:no_comma' is defined by suites ifeval, toy; "
        r"pass suite=",
    ):
        check(NO_COMMA, "First, the point.")
    assert check(NO_COMMA, "First, the point.", suite="ifeval") is False
    assert check(NO_COMMA, "First, the point.", suite="toy") is True
    # ids that one suite alone defines still resolve bare
    assert check("toy:shout", "LOUD") is True
    assert get("change_case:english_lowercase").suite == "ifeval"
    # the flat view keeps working: both constraints are listed under the same bare id
    assert {c.suite for cid, c in load_all().items() if cid == NO_COMMA} == {
        "ifeval",
        "ifevalg",
        "reasonif",
        "toy",
    }


def test_judge_resolves_in_the_given_suite(toy_suite: str):
    bound = [(NO_COMMA, {})]
    assert judge(bound, "First, the point.", REFERENCE, "toy")["strict"] == [True]
    assert judge(bound, "First, the point.", REFERENCE, "ifeval")["strict"] == [False]
    # without a suite, as older callers call it: refused (a lookup error is not a verdict)
    with pytest.raises(AmbiguousConstraintError, match="ifeval, toy"):
        judge(bound, "First, the point.", REFERENCE)
    assert judge([("toy:shout", {})], "LOUD", REFERENCE)["strict"] == [True]


def test_unknown_suite_and_foreign_ids_are_refused_at_load(toy_suite: str, tmp_path: Path):
    with pytest.raises(DataError, match=r"unknown suite 'nosuch'; installed suites: .*ifeval"):
        ifharness.load_task(str(_write_task(tmp_path, "nosuch", [NO_COMMA], "t1")))
    foreign = _write_task(tmp_path, "toy", ["change_case:english_lowercase"], "t2")
    with pytest.raises(
        DataError,
        match=r"unknown constraint id 'change_case:english_lowercase' "
        r"in suite 'toy'\. It is defined by suite ifeval",
    ):
        ifharness.load_task(str(foreign))
    with pytest.raises(UnknownConstraintError, match="Did you mean 'toy:shout'"):
        get("toy:shoot", suite="toy")
    with pytest.raises(UnknownSuiteError):
        get(NO_COMMA, suite="nosuch")


def test_unregister_removes_the_suite(toy_suite: str):
    assert "toy" in suites()
    removed = unregister_suite("toy")
    assert sorted(c.id for c in removed) == [NO_COMMA, "toy:shout"]
    assert "toy" not in suites()
    assert get(NO_COMMA).suite == "ifeval"  # unique again


def test_cli_lists_and_verifies_per_suite(toy_suite: str, capsys: pytest.CaptureFixture[str]):
    assert main(["constraints", "--suite", "toy"]) == 0
    out = capsys.readouterr().out
    assert "toy     punctuation:no_comma" in out and "2 constraints" in out
    assert main(["verify", NO_COMMA, "First, the point."]) == 2
    assert "defined by suites ifeval, toy" in capsys.readouterr().err
    assert main(["verify", NO_COMMA, "First, the point.", "--suite", "toy"]) == 0
    assert json.loads(capsys.readouterr().out)["suite"] == "toy"


def test_lmeval_docs_carry_the_suite(toy_suite: str, tmp_path: Path):
    docs = hooks.task_docs(str(_write_task(tmp_path, "toy", [NO_COMMA], "toy-lm")))
    assert {d["suite"] for d in docs} == {"toy"}
    assert hooks.verdicts(docs[0], "First, the point.")["strict"] == [True]


def test_constraint_outside_a_suite_package_must_name_its_suite():
    with pytest.raises(ValueError, match=r"pass suite="):

        @constraint("toy:nameless", instruction="x")
        def nameless(t: Text) -> bool:
            return True

    assert "toy:nameless" not in load_all()


ENTRY_POINT_MODULE = """
from ifharness.verifiers import Profile, Text, constraint
from ifharness.verifiers.profiles import register_profile

register_profile(Profile("toyep-plain", "the toyep suite's own profile"))


@constraint("punctuation:no_comma", instruction="Commas only in pairs.")
def commas_in_pairs(t: Text) -> bool:
    return t.raw.count(",") % 2 == 0
"""


def _install_dist(root: Path, entry_points: str) -> None:
    """A minimal installed distribution, as pip leaves one: ``importlib.metadata`` reads it."""
    info = root / "toy_ep_suite-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-ep-suite\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[ifharness.suites]\n{entry_points}\n")


@pytest.fixture
def entry_point_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    load_all()
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield tmp_path
    finally:
        for suite in ("toyep", "toybroken"):
            unregister_suite(suite)
        for module in ("toy_ep_checks", "toy_broken_checks"):
            sys.modules.pop(module, None)
        PROFILES.pop("toyep-plain", None)
        monkeypatch.undo()  # the toy dist leaves sys.path, so a refresh cannot find it again
        load_all(refresh=True)
        assert not {"toyep", "toybroken"} & set(suites())


def test_entry_point_suite_is_discovered(entry_point_root: Path):
    (entry_point_root / "toy_ep_checks.py").write_text(ENTRY_POINT_MODULE)
    _install_dist(entry_point_root, "toyep = toy_ep_checks")
    assert "toyep" not in suites()

    load_all(refresh=True)

    assert "toyep" in suites()
    c = get(NO_COMMA, suite="toyep")  # no suite= in the module: the entry point's name
    assert c.func.__module__ == "toy_ep_checks"
    assert check(NO_COMMA, "a, b, c", suite="toyep") is True
    assert check(NO_COMMA, "a, b, c", suite="ifeval") is False
    assert "toyep-plain" in PROFILES  # the suite's module brought its profile


def test_broken_entry_point_warns_and_names_itself(entry_point_root: Path):
    (entry_point_root / "toy_broken_checks.py").write_text("raise ImportError('no toy here')\n")
    _install_dist(entry_point_root, "toybroken = toy_broken_checks")
    with pytest.warns(RuntimeWarning, match="toybroken = toy_broken_checks raised ImportError"):
        load_all(refresh=True)
    assert get(NO_COMMA, suite="ifeval").suite == "ifeval"  # the other suites still work
    with pytest.raises(UnknownSuiteError, match="suite 'toybroken' failed to load"):
        get(NO_COMMA, suite="toybroken")


def test_text_language_selects_the_sentence_splitter(monkeypatch: pytest.MonkeyPatch):
    raw = "Dr. Smith arrived. He sat down; then he left."
    assert Text(raw, language="en").sentences == Text(raw).sentences
    assert len(Text(raw).sentences) == 2
    with pytest.raises(ValueError, match="no sentence splitter for language 'xx'"):
        Text(raw, language="xx")
    monkeypatch.setattr(text_module, "_SENTENCE_SPLITTERS", {})  # undone after the test
    register_sentence_splitter("xx", lambda s: [p for p in s.split(";") if p])
    t = Text(raw + "\n*end*", language="xx")
    assert t.sentences == ["Dr. Smith arrived. He sat down", " then he left.\n*end*"]
    assert {v.lang for v in t.loose_variants} == {"xx"}
    with pytest.raises(ValueError, match="English"):
        register_sentence_splitter("en", str.split)


def _task_yaml(tmp_path: Path, **changes: object) -> Path:
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"key": 1, "prompt": "Hi.", "instruction_id_list": [NO_COMMA], "kwargs": [{}]})
        + "\n"
    )
    spec = {"name": "t", "suite": "ifeval", "source": {"file": "d.jsonl"}, **changes}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("value", ["answer", "reasoning", "both"])
def test_check_takes_the_three_texts_and_nothing_else(tmp_path: Path, value: str):
    # what each mode checks: tests/test_trace_checks.py
    assert ifharness.load_task(str(_task_yaml(tmp_path, check=value))).spec.check == value
    with pytest.raises(DataError, match="check: 'trace' is not one of answer, reasoning, both"):
        ifharness.load_task(str(_task_yaml(tmp_path, check="trace")))


def test_turns_say_what_the_messages_must_be(tmp_path: Path):
    with pytest.raises(DataError, match="turns: multi replays a fixed history"):
        ifharness.load_task(str(_task_yaml(tmp_path, turns="multi")))

    history = [
        {"role": "user", "content": "Describe the sea."},
        {"role": "assistant", "content": "It is wide, and blue."},
        {"role": "user", "content": "Again, without commas."},
    ]
    rows = [{"key": 1, "messages": history, "instruction_id_list": [NO_COMMA], "kwargs": [{}]}]
    data = tmp_path / "mt.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    single = _task_yaml(tmp_path, fields={"messages": "messages"})
    with pytest.raises(
        DataError,
        match=r"key 1\): field 'messages' holds 2 user and 1 "
        r"assistant message\(s\); a turns: single task",
    ):
        ifharness.load_task(str(single), data=data)

    multi = _task_yaml(tmp_path, turns="multi", fields={"messages": "messages"})
    task = ifharness.load_task(str(multi), data=data)
    assert task.samples[0].prompt == "Again, without commas."

    rows[0]["messages"] = history[:1]  # no history to replay
    data.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(DataError, match="must be a fixed history"):
        ifharness.load_task(str(multi), data=data)
