"""The CI regression gate: is the candidate significantly worse than the baseline?

``ifharness gate --baseline A --candidate B`` pairs the two runs (``compare.py``) and checks
each gated metric (default: the task's headline metric; any metric of the table in
``ifharness.metrics``; every one is compared and shown) under one of two rules:

* ``drop`` (default): a regression is a drop larger than ``--max-drop`` that is also
  significant at ``--alpha`` (two-sided p from the exact McNemar test for prompt-level
  metrics of one-sample runs, from the paired bootstrap otherwise). A large but
  non-significant drop passes and is flagged "inconclusive" in the summary.
* ``ci``: stricter evidence, a regression only when the whole (1 - alpha) paired bootstrap
  interval of the delta lies below ``-max-drop``.

Exit codes: 0 no regression, 1 regression, 2 usage or data error (missing folder, different
task or data, unreadable file): the message says which. A metric with no value (everything
unscorable) fails the gate: a gate must not pass on no evidence.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import stats
from .compare import (
    CONSTRAINT_HEADER,
    compare_runs,
    constraint_rows,
    interval,
    md_table,
    pct,
    pvalue,
)
from .errors import IfharnessError
from .files import atomic_write_json, atomic_write_text
from .metrics import metric_names
from .rundir import RunData, load_run

EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
RULES = ("drop", "ci")


def parse_drop(text: str | float) -> float:
    """``0.02``, ``2pt`` and ``2%`` all mean two points; a bare number is a fraction."""
    s = str(text).strip().lower()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(pts?|points?|%)?", s)
    if not m:
        raise IfharnessError(f"--max-drop {text!r}: give a fraction (0.02) or points (2pt)")
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if value >= 1:
        raise IfharnessError(
            f"--max-drop {text!r} is 100 points or more; a bare number is a "
            "fraction of 1 (0.02 = 2 points), or write 2pt"
        )
    return value


def decide(
    result: dict[str, Any],
    metrics: Sequence[str],
    max_drop: float,
    alpha: float,
    rule: str = "drop",
) -> list[dict[str, Any]]:
    """One check per gated metric, with its status and whether it fails the gate."""
    checks = []
    for name in metrics:
        r = result["metrics"][name]
        delta, p, ci = r["delta"], r["p"], r["ci"]
        significant = bool(p is not None and p < alpha)
        if delta is None:
            regression, status = True, "no value (all unscorable?)"
        elif rule == "ci":
            regression = bool(ci is not None and ci[1] < -max_drop)
            status = (
                "regression" if regression else ("inconclusive drop" if delta < -max_drop else "ok")
            )
        else:
            regression = bool(delta < -max_drop and significant)
            status = (
                "regression" if regression else ("inconclusive drop" if delta < -max_drop else "ok")
            )
        if not regression and delta is not None and delta > 0 and significant:
            status = "improvement"
        checks.append(
            {
                "metric": name,
                "baseline": r["a"],
                "candidate": r["b"],
                "delta": delta,
                "ci": ci,
                "p": p,
                "test": r["test"],
                "significant": significant,
                "regression": regression,
                "status": status,
            }
        )
    return checks


def run_gate(
    baseline: RunData,
    candidate: RunData,
    metrics: Sequence[str] | None = None,
    max_drop: float = 0.02,
    alpha: float = 0.05,
    rule: str = "drop",
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> dict[str, Any]:
    """The JSON verdict: pass/fail, the checks, the settings and the full comparison."""
    if not 0 < alpha < 1:
        raise IfharnessError(f"--alpha {alpha}: must be between 0 and 1")
    if rule not in RULES:
        raise IfharnessError(f"--rule {rule!r}: choose {' or '.join(RULES)}")
    gated = list(metrics or [baseline.headline_metric(metric_names())])
    for m in gated:
        try:
            stats.check_metric(m)
        except ValueError as e:
            raise IfharnessError(str(e)) from None
    result = compare_runs(
        baseline, candidate, metric_names(), n_resamples=n_resamples, seed=seed, alpha=alpha
    )
    checks = decide(result, gated, max_drop, alpha, rule)
    passed = not any(c["regression"] for c in checks)
    return {
        "passed": passed,
        "exit_code": EXIT_PASS if passed else EXIT_REGRESSION,
        "rule": rule,
        "max_drop": max_drop,
        "alpha": alpha,
        "gated_metrics": gated,
        "checks": checks,
        "truncation_rate": {
            "baseline": baseline.truncation_rate(),
            "candidate": candidate.truncation_rate(),
        },
        "comparison": result,
    }


STATUS_MARK = {
    "regression": "❌ regression",
    "inconclusive drop": "⚠️ inconclusive drop",
    "improvement": "✅ improvement",
    "ok": "✅ ok",
}


def to_markdown(verdict: dict[str, Any], constraint_limit: int = 15) -> str:
    """A PR comment: the verdict first, then the evidence."""
    cmp = verdict["comparison"]
    head = "✅ no significant regression" if verdict["passed"] else "❌ significant regression"
    rule = (
        f"drop > {100 * verdict['max_drop']:.2f} pt and p < {verdict['alpha']}"
        if verdict["rule"] == "drop"
        else f"{round(100 * (1 - verdict['alpha']))}% interval of Δ entirely below "
        f"−{100 * verdict['max_drop']:.2f} pt"
    )
    p = cmp["paired"]
    lines = [
        f"## ifharness gate: {head}",
        "",
        (
            f"Task `{cmp['task']}` (data `{str(cmp['dataset_hash'])[:12]}`), "
            f"{p['prompts']} prompts paired ({p['rows']} rows). Baseline `{cmp['a']['model']}`, "
            f"candidate `{cmp['b']['model']}`. Fails on: {rule}."
        ),
        "",
        md_table(
            ("metric", "baseline %", "candidate %", "Δ pt", "CI (pt)", "p", "test", "status"),
            [
                [
                    c["metric"],
                    pct(c["baseline"]),
                    pct(c["candidate"]),
                    pct(c["delta"], True),
                    interval(c["ci"]),
                    pvalue(c["p"]),
                    c["test"],
                    STATUS_MARK.get(c["status"], c["status"]),
                ]
                for c in verdict["checks"]
            ],
        ),
        "",
    ]
    other = [m for m in cmp["metrics"] if m not in verdict["gated_metrics"]]
    if other:
        lines += [
            "<details><summary>Other metrics (not gated)</summary>",
            "",
            md_table(
                ("metric", "baseline %", "candidate %", "Δ pt", "CI (pt)", "p"),
                [
                    [
                        m,
                        pct(r["a"]),
                        pct(r["b"]),
                        pct(r["delta"], True),
                        interval(r["ci"]),
                        pvalue(r["p"]),
                    ]
                    for m, r in cmp["metrics"].items()
                    if m in other
                ],
            ),
            "",
            "</details>",
            "",
        ]
    lines += [
        (
            f"<details><summary>Per-constraint deltas ({cmp['constraint_mode']}; exploratory, "
            "not gated; exact McNemar, Benjamini-Hochberg q)</summary>"
        ),
        "",
        md_table(CONSTRAINT_HEADER, constraint_rows(cmp, constraint_limit)),
        "",
    ]
    if len(cmp["constraints"]) > constraint_limit:
        lines += [f"{len(cmp['constraints']) - constraint_limit} more in the JSON verdict.", ""]
    lines += ["</details>", ""]
    tr = verdict["truncation_rate"]
    if tr["baseline"] is not None or tr["candidate"] is not None:
        lines += [
            (
                f"Truncated answers (finish_reason=length): baseline {pct(tr['baseline'])}%, "
                f"candidate {pct(tr['candidate'])}%."
            ),
            "",
        ]
    lines += [f"> note: {n}" for n in cmp["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def gate_main(args: Any) -> int:
    """The ``ifharness gate`` command (arguments parsed by ``cli.py``)."""
    baseline, candidate = load_run(args.baseline), load_run(args.candidate)
    verdict = run_gate(
        baseline,
        candidate,
        args.metric,
        parse_drop(args.max_drop),
        args.alpha,
        args.rule,
        args.n_resamples,
        args.seed,
    )
    if args.json:
        atomic_write_json(Path(args.json), verdict)
    md = to_markdown(verdict)
    if args.markdown:
        atomic_write_text(Path(args.markdown), md)
    for c in verdict["checks"]:
        print(
            f"{c['metric']}: baseline {pct(c['baseline'])}  candidate {pct(c['candidate'])}  "
            f"delta {pct(c['delta'], True)} pt  CI {interval(c['ci'])}  p {pvalue(c['p'])} "
            f"({c['test']})  -> {c['status']}"
        )
    for n in verdict["comparison"]["notes"]:
        print(f"note: {n}", file=sys.stderr)
    print("gate: PASS" if verdict["passed"] else "gate: FAIL (significant regression)")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for c in verdict["checks"]:
            if c["regression"]:
                print(
                    f"::error title=ifharness gate::{c['metric']} dropped "
                    f"{pct(c['delta'], True)} pt (p {pvalue(c['p'])})"
                )
    return verdict["exit_code"]
