"""``report.html``: one static page per run folder, readable offline.

Metrics with intervals, per-family and per-constraint tables, and every sample: its prompt,
the answer, the reasoning and the verdict of each instruction, filterable by constraint and
by pass/fail (inline JavaScript; the filter also reads ``#constraint=ID&verdict=strict-fail``
from the address, so a link can point at the failures of one constraint).

Where the text comes from: the run folder alone (``rundir``): ``samples.jsonl`` for the
prompts and the bound kwargs of each instruction, ``completions.jsonl`` for the answer,
reasoning and finish reason. No task YAML, dataset or response file is reloaded. A folder
written by ifharness 0.1.0 lacks some of these; the page says so, never guesses.

All model and dataset text is HTML-escaped (``htmlkit.esc``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import density, hierarchy
from .htmlkit import bar_chart, ci_text, esc, line_chart, page, pct, table
from .metrics import composite_metrics, metric_names, prompt_pass
from .rundir import (
    CompletionRow,
    RunData,
    RunFolder,
    SampleRow,
    VerdictRow,
    row_id,
    row_work_id,
)
from .scoring import summarize

FILTER_JS = """
(function(){
  var cSel=document.getElementById('f-constraint'), vSel=document.getElementById('f-verdict'),
      kIn=document.getElementById('f-key'), shown=document.getElementById('f-shown');
  var samples=Array.prototype.slice.call(document.querySelectorAll('section.sample'));
  function match(s,c,v){
    if(v==='all'&&c==='all')return true;
    var parts=v==='all'?[null,null]:v.split('-');
    function ok(el){if(parts[0]===null)return true;
      if(parts[0]==='unscorable')return el.dataset.strict==='unscorable'||el.dataset.loose==='unscorable';
      return el.dataset[parts[0]]===parts[1];}
    if(c==='all')return ok(s);
    var insts=s.querySelectorAll('tr.inst');
    for(var i=0;i<insts.length;i++){if(insts[i].dataset.c===c&&ok(insts[i]))return true;}
    return false;
  }
  function apply(){
    var c=cSel.value,v=vSel.value,k=kIn.value.trim().toLowerCase(),n=0;
    samples.forEach(function(s){
      var show=match(s,c,v)&&(!k||s.dataset.key.toLowerCase().indexOf(k)>=0);
      s.style.display=show?'':'none';if(show)n++;});
    shown.textContent=n+' of '+samples.length+' samples shown';
    document.body.setAttribute('data-shown',String(n));
  }
  var params=new URLSearchParams(location.hash.slice(1));
  if(params.get('constraint')){cSel.value=params.get('constraint');if(!cSel.value)cSel.value='all';}
  if(params.get('verdict')){vSel.value=params.get('verdict');if(!vSel.value)vSel.value='all';}
  [cSel,vSel].forEach(function(e){e.addEventListener('change',apply);});
  kIn.addEventListener('input',apply);
  apply();
})();
"""  # noqa: E501 (a JS block: the page's bytes stay as they are)


def _verdict_word(v: bool | None) -> str:
    return "unscorable" if v is None else ("pass" if v else "fail")


def _samples(run: RunData, notes: list[str]) -> dict[str, SampleRow]:
    """The task as scored (prompts, bound kwargs) from ``samples.jsonl``, by
    :func:`~ifharness.rundir.row_work_id` (``str(key)``, with the turn in a conversation);
    of a large run, those of the rows shown only."""
    only = {row_work_id(r) for r in run.verdicts} if run.more_rows else None
    samples = run.folder.read_samples(only)
    if not samples:
        notes.append(
            "prompts and constraint kwargs are not shown: the run folder has no "
            "samples.jsonl (written by ifharness 0.1.0); re-score it with "
            "`ifharness score` to include them"
        )
    return samples


def _answers(run: RunData, notes: list[str]) -> dict[tuple[str, int], CompletionRow]:
    """(key, sample) -> completion row, from ``completions.jsonl``."""
    if not run.completions:
        notes.append(
            "answers are not shown: the run folder has no completions.jsonl "
            "(a scored folder written by ifharness 0.1.0); re-score it with "
            "`ifharness score` to include them"
        )
    return run.completions


def _messages_html(sample: SampleRow | None) -> str:
    msgs = None
    if sample is not None:
        msgs = [(m.get("role", "?"), m.get("content", "")) for m in sample["messages"]]
    if not msgs:
        return '<p class="muted small">prompt not available</p>'
    return "".join(
        f'<div class="small muted">{esc(role)}</div><pre class="prompt">{esc(text)}</pre>'
        for role, text in msgs
    )


def _sample_html(row: VerdictRow, comp: CompletionRow | None, sample: SampleRow | None) -> str:
    key, idx = row_id(row)
    strict = _verdict_word(prompt_pass(row["strict"]))
    loose = _verdict_word(prompt_pass(row["loose"]))
    kwargs = [i.get("kwargs") or {} for i in sample["instructions"]] if sample is not None else []
    unscorable = row.get("unscorable") or {}
    inst_rows = []
    for n, cid in enumerate(row["instruction_id_list"]):
        s, lo = _verdict_word(row["strict"][n]), _verdict_word(row["loose"][n])
        kw = json.dumps(kwargs[n], ensure_ascii=False, sort_keys=True) if n < len(kwargs) else ""
        reason = unscorable.get(str(n), "")
        inst_rows.append(
            f'<tr class="inst" data-c="{esc(cid)}" data-strict="{s}" data-loose="{lo}">'
            f'<td>{esc(cid)}</td><td class="small">{esc(kw)}</td><td class="{s}">{s}</td>'
            f'<td class="{lo}">{lo}</td><td class="small">{esc(reason)}</td></tr>'
        )
    title = f"key {key}" + (f" · sample {idx}" if "sample" in row else "")
    badges = (
        f'<span class="badge {strict}">strict {strict}</span>'
        f'<span class="badge {loose}">loose {loose}</span>'
    )
    if row.get("missing"):
        badges += '<span class="badge fail">no answer</span>'
    answer = '<p class="muted small">answer not available</p>'
    reasoning = ""
    if comp is not None:
        if comp.get("finish_reason"):
            badges += f'<span class="badge">finish: {esc(comp["finish_reason"])}</span>'
        answer = f'<pre class="answer">{esc(comp["response"])}</pre>'
        trace = comp.get("reasoning")
        if trace:
            reasoning = (
                f"<details><summary>reasoning ({len(trace)} chars)</summary>"
                f'<pre class="reasoning">{esc(trace)}</pre></details>'
            )
    return (
        f'<section class="sample" data-key="{esc(key)}" data-strict="{strict}" '
        f'data-loose="{loose}"><h3>{esc(title)}{badges}</h3>'
        f"<details open><summary>prompt</summary>{_messages_html(sample)}</details>"
        f'{reasoning}<div class="small muted">answer</div>{answer}'
        "<table><thead><tr><th>constraint</th><th>kwargs</th><th>strict</th><th>loose</th>"
        f"<th>note</th></tr></thead><tbody>{''.join(inst_rows)}</tbody></table></section>"
    )


def _group_table(groups: dict[str, Any]) -> str:
    rows = []
    for gid, g in groups.items():
        rows.append(
            [
                gid,
                g["n"],
                (pct(g["strict_acc"]), g["strict_acc"] or 0),
                ci_text(g.get("strict_ci")),
                (pct(g["loose_acc"]), g["loose_acc"] or 0),
                ci_text(g.get("loose_ci")),
                g.get("unscorable", 0),
            ]
        )
    return table(
        ("id", "n", "strict %", "95% CI", "loose %", "95% CI", "unscorable"),
        rows,
        numeric=(1, 2, 4, 6),
    )


def _preset_rows(run: RunData) -> list[tuple[str, Any]]:
    """The ``--preset`` of run.json: name and version, its source, what flags overrode."""
    p = run.info.preset
    if not p:
        return [("preset", "none")]
    overridden = p.get("overridden") or {}
    return [
        ("preset", f"{run.info.preset_label} ({p.get('benchmark', '')})"),
        ("preset source", p.get("source")),
        ("preset settings", json.dumps(p.get("settings") or {}, sort_keys=True)),
        (
            "preset overridden by flags",
            json.dumps(overridden, sort_keys=True) if overridden else "nothing",
        ),
    ]


def _reasoning_rows(run: RunData) -> list[tuple[str, Any]]:
    """The reasoning parser, its policy for traces that never close, and how many did."""
    parser = run.info.reasoning_parser
    gen = run.info.generation or {}
    rows: list[tuple[str, Any]] = []
    if parser:
        rows.append(("reasoning parser", f"{parser.get('name')} (choice {parser.get('choice')})"))
    if "unterminated_reasoning" in gen:
        rows.append(
            (
                "reasoning never closed",
                f"{gen['unterminated_reasoning']} answer(s); policy "
                f"{gen.get('unterminated_policy')}: "
                + (
                    "scored as an empty answer"
                    if gen.get("unterminated_policy") == "empty"
                    else "the raw text is scored"
                ),
            )
        )
    if gen.get("missing_answers"):
        rows.append(("missing answers", f"{gen['missing_answers']} (scored as not followed)"))
    return rows


def _generated_rows(run: RunData) -> list[tuple[str, Any]]:
    """A generated task's record (generator version, seed, rendering, set id, arguments,
    vocabulary), from run.json: what regenerates the set."""
    gen = getattr(run.info, "generated", None)
    if gen is None:
        return []
    record = gen.model_dump() if hasattr(gen, "model_dump") else dict(gen)
    return [("generated", json.dumps(record, sort_keys=True, ensure_ascii=False))]


def density_html(block: dict[str, Any]) -> str:
    """The density section: accuracy against the number of keywords, the primacy curve of
    each level, and a table of the per-level numbers with the error taxonomy."""
    levels = block.get("levels") or []
    xs = [lv["level"] for lv in levels]
    acc = line_chart(
        [("strict", [(lv["level"], lv["accuracy"], lv.get("ci")) for lv in levels])],
        "instruction-level accuracy (%) by number of keywords, 95% Wilson intervals",
        "keywords in the prompt (log scale)",
        log_x=True,
        x_ticks=xs,
        kind="density",
    )
    # deciles are only all filled from N = 10 on; smaller levels show when there is no other
    min_level = 10 if any(x >= 10 for x in xs) else 2
    primacy = line_chart(
        [
            (
                f"N={lv['level']}",
                [(d["decile"], d["accuracy"], None) for d in lv.get("primacy") or []],
            )
            for lv in levels
            if lv["level"] >= min_level
        ],
        "primacy: accuracy (%) by the keyword's position in the list, deciles",
        "position in the list (decile)",
        x_ticks=list(range(density.DECILES)),
        tick_labels=[f"{10 * d}-{10 * d + 10}%" for d in range(density.DECILES)],
        kind="primacy",
    )
    rows = []
    for lv in levels:
        e = lv["errors"]
        forms = ", ".join(f"{k} {v}" for k, v in e["modified_forms"].items() if v)
        spread = ""
        if lv.get("seed_std") is not None:
            spread = f"{pct(lv['seed_mean'], 1)} ± {pct(lv['seed_std'], 1)}"
        ratio = lv.get("recency_ratio")
        rows.append(
            [
                lv["level"],
                lv["n_samples"],
                lv["n_instructions"],
                (pct(lv["accuracy"]), lv["accuracy"] or 0),
                ci_text(lv.get("ci")),
                pct(lv.get("loose_accuracy")),
                spread,
                "" if ratio is None else f"{ratio:.2f}",
                e["missed"],
                pct(e["omitted_share"], 1),
                pct(e["modified_share"], 1),
                forms,
                ", ".join(
                    f"{k.replace('_', ' ')} {v}" for k, v in lv.get("flagged", {}).items() if v
                ),
            ]
        )
    head = (
        "keywords N",
        "samples",
        "instructions",
        "accuracy %",
        "95% CI",
        "loose %",
        "seed mean ± sd",
        "recency ratio",
        "missed",
        "omitted %",
        "modified %",
        "modified forms",
        "flagged answers",
    )
    return (
        f'<h2>Density</h2><p class="small muted">inclusion rule: {esc(block.get("rule"))}; '
        f"{esc(block.get('mode'))} verdicts. {esc(block.get('interval'))}.</p>"
        f'<div class="plots">{acc}</div><div class="plots">{primacy}</div>'
        f"{table(head, rows, numeric=(0, 1, 2, 3, 5, 7, 8, 9, 10))}"
        f'<p class="small muted">Primacy: {esc(block.get("primacy_method"))}. Recency ratio: '
        f"{esc(block.get('recency_method'))}. Errors: {esc(block.get('taxonomy_method'))}. "
        "Flagged: answers IFScale would have regenerated (a bare keyword list, under 20 words) "
        "and answers that copy the instruction lines back (a pass there may be an echo).</p>"
    )


def build_report(run: RunData) -> str:
    notes: list[str] = []
    samples = _samples(run, notes)
    answers = _answers(run, notes)
    if run.more_rows and run.metrics is not None:  # the first rows: the metrics of all
        metrics = run.metrics
        notes.append(
            f"the first {len(run.verdicts):,} of {len(run.verdicts) + run.more_rows:,} "
            "prompts are shown below; the metrics are those of all of them (metrics.json); "
            "every verdict is in verdicts.jsonl"
        )
    else:
        metrics = summarize(run.verdicts, run.finish_reasons())
    title = f"ifharness report · {run.task} · {run.model}"
    prov = [
        ("run folder", str(run.path)),
        ("task", run.task),
        ("suite", run.info.suite),
        ("data", run.info.data),
        ("dataset hash", run.dataset_hash),
        ("profile", run.profile),
        ("model", run.model),
        ("sampling", json.dumps(run.sampling, sort_keys=True) if run.sampling else None),
        ("chat template hash", run.chat_template_hash),
        *_preset_rows(run),
        *_reasoning_rows(run),
        *_generated_rows(run),
        ("versions", ", ".join(f"{k} {v}" for k, v in run.info.versions.items())),
    ]
    ci = metrics.get("ci") or {}
    mrows = [
        [
            name,
            (pct(metrics.get(name)), metrics.get(name) or 0),
            pct(metrics.get(f"{name}_stderr")) if metrics.get(f"{name}_stderr") else "",
            ci_text(ci.get(name)),
        ]
        for name in metric_names()
    ]
    compositions = " ".join(f"{c.name} = {c.description}." for c in composite_metrics())
    counts = (
        f"{metrics['n_prompts']} prompts, {metrics['n_instructions']} instructions, "
        f"{metrics['missing_responses']} missing answers, "
        f"{metrics['unscorable_instructions']} unscorable instructions"
    )
    if metrics.get("truncation_rate") is not None:
        counts += f", {pct(metrics['truncation_rate'])}% truncated (finish_reason=length)"
    fam = metrics["per_family"]
    chart = bar_chart(
        list(fam),
        [
            ("strict", [(g["strict_acc"], g.get("strict_ci"), g["n"]) for g in fam.values()]),
            ("loose", [(g["loose_acc"], g.get("loose_ci"), g["n"]) for g in fam.values()]),
        ],
        "accuracy per family (%), 95% Wilson intervals",
    )
    block = density.for_run(run)
    density_section = density_html(block) if block else ""
    ih_block = hierarchy.for_run(run)  # a generated hierarchy set: system / user / conflict
    hierarchy_section = hierarchy.html(ih_block) if ih_block else ""
    options = "".join(
        f'<option value="{esc(c)}">{esc(c)}</option>' for c in metrics["per_constraint"]
    )
    sample_html = "\n".join(
        _sample_html(r, answers.get(row_id(r)), samples.get(row_work_id(r))) for r in run.verdicts
    )
    body = f"""<h1>{esc(title)}</h1>
