"""Static, self-contained HTML pieces for the run report and the leaderboard.

One file per page, no network: CSS and JavaScript inline, plots as inline SVG built here.
Every piece of text that reaches a page goes through :func:`esc` (``html.escape`` with
quotes), model output above all: an answer holding ``<script>`` shows as text. As a second
line of defence each page carries a Content-Security-Policy that allows only its own script
(by hash), so an injected handler would not run even if something were left unescaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import math
from collections.abc import Sequence
from typing import Any

PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 9px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f4f4f6;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\2195";color:#aaa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.small{font-size:12px}.pass{color:#17803d;font-weight:600}
.fail{color:#c0392b;font-weight:600}.unscorable{color:#a66f00;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8fa;border:1px solid #e6e6ea;
padding:8px;margin:4px 0;max-height:420px;overflow:auto}
.sample{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}
.sample h3{font-size:14px;margin:0 0 4px}.badge{display:inline-block;padding:0 6px;
border-radius:4px;font-size:12px;margin-left:6px;background:#eee}
.badge.pass{background:#dff3e4}.badge.fail{background:#fbe3e0}.badge.unscorable{background:#fff1cc}
.controls{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #ddd;z-index:2}
.controls label{margin-right:14px}.wrap{overflow-x:auto}svg text{font-family:inherit}
"""  # noqa: E501 (a CSS block: the page's bytes stay as they are)

SORT_JS = """
function ifhSortable(table){
  var heads=table.querySelectorAll('thead th');
  heads.forEach(function(th,col){
    th.addEventListener('click',function(){
      var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
      var dir=th.dataset.dir==='asc'?'desc':'asc';
      heads.forEach(function(h){delete h.dataset.dir;});th.dataset.dir=dir;
      function val(r){var c=r.cells[col];if(!c)return '';var v=c.dataset.v!==undefined?c.dataset.v:c.textContent;
        var f=parseFloat(v);return (v!==''&&!isNaN(f)&&isFinite(v))?f:v.toLowerCase();}
      rows.sort(function(a,b){var x=val(a),y=val(b);
        if(typeof x!==typeof y){x=String(x);y=String(y);}
        var r=x<y?-1:x>y?1:0;return dir==='asc'?r:-r;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
}
document.querySelectorAll('table.sortable').forEach(ifhSortable);
"""  # noqa: E501 (a JS block: the page's bytes stay as they are)


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def ci_text(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def page(title: str, body: str, script: str = "") -> str:
    """A whole HTML document; ``script`` runs after the body (sorting is always included)."""
    js = SORT_JS + script + "\ndocument.body.setAttribute('data-ready','1');\n"
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f"<script>{js}</script>\n</body></html>\n"
    )


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    sortable: bool = True,
    numeric: Sequence[int] = (),
    attrs: str = "",
) -> str:
    """An HTML table; a cell may be ``(text, sort_value)`` or ``(text, sort_value, css)``.

    Texts are escaped here; pass :class:`Raw` for markup made by this module.
    """

    def cell(tag: str, i: int, c: Any) -> str:
        cls = ["num"] if i in numeric else []
        v = None
        if isinstance(c, tuple):
            c, v, *extra = c
            cls += list(extra)
        content = c if isinstance(c, Raw) else esc(c)
        a = f' class="{" ".join(cls)}"' if cls else ""
        a += "" if v is None else f' data-v="{esc(v)}"'
        return f"<{tag}{a}>{content}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>\n" for r in rows
    )
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}{attrs}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


class Raw(str):
    """Markup built by this module (already escaped): inserted as is."""


def _color(v: float | None) -> str:
    """Red (0) through amber to green (1); grey for no value."""
    if v is None or math.isnan(v):
        return "#e0e0e0"
    v = min(1.0, max(0.0, v))
    stops = ((0.0, (214, 69, 65)), (0.5, (246, 196, 69)), (1.0, (76, 164, 96)))
    for (x0, c0), (x1, c1) in itertools.pairwise(stops):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#4ca460"


