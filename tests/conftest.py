"""Shared fixtures: the public reference data in ../shared/data (never copied here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared(relative: str) -> Path:
    """A file of the shared reference data; skips the test when the folder is absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"reference data {path} is absent (the shared/ folder beside the repo)")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def ifeval_task():
    import ifharness

    return ifharness.load_task("ifeval", data=shared("ifeval/input_data.jsonl"))


@pytest.fixture(scope="session")
def gpt4_path() -> Path:
    return shared("ifeval/gpt4_responses.jsonl")


@pytest.fixture(scope="session")
def gpt4_result(ifeval_task, gpt4_path):
    import ifharness

    return ifharness.score(ifeval_task, gpt4_path)
