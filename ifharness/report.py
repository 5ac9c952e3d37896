"""``report.html``: one static page per run folder, readable offline.

Metrics with intervals, per-family and per-constraint tables, and every sample: its prompt,
the answer, the reasoning and the verdict of each instruction, filterable by constraint and
by pass/fail (inline JavaScript; the filter also reads ``#constraint=ID&verdict=strict-fail``
from the address, so a link can point at the failures of one constraint).

Where the text comes from: ``completions.jsonl`` for generated runs (answer, reasoning,
finish reason, and the prompt when it was recorded); the task itself, reloaded from
run.json's ``task``/``data``/``profile`` (prompts and constraint kwargs), when its dataset
hash still matches; for scored runs, the response file named in run.json when it is still
there. Whatever cannot be found is said so on the page, never guessed.

All model and dataset text is HTML-escaped (``htmlkit.esc``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import atomic_write_text
from .htmlkit import bar_chart, ci_text, esc, page, pct, table
from .rundata import RunData, load_run, row_id
from .scoring import summarize
from .stats import METRICS

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
"""


def _verdict_word(v: bool | None) -> str:
    return "unscorable" if v is None else ("pass" if v else "fail")


def _prompt_pass(values: list[bool | None]) -> str:
    if any(v is None for v in values):
        return "unscorable"
    return "pass" if all(values) else "fail"


def _load_task(run: RunData, notes: list[str]):
    """The run's task with its prompts, or None (with the reason in ``notes``)."""
    from .loader import load_task

    name, data = run.task, run.run.get("data")
    if not name:
        notes.append("run.json names no task: prompts are not shown")
        return None
    local = data if isinstance(data, str) and not data.startswith("hf:") and Path(data).is_file() \
        else None
    try:
        task = load_task(name, data=local, profile=run.profile)
    except Exception as e:  # noqa: BLE001 - a report is still useful without prompts
        notes.append(f"could not reload task {name!r} (data {data}): {e}; prompts come only "
                     "from completions.jsonl where recorded")
        return None
    if run.dataset_hash and task.data_hash != run.dataset_hash:
        notes.append(f"task {name!r} as loaded now ({task.data_origin}) has dataset hash "
                     f"{task.data_hash[:12]}, the run {run.dataset_hash[:12]}: its prompts are "
                     "not shown")
        return None
    return task


