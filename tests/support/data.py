"""Files the tests read and write: the shared reference data, JSONL, small prompt files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"

TOPICS = ("cats", "dogs", "birds", "fish", "trees", "rivers", "stars", "bread")
KEY_BASE = 1000  # prompt i of write_prompts has the key KEY_BASE + i
_INDEX = re.compile(r"\((\d+)\)")


def shared(relative: str) -> Path:
    """A file of the shared reference data (never copied here); skips the test when absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"reference data {path} is absent (the shared/ folder beside the repo)")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line of a JSONL file, parsed."""
    return [
        json.loads(line)
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """One line per row: a dict as JSON, a string as it is (to write broken lines on purpose)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def prompt_rows(n: int) -> list[dict[str, Any]]:
    """``n`` IFEval-style prompts: no commas for all, at least 10 words for every third.

    Prompt ``i`` has the key ``KEY_BASE + i`` and says ``(i)``, which is how the fake
    OpenAI server tells samples apart (``prompt_key``).
    """
    rows = []
    for i in range(n):
        ids, kwargs = ["punctuation:no_comma"], [{}]
        if i % 3 == 0:
            ids.append("length_constraints:number_words")
            kwargs.append({"num_words": 10, "relation": "at least"})
        rows.append(
            {
                "key": KEY_BASE + i,
                "prompt": f"Write about {TOPICS[i % len(TOPICS)]} ({i}) without commas.",
                "instruction_id_list": ids,
                "kwargs": kwargs,
            }
        )
    return rows


def write_prompts(path: Path, n: int) -> Path:
    """``prompt_rows(n)`` as a JSONL file for ``--task ifeval --data``."""
    return write_jsonl(path, prompt_rows(n))


def ifeval_args(data: Path, out: Path) -> list[str]:
    """``ifharness run`` arguments for a ``write_prompts`` file scored as IFEval, into ``out``."""
    return ["--task", "ifeval", "--data", str(data), "--out", str(out)]


def prompt_key(prompt: str) -> int | None:
    """The sample key a prompt of ``prompt_rows`` was written for; None for any other text."""
    m = _INDEX.search(prompt)
    return KEY_BASE + int(m.group(1)) if m else None


def tagger_installed() -> bool:
    """Whether IFBench's part-of-speech tagger (an optional resource) loads here."""
    from ifharness.verifiers.ifbench import _util

    try:
        _util.pos_tagger()
    except Exception:  # noqa: BLE001 - ResourceUnavailable, or a broken install
        return False
    return True
