"""Helpers shared by the test modules, and by ``bench/bench_run.py``.

Rules: a test module imports helpers from here and fixtures come from ``tests/conftest.py``
(each defined once, there); no test module imports another test module or the conftest.

How it imports: ``tests/`` is a package (``tests/__init__.py``), so pytest's default
``prepend`` import mode puts the repository root on ``sys.path`` and imports each test module
as ``tests.test_…``; the helpers are then ``from tests.support.data import shared``. That holds
for ``python -m pytest`` and for a bare ``pytest`` from the repository root, for the whole suite
and for one file. A script outside ``tests/`` (``bench/bench_run.py``) puts the repository root
on ``sys.path`` itself and imports the same way.

Nothing here imports a heavy library at import time (torch, transformers and vLLM only inside
the functions that need them); ``models`` does not even import pytest, so a bench script
can import it.

* ``data`` — the repository root, the shared reference data (``shared()`` skips when it is
  absent), JSONL reading and writing, the small IFEval-style prompt files the runner tests use
  (``write_prompts``, and ``ifeval_args`` to run them), optional-resource probes;
* ``synthetic`` — seeded synthetic verdict rows and run folders (stats, gate, report,
  leaderboard);
* ``browser`` — a real headless Chromium for the HTML tests;
* ``models`` — the random two-layer Llama the vLLM tests build, the embedded SmolLM2 (or a
  skip), and ``LentRunner``, a started runner lent to ``ifharness.run.execute``;
* ``fake_openai`` — ``FakeUpstream``, an OpenAI-compatible server on loopback with faults
  scripted per sample, standing alone (fast tier) or in front of a real server (slow tier);
  ``TRANSIENT``, a script that meets every fault a client must retry through;
* ``vllm_server`` — ``vllm_api_server``, vLLM's real OpenAI-compatible server on loopback
  (slow tier).

Fixtures in ``tests/conftest.py``: ``ifeval_task``, ``gpt4_path``, ``gpt4_result`` (the
shared IFEval data), ``tiny_model`` (built once a session), ``fake_upstream`` (starts fake
servers, closes them after the test).
"""
