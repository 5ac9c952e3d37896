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
* ``noninferiority`` (chosen by ``--equivalence-margin M``; ``--max-drop`` is then unused): the
  burden of proof is reversed, the gate passes only when the candidate is *shown* to be no
  worse than the baseline by more than ``M``: the one-sided test of H0 ``delta <= -M``
  against H1 ``delta > -M`` (``delta = candidate - baseline``) has ``p_lower < alpha``.
  ``p_lower = (#{d_i <= -M} + 1) / (B + 1)`` over the ``B`` paired-bootstrap differences
  ``d_i`` (``stats.one_sided_bootstrap``; the same resampled prompts for both runs), for
  every metric, prompt-level ones too: the exact McNemar test has no form for a margin.
  This is the lower half of TOST; the upper test (``delta >= +M``) is reported, not gated:
  a candidate much *better* than the baseline must not fail a CI gate. A small run that
  cannot show non-inferiority fails ("not shown"), unlike the ``drop`` rule.

The summary (text, Markdown, JSON) also gives the flips: prompts passed only by the baseline
and only by the candidate (the discordant pairs of McNemar). Either side may be an lm-eval
``--log_samples`` file of an ``ifharness_*`` task (``compare.load_input``), re-scored in memory.

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
    flip_lines,
    interval,
    load_input,
    md_table,
    p_text,
    pct,
    pvalue,
)
from .errors import IfharnessError
from .files import atomic_write_json, atomic_write_text
from .metrics import TraceMetric, get_metric, headline_names, metric_names
from .rundir import RunData

EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
RULES = ("drop", "ci", "noninferiority")


def parse_drop(text: str | float, flag: str = "--max-drop") -> float:
    """``0.02``, ``2pt`` and ``2%`` all mean two points; a bare number is a fraction."""
    s = str(text).strip().lower()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(pts?|points?|%)?", s)
    if not m:
        raise IfharnessError(f"{flag} {text!r}: give a fraction (0.02) or points (2pt)")
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if value >= 1:
        raise IfharnessError(
            f"{flag} {text!r} is 100 points or more; a bare number is a "
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
        tost = r.get("tost")
        if delta is None:
            regression, status = True, "no value (all unscorable?)"
        elif rule == "noninferiority":
            regression = not (tost and tost["noninferior"])
            status = "non-inferiority not shown" if regression else "non-inferior"
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
                "p_is_bound": bool(r.get("p_is_bound")),
                "test": r["test"],
                "significant": significant,
                "regression": regression,
                "status": status,
                **({"tost": tost} if tost is not None else {}),
            }
        )
    return checks


def _paired_metric(name: str, baseline: RunData) -> str:
    """The metric of the verdict rows that ``name`` is: itself, or for a trace metric (ReasonIF's
    ``reasonif_ifs``) the base metric it applies to the trace. A ``check: reasoning`` run's rows
    hold the trace's verdicts, so that metric pairs as it is; a ``check: both`` run's rows are
    the answer's, and pairing its trace is not supported (gate on the answer's metrics)."""
    try:
        metric = get_metric(name)
    except ValueError as e:
        raise IfharnessError(str(e)) from None
    if not isinstance(metric, TraceMetric):
        return name
    check = (baseline.metrics or {}).get("check")
    if check != "reasoning":
        raise IfharnessError(
            f"--metric {name}: the gate pairs verdict rows, which hold the trace's verdicts only "
            f"in runs of a check: reasoning task (this baseline: check: {check or 'answer'}); "
            "gate on the answer's metrics instead"
        )
    return metric.of


def run_gate(
    baseline: RunData,
    candidate: RunData,
    metrics: Sequence[str] | None = None,
    max_drop: float = 0.02,
    alpha: float = 0.05,
    rule: str = "drop",
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    margin: float | None = None,
) -> dict[str, Any]:
    """The JSON verdict: pass/fail, the checks, the settings and the full comparison.

    ``margin`` (a fraction) selects the ``noninferiority`` rule (``rule`` must then be
    ``drop``, the default, or ``noninferiority``)."""
    if not 0 < alpha < 1:
        raise IfharnessError(f"--alpha {alpha}: must be between 0 and 1")
    if rule not in RULES:
        raise IfharnessError(f"--rule {rule!r}: choose {' or '.join(RULES)}")
    if margin is not None:
        if rule == "ci":
            raise IfharnessError(
                "--rule ci and --equivalence-margin are two different rules; choose one"
            )
        rule = "noninferiority"
    elif rule == "noninferiority":
        raise IfharnessError("the noninferiority rule needs --equivalence-margin M")
    named = list(metrics or [baseline.headline_metric(headline_names())])
    gated = [_paired_metric(m, baseline) for m in named]
    for m in gated:
        try:
            stats.check_metric(m)
        except ValueError as e:
            raise IfharnessError(str(e)) from None
    try:
        result = compare_runs(
            baseline,
            candidate,
            metric_names(),
            n_resamples=n_resamples,
            seed=seed,
            alpha=alpha,
            margin=margin,
        )
    except ValueError as e:
        raise IfharnessError(str(e)) from None
    checks = decide(result, gated, max_drop, alpha, rule)
    passed = not any(c["regression"] for c in checks)
    return {
        "passed": passed,
        "exit_code": EXIT_PASS if passed else EXIT_REGRESSION,
        "rule": rule,
        "max_drop": max_drop,
        "equivalence_margin": margin,
        "alpha": alpha,
        "gated_metrics": gated,
        **({"gated_as": dict(zip(named, gated))} if named != gated else {}),
        "checks": checks,
        "flips": {
            name: {"baseline_only": f["a_only"], "candidate_only": f["b_only"], "pairs": f["pairs"]}
            for name, f in result["flips"].items()
        },
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
    "non-inferior": "✅ non-inferior",
    "non-inferiority not shown": "❌ non-inferiority not shown",
}


