"""Reading run folders back for the analysis stages (leaderboard, compare, gate, report).

A run folder holds ``run.json`` (provenance) and ``verdicts.jsonl`` (one row per prompt, or
per (prompt, sample) with an integer ``sample``); generated runs add ``completions.jsonl``.
Every problem is a :class:`DataError` that names the folder or file and what to do, so the
CLI exits 2 with one clear line.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .files import read_jsonl

GLOB_CHARS = set("*?[")


def row_id(row: dict[str, Any]) -> tuple[str, int]:
    """How rows pair across runs: the prompt key (as text) and the sample index."""
    return str(row["key"]), int(row.get("sample", 0) or 0)


@dataclass
class RunData:
    path: Path
    run: dict[str, Any]
    verdicts: list[dict[str, Any]]
    metrics: dict[str, Any] | None = None
    _completions: dict[tuple[str, int], dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def task(self) -> str | None:
        return self.run.get("task")

    @property
    def dataset_hash(self) -> str | None:
        return self.run.get("dataset_hash")

    @property
    def profile(self) -> str | None:
        p = self.run.get("profile")
        return p.get("name") if isinstance(p, dict) else p

    @property
    def model(self) -> str:
        """The model's name from run.json; a scored run without one is named by its folder."""
        m = self.run.get("model")
        if isinstance(m, dict):
            m = m.get("name") or m.get("id") or m.get("path") or m.get("model")
        return str(m) if m else self.path.name

    @property
    def sampling(self) -> dict[str, Any] | None:
        for key in ("sampling", "sampling_params", "sampling_settings", "generation"):
            if isinstance(self.run.get(key), dict):
                return self.run[key]
        m = self.run.get("model")
        if isinstance(m, dict) and isinstance(m.get("sampling"), dict):
            return m["sampling"]
        return None

    @property
    def chat_template_hash(self) -> str | None:
        model = self.run.get("model")
        for where in (self.run, model if isinstance(model, dict) else {}):
            for key in ("chat_template_hash", "chat_template_sha256", "template_hash"):
                if where.get(key):
                    return str(where[key])
        return None

    @property
    def completions(self) -> dict[tuple[str, int], dict[str, Any]]:
        """``completions.jsonl`` rows by (key, sample); empty for a scored-only run."""
        if self._completions is None:
            path = self.path / "completions.jsonl"
            self._completions = {}
            if path.is_file():
                for _, row in read_jsonl(path, what="completions file"):
                    if "key" in row:
                        self._completions[row_id(row)] = row
        return self._completions

    def finish_reasons(self) -> list[str | None]:
        comp = self.completions
        return [comp.get(row_id(r), {}).get("finish_reason") for r in self.verdicts]

    def truncation_rate(self) -> float | None:
        reasons = [f for f in self.finish_reasons() if f is not None]
        if reasons:
            return sum(f == "length" for f in reasons) / len(reasons)
        return (self.metrics or {}).get("truncation_rate")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; is {path.parent} a run folder "
                        "(made by `ifharness score` or `ifharness run`)?") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e}); re-create the run folder") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object")
    return obj


def _check_row(path: Path, line: int, row: dict[str, Any]) -> None:
    ids = row.get("instruction_id_list")
    if "key" not in row or not isinstance(ids, list):
        raise DataError(f"{path}:{line}: a verdict row needs 'key' and 'instruction_id_list'")
    for mode in ("strict", "loose"):
        v = row.get(mode)
        if not isinstance(v, list) or len(v) != len(ids) or any(
            x is not None and not isinstance(x, bool) for x in v
        ):
            raise DataError(f"{path}:{line}: '{mode}' must be a list of true/false/null, one "
                            f"per instruction ({len(ids)})")
    if "sample" in row and not isinstance(row["sample"], int):
        raise DataError(f"{path}:{line}: 'sample' must be an integer")


def load_run(path: str | Path) -> RunData:
    """Read one run folder; raises :class:`DataError` with the reason when it cannot."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; give a run folder (with run.json and "
                        "verdicts.jsonl)")
    run = _read_json(path / "run.json", "run.json")
    vpath = path / "verdicts.jsonl"
    if not vpath.is_file():
        raise DataError(f"{vpath} not found: the run was not scored yet "
                        "(run `ifharness score` on it, or wait for `ifharness run` to finish)")
    rows = []
    seen: dict[tuple[str, int], int] = {}
    for line, row in read_jsonl(vpath, what="verdicts file"):
        _check_row(vpath, line, row)
        rid = row_id(row)
        if rid in seen:
            raise DataError(f"{vpath}:{line}: key {rid[0]} sample {rid[1]} already on line "
                            f"{seen[rid]}")
        seen[rid] = line
        rows.append(row)
    if not rows:
        raise DataError(f"{vpath} holds no verdicts")
    metrics = None
    if (path / "metrics.json").is_file():
        metrics = _read_json(path / "metrics.json", "metrics.json")
    return RunData(path, run, rows, metrics)


def expand_run_args(args: Iterable[str]) -> list[Path]:
    """Run folders from arguments: folders, globs, or parents whose children are run folders."""
    out: list[Path] = []
    for arg in args:
        if GLOB_CHARS & set(arg):
            matches = sorted(Path(p) for p in glob.glob(arg))
            if not matches:
                raise DataError(f"no run folder matches {arg!r}")
        else:
            matches = [Path(arg)]
        for m in matches:
            if m.is_dir() and not (m / "run.json").exists():
                children = sorted(c for c in m.iterdir() if (c / "run.json").is_file())
                if children:
                    out.extend(children)
                    continue
            if GLOB_CHARS & set(arg) and not (m / "run.json").is_file():
                continue  # a glob may also match files and unrelated folders
            out.append(m)
    seen: set[Path] = set()
    unique = [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]
    if not unique:
        raise DataError("no run folders given")
    return unique


def headline_metric(run: RunData) -> str:
    """The metric a run is ranked and gated by: run.json's ``metric``, else its task's."""
    from .stats import METRICS

    name = run.run.get("metric")
    if isinstance(name, str) and name in METRICS:
        return name
    if run.task:
        try:
            from .loader import _spec_path

            name = _spec_path(run.task)[1].metric
        except Exception:  # noqa: BLE001 - an unknown or moved task keeps the default
            name = None
    return name if name in METRICS else "prompt_level_strict_acc"