def bar_chart(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[Any]]], title: str = ""
) -> str:
    """Grouped vertical bars, values in [0, 1]; a value may be ``(v, (lo, hi), n)``."""
    n_cat, n_ser = len(categories), max(1, len(series))
    bar = max(6, min(22, 120 // n_ser))
    group = n_ser * bar + 14
    left, top, height = 44, 28, 220
    width = max(left + n_cat * group + 20, 30 + 8 * len(title), left + 220 * min(4, len(series)))
    label_h = 14 + 4 * max((len(c) for c in categories), default=0)
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{top + height + label_h + 24 + 18 * ((n_ser + 3) // 4)}" class="chart">'
        ),
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{esc(title)}</text>',
    ]
    for tick in range(0, 101, 20):
        y = top + height - height * tick / 100
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e5e5"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
            f'text-anchor="end">{tick}</text>'
        )
    for i, cat in enumerate(categories):
        x0 = left + i * group + 7
        for j, (name, values) in enumerate(series):
            v = values[i]
            ci, n = None, None
            if isinstance(v, tuple):
                v, ci, n = v
            if v is None:
                continue
            h = height * v
            x = x0 + j * bar
            tip = (
                f"{name} · {cat}: {100 * v:.1f}%"
                + (f" {ci_text(ci)}" if ci else "")
                + (f" (n={n})" if n is not None else "")
            )
            out.append(
                f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar - 2}" '
                f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{esc(tip)}</title></rect>"
            )
            if ci:
                y_lo, y_hi = (top + height - height * c for c in ci)
                cx = x + (bar - 2) / 2
                out.append(
                    f'<line x1="{cx}" x2="{cx}" y1="{y_lo:.1f}" y2="{y_hi:.1f}" '
                    'stroke="#333" stroke-width="1"/>'
                )
        cx, cy = x0 + n_ser * bar / 2, top + height + 10
        out.append(
            f'<text x="{cx:.1f}" y="{cy}" font-size="11" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {cy})">{esc(cat)}</text>'
        )
    ly = top + height + label_h + 10
    for j, (name, _) in enumerate(series):
        lx = left + (j % 4) * 220
        y = ly + 18 * (j // 4)
        out.append(
            f'<rect x="{lx}" y="{y}" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{lx + 16}" y="{y + 11}" '
            f'font-size="12">{esc(name[:34])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def heat_map(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[Any]],
    title: str = "",
    kind: str | None = None,
) -> str:
    """Rows × columns of accuracies in [0, 1], coloured and labelled; a value may be
    ``(v, (lo, hi), n)`` for the tooltip. ``kind`` sets the ``<svg>``'s ``data-chart``, so a
    test (or a reader's script) can tell one map from another on a page with several."""
    cell_w, cell_h = 62, 20
    left = 14 + 7 * max((len(r) for r in rows), default=0)
    top = 34 + 4.5 * max((len(c[:40]) for c in columns), default=0)
    width = max(
        left + cell_w * len(columns) + 20 + 5 * max((len(c[:40]) for c in columns), default=0),
        20 + 8 * len(title),
    )
    height = top + cell_h * len(rows) + 10
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{height}" class="chart"'
            + (f' data-chart="{esc(kind)}"' if kind else "")
            + ">"
        ),
        f'<text x="4" y="16" font-size="13" font-weight="600">{esc(title)}</text>',
    ]
    for j, col in enumerate(columns):
        cx, cy = left + j * cell_w + cell_w / 2, top - 6
        out.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="11" transform="rotate(-40 '
            f'{cx:.1f} {cy:.1f})">{esc(col[:40])}<title>{esc(col)}</title></text>'
        )
    for i, name in enumerate(rows):
        y = top + i * cell_h
        out.append(
            f'<text x="{left - 6}" y="{y + 14:.1f}" font-size="11" '
            f'text-anchor="end">{esc(name)}</text>'
        )
        for j, v in enumerate(values[i]):
            ci, n = None, None
            if isinstance(v, tuple):
                v, ci, n = v
            x = left + j * cell_w
            tip = (
                f"{name} · {columns[j]}: "
                + ("no instances" if v is None else f"{100 * v:.1f}% {ci_text(ci)}")
                + (f" (n={n})" if n is not None else "")
            )
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{_color(v)}"><title>{esc(tip)}</title></rect>'
            )
            if v is not None:
                out.append(
                    f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + 14}" font-size="11" '
                    f'text-anchor="middle">{100 * v:.0f}</text>'
                )
    out.append("</svg>")
    return "\n".join(out)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float | None, Sequence[float] | None]]]],
    title: str = "",
    x_label: str = "",
    log_x: bool = False,
    x_ticks: Sequence[float] | None = None,
    tick_labels: Sequence[str] | None = None,
    kind: str = "line",
) -> str:
    """Lines of accuracies in [0, 1] over a numeric x, one per series, with interval bars.

    Each point is ``(x, y, ci)``; a ``None`` y leaves a gap (the line is broken there).
    ``log_x`` spaces x logarithmically, as density levels (1 … 500) want. The ``<svg>`` carries
    ``data-chart=kind`` so a test can find it."""
    left, top, width, height = 48, 28, 520, 220
    xs = sorted({p[0] for _, pts in series for p in pts} | set(x_ticks or ()))
    if not xs:
        xs = [0.0, 1.0]

    def tx(x: float) -> float:
        lo, hi = xs[0], xs[-1]
        if log_x:
            lo, hi, x = math.log10(max(lo, 1e-9)), math.log10(max(hi, 1e-9)), math.log10(x)
        return left + (0.5 if hi == lo else (x - lo) / (hi - lo)) * width

    def ty(y: float) -> float:
        return top + height - height * y

    legend_rows = (len(series) + 2) // 3
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{max(left + width + 30, left + 20 + 8 * len(title))}" '
            f'height="{top + height + 44 + 18 * legend_rows}" class="chart" '
            f'data-chart="{esc(kind)}">'
        ),
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{esc(title)}</text>',
    ]
    for tick in range(0, 101, 20):
        y = ty(tick / 100)
        out.append(
            f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick}</text>'
        )
    ticks = list(x_ticks) if x_ticks is not None else xs
    labels = list(tick_labels) if tick_labels is not None else [f"{t:g}" for t in ticks]
    for t, label in zip(ticks, labels):
        x = tx(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + height}" y2="{top + height + 4}" '
            f'stroke="#999"/><text x="{x:.1f}" y="{top + height + 16}" font-size="11" '
            f'text-anchor="middle">{esc(label)}</text>'
        )
    out.append(
        f'<text x="{left + width / 2:.1f}" y="{top + height + 32}" font-size="12" '
        f'text-anchor="middle">{esc(x_label)}</text>'
    )
    for j, (name, pts) in enumerate(series):
        color = PALETTE[j % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for xv, yv, ci in sorted(pts, key=lambda p: p[0]):
            if yv is None:
                runs.append([])
                continue
            runs[-1].append((tx(xv), ty(yv)))
            if ci:
                out.append(
                    f'<line x1="{tx(xv):.1f}" x2="{tx(xv):.1f}" y1="{ty(ci[0]):.1f}" '
                    f'y2="{ty(ci[1]):.1f}" stroke="{color}" stroke-opacity="0.5"/>'
                )
            tip = f"{name} · {xv:g}: {100 * yv:.1f}%" + (f" {ci_text(ci)}" if ci else "")
            out.append(
                f'<circle cx="{tx(xv):.1f}" cy="{ty(yv):.1f}" r="3" fill="{color}">'
                f"<title>{esc(tip)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{color}" '
                    f'stroke-width="2" class="series" data-series="{esc(name)}"/>'
                )
        lx = left + (j % 3) * 180
        ly = top + height + 42 + 18 * (j // 3)
        out.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 16}" y="{ly + 11}" font-size="12">{esc(name[:26])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