def to_markdown(verdict: dict[str, Any], constraint_limit: int = 15) -> str:
    """A PR comment: the verdict first, then the evidence."""
    cmp = verdict["comparison"]
    ni = verdict["rule"] == "noninferiority"
    margin = float(verdict.get("equivalence_margin") or 0.0)
    if ni:
        head = (
            f"✅ non-inferior within {100 * margin:.2f} pt"
            if verdict["passed"]
            else f"❌ non-inferiority within {100 * margin:.2f} pt not shown"
        )
        rule = (
            f"non-inferiority not shown: one-sided paired-bootstrap p of H0 Δ ≤ "
            f"−{100 * margin:.2f} pt not below {verdict['alpha']}"
        )
    else:
        head = "✅ no significant regression" if verdict["passed"] else "❌ significant regression"
        rule = (
            f"drop > {100 * verdict['max_drop']:.2f} pt and p < {verdict['alpha']}"
            if verdict["rule"] == "drop"
            else f"{round(100 * (1 - verdict['alpha']))}% interval of Δ entirely below "
            f"−{100 * verdict['max_drop']:.2f} pt"
        )
    ni_header = ("p (Δ ≤ −m)",) if ni else ()
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
            (
                "metric",
                "baseline %",
                "candidate %",
                "Δ pt",
                "CI (pt)",
                "p",
                "test",
                *ni_header,
                "status",
            ),
            [
                [
                    c["metric"],
                    pct(c["baseline"]),
                    pct(c["candidate"]),
                    pct(c["delta"], True),
                    interval(c["ci"]),
                    p_text(c),
                    c["test"],
                    *([_p_lower(c)] if ni else []),
                    STATUS_MARK.get(c["status"], c["status"]),
                ]
                for c in verdict["checks"]
            ],
        ),
        "",
        *[f"Flips, {line}.  " for line in flip_lines(cmp, "the baseline", "the candidate")],
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
                        p_text(r),
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


def _p_lower(check: dict[str, Any]) -> str:
    t = check.get("tost") or {}
    return pvalue(t.get("p_lower"), bool(t.get("p_lower_is_bound")))


def gate_main(args: Any) -> int:
    """The ``ifharness gate`` command (arguments parsed by ``cli.py``)."""
    baseline, candidate = load_input(args.baseline), load_input(args.candidate)
    margin = getattr(args, "equivalence_margin", None)
    verdict = run_gate(
        baseline,
        candidate,
        args.metric,
        parse_drop(args.max_drop),
        args.alpha,
        args.rule,
        args.n_resamples,
        args.seed,
        None if margin is None else parse_drop(margin, "--equivalence-margin"),
    )
    if args.json:
        atomic_write_json(Path(args.json), verdict)
    md = to_markdown(verdict)
    if args.markdown:
        atomic_write_text(Path(args.markdown), md)
    ni = verdict["rule"] == "noninferiority"
    for c in verdict["checks"]:
        extra = f"  p(delta <= -m) {_p_lower(c)}" if ni else ""
        print(
            f"{c['metric']}: baseline {pct(c['baseline'])}  candidate {pct(c['candidate'])}  "
            f"delta {pct(c['delta'], True)} pt  CI {interval(c['ci'])}  p {p_text(c)} "
            f"({c['test']}){extra}  -> {c['status']}"
        )
    for line in flip_lines(verdict["comparison"], "the baseline", "the candidate"):
        print(f"flips, {line}")
    for n in verdict["comparison"]["notes"]:
        print(f"note: {n}", file=sys.stderr)
    if verdict["passed"]:
        print("gate: PASS")
    elif ni:
        m = pct(verdict["equivalence_margin"])
        print(f"gate: FAIL (non-inferiority within {m} pt not shown)")
    else:
        print("gate: FAIL (significant regression)")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for c in verdict["checks"]:
            if c["regression"]:
                print(
                    f"::error title=ifharness gate::{c['metric']} {c['status']}: "
                    f"delta {pct(c['delta'], True)} pt (p {p_text(c)})"
                )
    return verdict["exit_code"]
