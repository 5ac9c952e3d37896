"""Every IFBench verifier on hostile answers: nothing escapes, verdicts are reproducible, and the
unscorable cases are exactly the known ones.

Each of the 58 ids gets the kwargs of its first instance in the IFBench test file and goes
through ``ifharness.scoring.judge`` (strict and loose, the scorer's own path) on empty,
whitespace-only, non-Latin, emoji-only, malformed-markdown and CSV answers, and on a 1 MB
answer. A second run happens in a fresh interpreter with another hash seed.

Unscorable, by design:
* ``words:start_verb`` on every non-blank answer unless NLTK's tagger is installed
  (``ResourceUnavailable``; a blank answer is decided before any checker runs);
* ``custom:csv_quotes`` on a CSV answer with an empty field, and ``custom:csv_city`` on a 1 MB
  answer with no line break or comma (a field over csv's 131,072-character limit): the
  reference crashes there (``ReferenceCrash``);
* under ``ifbench-2025`` also the c94da02 crashes on answers with no words or only punctuation.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ifharness.scoring import judge
from ifharness.verifiers import get, get_profile, load_all
from tests.support.data import ROOT, read_jsonl, shared, tagger_installed

SMALL_INPUTS = {
    "empty": "",
    "whitespace": " \n\t \u3000\n\u00a0 ",
    "cjk": "日本語の文章です。これはテストです！中文句子，没有空格。\n한국어 문장입니다.",
    "arabic": "هذا نص عربي قصير. هل هو جيد؟ نعم، إنه جيد!\nسطر ثان ١٢٣",
    "emoji_only": "😀🎉👍🏽🇺🇸❤️✨",
    "punctuation_only": "?! ... --- ***\n\n\"''\" ;;",
    "markdown": "**bold never closed\n* bullet\n  - sub\n*\n```python\nprint('x'\n# Heading ##\n"
    "[link](http://x\n| a | b |\n|---\n> quote\n<i>unclosed <em>\n\n\n- - -",
    "csv_empty_field": '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
    '"1"\t"Math"\t"A"\t"Fall"\t"90"\n"2"\t\t"B"\t"Spring"\t"80"\n'
    '"3"\t"Art"\t"C"\t"Fall"\t"70"\n',
}


def _huge_answer(size: int = 1_000_000) -> str:
    """A runaway answer: one line of 120-word sentences, no commas, exactly ``size`` chars.

    (Sentences this long keep Punkt's cost, which grows with the number of sentences, to
    seconds; the CSV checks see one field far over csv's limit.)
    """
    rng = random.Random(0)
    vocab = (
        "the quick brown fox jumps over a lazy dog while seven wise owls watch from tall "
        "oak trees near quiet rivers and Emma reads old books about distant mountains"
    ).split()
    sentences, length = [], 0
    while length < size:
        sentence = " ".join(rng.choice(vocab) for _ in range(120)).capitalize() + "."
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)[:size]


HUGE = _huge_answer()


@pytest.fixture(scope="module")
def data_kwargs() -> dict[str, dict]:
    """The first instance's kwargs of every id, null padding and float ints as in the file."""
    found: dict[str, dict] = {}
    for row in read_jsonl(shared("ifbench/IFBench_test.jsonl")):
        for cid, kwargs in zip(row["instruction_id_list"], row["kwargs"]):
            found.setdefault(cid, kwargs)
    ifbench_ids = {cid for cid, c in load_all().items() if c.suite == "ifbench"}
    assert set(found) == ifbench_ids and len(ifbench_ids) == 58
    return dict(sorted(found.items()))


def _judge_all(kwargs_by_id: dict[str, dict], texts: dict[str, str], profile_name: str) -> dict:
    profile = get_profile(profile_name)
    bound = [(cid, get(cid).bind(kw, profile=profile)) for cid, kw in kwargs_by_id.items()]
    return {name: judge(bound, text, profile) for name, text in texts.items()}


def _unscorable(rows: dict, ids: list[str]) -> dict[str, set[str]]:
    return {name: {ids[int(i)] for i in row.get("unscorable", {})} for name, row in rows.items()}


def _expected(texts: dict[str, str], extra: dict[str, set[str]]) -> dict[str, set[str]]:
    tagger = tagger_installed()
    return {
        name: ({"words:start_verb"} if text.strip() and not tagger else set())
        | extra.get(name, set())
        for name, text in texts.items()
    }


_WORKER = """
import json, sys
from ifharness.scoring import judge
from ifharness.verifiers import get, get_profile
job = json.load(open(sys.argv[1], encoding="utf-8"))
profile = get_profile(job["profile"])
bound = [(cid, get(cid).bind(kw, profile=profile)) for cid, kw in job["kwargs"].items()]
out = {name: judge(bound, text, profile) for name, text in job["texts"].items()}
json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))
"""


def _judge_in_fresh_process(tmp_path: Path, kwargs_by_id, texts, profile_name, seed: str) -> dict:
    job, out = tmp_path / f"job-{profile_name}.json", tmp_path / f"out-{profile_name}.json"
    job.write_text(
        json.dumps({"profile": profile_name, "kwargs": kwargs_by_id, "texts": texts}),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-c", _WORKER, str(job), str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    return json.loads(out.read_text(encoding="utf-8"))


# Where c94da02 raised on a non-blank answer (profile flag ifbench-2025-crashes).
CRASHES_2025 = {
    "emoji_only": {"ratio:stop_words"},
    "punctuation_only": {
        "ratio:stop_words",
        "words:alphabet",
        "words:last_first",
        "format:emoji",
        "format:quote_unquote",
    },
}


@pytest.mark.parametrize("profile_name", ["reference", "ifbench-2025"])
def test_hostile_answers(profile_name, data_kwargs, tmp_path):
    ids = list(data_kwargs)
    first = _judge_all(data_kwargs, SMALL_INPUTS, profile_name)
    # Every verdict is a bool or None, one per instruction, in both modes.
    for row in first.values():
        for mode in ("strict", "loose"):
            assert len(row[mode]) == len(ids)
            assert all(v is None or isinstance(v, bool) for v in row[mode])
    expected = {"csv_empty_field": {"custom:csv_quotes"}}
    if profile_name == "ifbench-2025":
        expected = {**expected, **CRASHES_2025}
    assert _unscorable(first, ids) == _expected(SMALL_INPUTS, expected)
    # Blank answers follow nothing and raise nothing.
    for name in ("empty", "whitespace"):
        assert first[name] == {"strict": [False] * len(ids), "loose": [False] * len(ids)}

    again = _judge_in_fresh_process(tmp_path, data_kwargs, SMALL_INPUTS, profile_name, seed="12345")
    assert again == json.loads(json.dumps(first))


def test_unscorable_reasons_name_the_cause(data_kwargs):
    ids = list(data_kwargs)
    rows = _judge_all(data_kwargs, {"csv": SMALL_INPUTS["csv_empty_field"]}, "reference")
    reasons = {ids[int(i)]: r for i, r in rows["csv"]["unscorable"].items()}
    assert reasons["custom:csv_quotes"].startswith(
        "ReferenceCrash: custom:csv_quotes: row 3 has an empty field"
    )


@pytest.mark.slow
def test_one_megabyte_answer(data_kwargs):
    ids = list(data_kwargs)
    texts = {"huge": HUGE}
    first = _judge_all(data_kwargs, texts, "reference")
    assert _unscorable(first, ids) == _expected(texts, {"huge": {"custom:csv_city"}})
    reason = first["huge"]["unscorable"][str(ids.index("custom:csv_city"))]
    assert "131072" in reason or "field" in reason
    assert _judge_all(data_kwargs, texts, "reference") == first