def _answers(run: RunData, task, notes: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """(key, sample) -> completion-like row: from completions.jsonl, else the response file."""
    if run.completions:
        return run.completions
    resp = run.run.get("responses")
    path = resp.get("path") if isinstance(resp, dict) else None
    if not path or not Path(path).is_file():
        notes.append("answers are not shown: no completions.jsonl in the run folder"
                     + (f" and the response file {path} is not found" if path else ""))
        return {}
    from .responses import coerce, read_responses

    try:
        if task is not None:
            joined = coerce(task.samples, path)
            return {(k, 0): {"text": a.text, "reasoning": a.reasoning,
                             "finish_reason": a.finish_reason} for k, a in joined.answers.items()}
        return {(str(r["key"]), 0): {"text": r["response"], "reasoning": r.get("reasoning"),
                                     "finish_reason": r.get("finish_reason")}
                for _, r in read_responses(path) if "key" in r}
    except Exception as e:  # noqa: BLE001
        notes.append(f"answers are not shown: reading {path} failed: {e}")
        return {}


def _messages_html(comp: dict[str, Any] | None, sample) -> str:
    msgs = None
    if comp and isinstance(comp.get("messages"), list):
        msgs = [(m.get("role", "?"), m.get("content", "")) for m in comp["messages"]
                if isinstance(m, dict)]
    elif comp and isinstance(comp.get("prompt"), str):
        msgs = [("user", comp["prompt"])]
    elif sample is not None:
        msgs = [(m.role, m.content) for m in sample.messages]
    if not msgs:
        return '<p class="muted small">prompt not available</p>'
    return "".join(f'<div class="small muted">{esc(role)}</div><pre class="prompt">{esc(text)}'
                   "</pre>" for role, text in msgs)


def _sample_html(row: dict[str, Any], comp: dict[str, Any] | None, sample) -> str:
    key, idx = row_id(row)
    strict, loose = _prompt_pass(row["strict"]), _prompt_pass(row["loose"])
    kwargs = [i.kwargs for i in sample.instructions] if sample is not None else []
    unscorable = row.get("unscorable") or {}
    inst_rows = []
    for n, cid in enumerate(row["instruction_id_list"]):
        s, lo = _verdict_word(row["strict"][n]), _verdict_word(row["loose"][n])
        kw = json.dumps(kwargs[n], ensure_ascii=False, sort_keys=True) if n < len(kwargs) else ""
        reason = unscorable.get(str(n), "")
        inst_rows.append(
            f'<tr class="inst" data-c="{esc(cid)}" data-strict="{s}" data-loose="{lo}">'
            f"<td>{esc(cid)}</td><td class=\"small\">{esc(kw)}</td><td class=\"{s}\">{s}</td>"
            f'<td class="{lo}">{lo}</td><td class="small">{esc(reason)}</td></tr>')
    title = f"key {key}" + (f" · sample {idx}" if "sample" in row else "")
    badges = (f'<span class="badge {strict}">strict {strict}</span>'
              f'<span class="badge {loose}">loose {loose}</span>')
    if row.get("missing"):
        badges += '<span class="badge fail">no answer</span>'
    answer = '<p class="muted small">answer not available</p>'
    reasoning = ""
    if comp is not None:
        if comp.get("finish_reason"):
            badges += f'<span class="badge">finish: {esc(comp["finish_reason"])}</span>'
        answer = f'<pre class="answer">{esc(comp.get("text") or comp.get("response") or "")}</pre>'
        if comp.get("reasoning"):
            reasoning = (f"<details><summary>reasoning ({len(comp['reasoning'])} chars)</summary>"
                         f'<pre class="reasoning">{esc(comp["reasoning"])}</pre></details>')
    return (
        f'<section class="sample" data-key="{esc(key)}" data-strict="{strict}" '
        f'data-loose="{loose}"><h3>{esc(title)}{badges}</h3>'
        f"<details open><summary>prompt</summary>{_messages_html(comp, sample)}</details>"
        f"{reasoning}<div class=\"small muted\">answer</div>{answer}"
        "<table><thead><tr><th>constraint</th><th>kwargs</th><th>strict</th><th>loose</th>"
        f"<th>note</th></tr></thead><tbody>{''.join(inst_rows)}</tbody></table></section>"
    )


def _group_table(groups: dict[str, Any]) -> str:
    rows = []
    for gid, g in groups.items():
        rows.append([gid, g["n"], (pct(g["strict_acc"]), g["strict_acc"] or 0),
                     ci_text(g.get("strict_ci")), (pct(g["loose_acc"]), g["loose_acc"] or 0),
                     ci_text(g.get("loose_ci")), g.get("unscorable", 0)])
    return table(("id", "n", "strict %", "95% CI", "loose %", "95% CI", "unscorable"), rows,
                 numeric=(1, 2, 4, 6))


def build_report(run: RunData) -> str:
    notes: list[str] = []
    task = _load_task(run, notes)
    answers = _answers(run, task, notes)
    samples = {str(s.key): s for s in task.samples} if task is not None else {}
    metrics = summarize(run.verdicts, run.finish_reasons())
    title = f"ifharness report · {run.task} · {run.model}"
    prov = [("run folder", str(run.path)), ("task", run.task), ("suite", run.run.get("suite")),
            ("data", run.run.get("data")), ("dataset hash", run.dataset_hash),
            ("profile", run.profile), ("model", run.model),
            ("sampling", json.dumps(run.sampling, sort_keys=True) if run.sampling else None),
            ("chat template hash", run.chat_template_hash),
            ("versions", ", ".join(f"{k} {v}" for k, v in (run.run.get("versions") or {}).items()))]
    ci = metrics.get("ci") or {}
    mrows = [[name, (pct(metrics.get(name)), metrics.get(name) or 0),
              pct(metrics.get(f"{name}_stderr")) if metrics.get(f"{name}_stderr") else "",
              ci_text(ci.get(name))] for name in METRICS]
    counts = (f"{metrics['n_prompts']} prompts, {metrics['n_instructions']} instructions, "
              f"{metrics['missing_responses']} missing answers, "
              f"{metrics['unscorable_instructions']} unscorable instructions")
    if metrics.get("truncation_rate") is not None:
        counts += f", {pct(metrics['truncation_rate'])}% truncated (finish_reason=length)"
    fam = metrics["per_family"]
    chart = bar_chart(list(fam), [("strict", [(g["strict_acc"], g.get("strict_ci"), g["n"])
                                              for g in fam.values()]),
                                  ("loose", [(g["loose_acc"], g.get("loose_ci"), g["n"])
                                             for g in fam.values()])],
                      "accuracy per family (%), 95% bootstrap intervals")
    options = "".join(f'<option value="{esc(c)}">{esc(c)}</option>'
                      for c in metrics["per_constraint"])
    sample_html = "\n".join(
        _sample_html(r, answers.get(row_id(r)), samples.get(str(r["key"]))) for r in run.verdicts)
    body = f"""<h1>{esc(title)}</h1>
<p class="muted">{esc(counts)}</p>
{''.join(f'<p class="unscorable small">note: {esc(n)}</p>' for n in notes)}
<h2>Metrics</h2>
{table(("metric", "value %", "± SE", "95% CI (bootstrap)"), mrows, sortable=False, numeric=(1, 2))}
<p class="small muted">Intervals: {esc(ci.get('method', 'n/a'))}, {esc(ci.get('n_resamples'))}
resamples, seed {esc(ci.get('seed'))}. ifeval_mean = mean of prompt and instruction strict
(Open LLM Leaderboard v2); mean4 = mean of all four.</p>
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


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` into ``run_dir`` (or to ``out``) and return its path."""
    run = load_run(run_dir)
    path = Path(out) if out else Path(run_dir) / "report.html"
    atomic_write_text(path, build_report(run))
    return path


def report_main(args: Any) -> int:
    """The ``ifharness report`` command."""
    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0