<p class="muted">{esc(counts)}</p>
{"".join(f'<p class="unscorable small">note: {esc(n)}</p>' for n in notes)}
<h2>Metrics</h2>
{table(("metric", "value %", "± SE", "95% CI (bootstrap)"), mrows, sortable=False, numeric=(1, 2))}
<p class="small muted">Intervals: {esc(ci.get("method", "n/a"))}, {esc(ci.get("n_resamples"))}
resamples, seed {esc(ci.get("seed"))}. {esc(compositions)}</p>
{density_section}
{hierarchy_section}
<h2>Provenance</h2>
{table(("field", "value"), prov, sortable=False)}
<h2>Per family</h2>
{chart}
{_group_table(fam)}
<h2>Per constraint</h2>
{_group_table(metrics["per_constraint"])}
<h2>Samples</h2>
<div class="controls"><label>constraint <select id="f-constraint"><option value="all">all
</option>{options}</select></label><label>verdict <select id="f-verdict">
<option value="all">all</option><option value="strict-fail">strict fail</option>
<option value="strict-pass">strict pass</option><option value="loose-fail">loose fail</option>
<option value="loose-pass">loose pass</option><option value="unscorable">unscorable</option>
</select></label><label>key <input id="f-key" size="12"></label>
<span id="f-shown" class="muted small"></span></div>
{sample_html}"""
    return page(title, body, FILTER_JS)


#: a report shows at most this many samples: a larger run's report is built from the first
#: rows and metrics.json, so it stays a page a browser opens and the time and memory it takes
#: do not grow with the run (the page of the 541 IFEval prompts is about 1.5 MB)
REPORT_ROWS = 5_000


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` into ``run_dir`` (or to ``out``) and return its path."""
    folder = RunFolder(run_dir)
    run = folder.load(max_rows=REPORT_ROWS)
    if run.more_rows and (
        run.metrics is None or density.is_density_run(run) or hierarchy.is_hierarchy_run(run)
    ):
        # no metrics.json to take the numbers from, or sections recomputed from every row
        run = folder.load()
    return folder.write_report(build_report(run), out)


def report_main(args: Any) -> int:
    """The ``ifharness report`` command."""
    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
