"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any

from .metrics import base_metrics


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def metrics_table(metrics: dict[str, Any], per: str = "per_family") -> str:
    lines = [f"{'metric':<26} {'value':>6}  {'± se':>5}"]
    for name in (b.name for b in base_metrics()):  # the metric table's base metrics
        se = metrics.get(f"{name}_stderr")
        lines.append(
            f"{name:<26} {_pct(metrics[name])}  {'' if se is None else f'{100 * se:5.2f}'}"
        )
    counts = (
        f"prompts {metrics['n_prompts']}, instructions {metrics['n_instructions']}, "
        f"missing answers {metrics['missing_responses']}, "
        f"unscorable instructions {metrics['unscorable_instructions']}"
    )
    lines.append(counts)
    if metrics.get("truncation_rate") is not None:
        lines.append(
            f"truncated (finish_reason=length): {_pct(metrics['truncation_rate']).strip()}%"
        )
    groups = metrics.get(per) or {}
    if groups:
        width = max(len(k) for k in groups)
        lines.append("")
        lines.append(f"{per.replace('per_', ''):<{width}} {'n':>5} {'strict':>7} {'loose':>7}")
        for name, g in groups.items():
            lines.append(
                f"{name:<{width}} {g['n']:>5} {_pct(g['strict_acc']):>7} {_pct(g['loose_acc']):>7}"
            )
    return "\n".join(lines)
