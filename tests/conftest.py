"""The fixtures shared by several test modules, each defined here once.

Helpers (plain functions and classes) live in ``tests/support`` (see its docstring for the
layout); a fixture used by a single module stays in that module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.data import shared
from tests.support.fake_openai import FakeUpstream
from tests.support.models import build_tiny_model


@pytest.fixture(scope="session")
def ifeval_task():
    """IFEval's 541 prompts from the shared reference data."""
    import ifharness

    return ifharness.load_task("ifeval", data=shared("ifeval/input_data.jsonl"))


@pytest.fixture(scope="session")
def gpt4_path() -> Path:
    return shared("ifeval/gpt4_responses.jsonl")


@pytest.fixture(scope="session")
def gpt4_result(ifeval_task, gpt4_path):
    import ifharness

    return ifharness.score(ifeval_task, gpt4_path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The random two-layer Llama (``support.models.build_tiny_model``), built once."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def fake_upstream() -> Iterator[Callable[..., FakeUpstream]]:
    """Starts ``FakeUpstream(**kwargs)`` servers on loopback; all are closed after the test."""
    started: list[FakeUpstream] = []

    def start(**kwargs: Any) -> FakeUpstream:
        started.append(FakeUpstream(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()
