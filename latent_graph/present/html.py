"""Self-contained offline HTML reports of graph runs (one run, or two side by side).

Everything is inline — CSS, a few lines of JS, SVG drawings — so the file opens
from disk with no network. Every piece of user or model text is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from html import escape
from pathlib import Path
from typing import Any

from latent_graph.errors import InvalidArgumentError
from latent_graph.present.draw import tool_calls_per_node
from latent_graph.present.edges import TOOLS_SUFFIX
from latent_graph.present.runtrace import RunTrace
from latent_graph.present.svg import bar_chart, graph_svg, line_chart, timeline_svg
from latent_graph.state import NodeRecord, StepRecord

CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;
background:#f9fafb}header{background:#312e81;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .meta{opacity:.85;font-size:12px}main{padding:16px 24px;max-width:1280px}section{background:#fff;
border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;margin:0 0 16px}h2{font-size:16px;margin:0 0 8px}
h3{font-size:15px;margin:0 0 6px}pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;padding:8px;
border-radius:6px;margin:4px 0;max-height:320px;overflow:auto}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f4f6}
.num{text-align:right;font-variant-numeric:tabular-nums}.badge{display:inline-block;border-radius:10px;padding:0 8px;
font-size:11px;color:#fff;vertical-align:middle}.kind-latent{background:#7c3aed}.kind-text{background:#6b7280}
.kind-answer{background:#b45309}.kind-tool{background:#047857}.plots{display:flex;flex-wrap:wrap;gap:12px}
.answer{font-size:15px;background:#ecfdf5;border-left:4px solid #10b981}.tok{display:inline-block;margin:1px 3px 1px 0;padding:0 4px;
border-radius:4px;background:rgba(124,58,237,var(--p));border:1px solid #ddd6fe;font-family:ui-monospace,monospace;
font-size:12px}.tok small{color:#374151}.muted{color:#6b7280}.bar{position:sticky;top:0;background:#eef2ff;
padding:8px 24px;border-bottom:1px solid #c7d2fe;z-index:2}select{max-width:70vw}.graphbox{overflow:auto}
.same{color:#047857}.diff{color:#b91c1c}.cols{display:grid;grid-template-columns:1fr 1fr;gap:12px}
a{color:#4338ca}
"""

JS = """
function showQ(i){document.querySelectorAll('[data-q]').forEach(function(e){e.hidden=(e.dataset.q!==String(i));});}
var sel=document.getElementById('qsel');if(sel){sel.addEventListener('change',function(){showQ(sel.value);});}
"""


def _tok(t: str) -> str:
    """A token made visible: spaces as middle dots, newlines as ⏎."""
    return escape(t.replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥") or "∅")


def _page(title: str, subtitle: str, bar: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{CSS}</style></head>'
        f'<body><header><h1>{escape(title)}</h1><div class="meta">{subtitle}</div></header>{bar}'
        f"<main>{body}</main><script>{JS}</script></body></html>\n"
    )


def _qdiv(i: int, inner: str, tag: str = "div") -> str:
    return f'<{tag} data-q="{i}"{" hidden" if i else ""}>{inner}</{tag}>'


def _selector(questions: Sequence[str]) -> str:
    if len(questions) <= 1:
        return ""
    opts = "".join(f'<option value="{i}">{i + 1}: {escape(q[:90])}</option>' for i, q in enumerate(questions))
    return (
        f'<div class="bar"><label>Question <select id="qsel">{opts}</select></label> '
        f'<span class="muted">({len(questions)} in this batch)</span></div>'
    )


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _row(values: Sequence[Any], cls: Sequence[str] = ()) -> str:
    return (
        "<tr>"
        + "".join(f'<td class="{cls[i] if i < len(cls) else ""}">{v}</td>' for i, v in enumerate(values))
        + "</tr>"
    )


def _step_cell(step: StepRecord, row: int, key: str, default: Any = "") -> Any:
    """Row ``row`` of the step's ``key`` (optional keys, recorded with inspect=k only), else ``default``."""
    vals = step.get(key)
    return vals[row] if isinstance(vals, list) and row < len(vals) else default


def _steps_table(steps: list[StepRecord], row: int) -> str:
    if not steps:
        return ""
    has_lens = any("lens" in s for s in steps)
    head = (
        "<tr><th>step</th><th>norm</th>"
        + ("<th>cosine</th><th>nearest input tokens</th><th>logit lens (top-k, prob)</th>" if has_lens else "")
        + "</tr>"
    )
    body = []
    for s in steps:
        at = partial(_step_cell, s, row)
        cells = [str(s["step"]), f"{float(at('norm', 0.0)):.3f}"]
        if has_lens:
            cells.append(f"{float(at('cosine', 0.0)):.3f}" if at("cosine", None) is not None else "")
            cells.append("".join(f'<span class="tok" style="--p:0.12">{_tok(t)}</span>' for t in at("nearest", [])))
            cells.append(
                "".join(
                    f'<span class="tok" style="--p:{min(1.0, float(p)):.2f}">{_tok(t)} '
                    f"<small>{float(p):.2f}</small></span>"
                    for t, p in at("lens", [])
                )
            )
        body.append(_row(cells, ["num", "num", "num"]))
    note = (
        ""
        if has_lens
        else '<p class="muted">Run with <code>--inspect K</code> (graph option '
        "<code>inspect=K</code>) to record the logit lens and nearest tokens of each step.</p>"
    )
    return f"<h4>Latent steps</h4><table>{head}{''.join(body)}</table>{note}"


def _tool_table(rows: list[list[dict[str, Any]]], row: int) -> str:
    """The tool calls of one question and the tool turns their results became."""
    calls = rows[row] if row < len(rows) else []
    if not calls:
        return '<h4>Tool turns</h4><p class="muted">no tool call for this question</p>'
    body = "".join(
        _row(
            [
                str(c.get("round", "")),
                escape(str(c.get("name", ""))),
                f"<code>{escape(json.dumps(c.get('arguments', {}), ensure_ascii=False))}</code>",
                f'<pre class="{"diff" if c.get("error") else ""}">{escape(str(c.get("result", "")))}</pre>',
            ],
            ["num"],
        )
        for c in calls
    )
    return (
        "<h4>Tool turns</h4><table><tr><th>round</th><th>tool</th><th>arguments (decoded)</th>"
        f"<th>result (entered the cache as a tool turn)</th></tr>{body}</table>"
    )


def _per_row(values: list[int]) -> str:
    return f"{sum(values)} ({', '.join(map(str, values))} per question)" if len(values) > 1 else str(sum(values))


def _node_panel(run: RunTrace, k: int, rec: NodeRecord, first: bool) -> str:
    name, kind = rec["node"], rec["kind"]
    t0 = min((r["start"] for r in run.trace), default=0.0)
    figs = [
        ("wall seconds", rec["wall_s"]),
        ("started at (s)", round(rec["start"] - t0, 3)),
        ("prompt tokens", _per_row(rec["prompt_tokens"])),
        ("latent steps (per question)", rec["latent_steps"]),
        ("generated tokens", _per_row(rec["generated_tokens"])),
        ("handle bytes before → after", f"{rec['handle_bytes_before']:,} → {rec['handle_bytes_after']:,}"),
        ("KV length", rec["kv_len"]),
        ("memory policy", rec["memory"]),
    ]
    if "kv_kept" in rec:  # a compressed latent edge (kv_keep / kv_budget)
        figs.append(("KV columns kept / total on its edge", f"{rec['kv_kept']:,} / {rec['kv_total']:,}"))
    tools = rec.get("tool_turns")
    if tools is not None:  # a tool-using agent
        figs += [
            ("tool rounds", rec.get("tool_rounds", 0)),
            ("tool calls", _per_row([len(r) for r in tools])),
            ("tool-turn tokens", _per_row(list(rec.get("tool_tokens") or [0]))),
        ]
    sent = run.texts_of(name) if kind in ("text", "answer") else None
    per_q = []
    for i in range(len(run.questions)):
        prompts = rec["prompts"]
        inner = ""
        if i < len(prompts):
            inner += f"<details open><summary>Prompt</summary><pre>{escape(str(prompts[i]))}</pre></details>"
        if sent is not None and i < len(sent):
            what = "Answer" if kind == "answer" else "Message sent (text edge)"
            inner += f"<details open><summary>{what}</summary><pre>{escape(str(sent[i]))}</pre></details>"
        if tools is not None:
            inner += _tool_table(tools, i)
        inner += _steps_table(rec["steps"], i)
        per_q.append(_qdiv(i, inner))
    anchor = f' id="node-{escape(name)}"' if first else ""
    badge = ' <span class="badge kind-tool">tools</span>' if tools is not None else ""
    return (
        f'<section class="nodepanel"{anchor}><h3>{k + 1}. {escape(name)} '
        f'<span class="badge kind-{escape(kind)}">{escape(kind)}</span>{badge}</h3>'
        f"{_kv_table(figs)}{''.join(per_q)}</section>"
    )


def _plots(run: RunTrace) -> str:
    labels = [r["node"] for r in run.trace]
    charts = [
        bar_chart(labels, {"wall s": [r["wall_s"] for r in run.trace]}, "Time per node", "seconds"),
        bar_chart(
            labels,
            {
                "prompt": [sum(r["prompt_tokens"]) for r in run.trace],
                "latent steps": [r["latent_steps"] * r["rows"] for r in run.trace],
                "generated": [sum(r["generated_tokens"]) for r in run.trace],
            },
            "Tokens per node (batch)",
            "tokens",
            stacked=True,
        ),
        line_chart(
            {"KV length": [r["kv_len"] for r in run.trace]}, "KV growth after each node", "columns", xlabels=labels
        ),
    ]
    norms = []
    for i in range(len(run.questions)):
        series = {}
        for r in run.trace:
            vals = [s["norm"][i] for s in r["steps"] if i < len(s["norm"])]
            if vals:
                series[r["node"]] = vals
        norms.append(_qdiv(i, line_chart(series, "Hidden-state norm per latent step", "L2 norm")))
    return f'<div class="plots">{"".join(charts)}{"".join(norms)}</div>'


def _subtitle(run: RunTrace) -> str:
    model = run.model.get("name", "?")
    digest = run.model.get("digest", "")
    return escape(
        f"model {model}"
        + (f" (fingerprint {digest})" if digest else "")
        + f" · graph {run.graph or '?'} · {len(run.questions)} question(s) · created {run.created}"
    )


def render_report(run: RunTrace, title: str | None = None) -> str:
    """The HTML text of a one-run report (see :func:`write_report`)."""
    tot = run.totals()
    answers = []
    for i, q in enumerate(run.questions):
        ctx = run.context[i] if run.context and i < len(run.context) else None
        a = run.answers[i] if i < len(run.answers) else "(no answer)"
        answers.append(
            _qdiv(
                i,
                f"<p><b>Question {i + 1}.</b> {escape(q)}</p>"
                + (f'<p class="muted">Context: {escape(ctx)}</p>' if ctx else "")
                + f'<pre class="answer">{escape(a)}</pre>',
            )
        )
    edge_kinds = {k: v for k, v in run.edges.items() if v != "plain"}
    summary = [
        ("total wall seconds", tot["wall_s"]),
        ("prompt tokens", tot["prompt_tokens"]),
        ("latent steps", tot["latent_steps"]),
        ("generated tokens", tot["generated_tokens"]),
        ("max KV length", tot["max_kv_len"]),
        ("max handle bytes", f"{tot['max_handle_bytes']:,}"),
    ]
    called = tool_calls_per_node(run.trace)
    if called:
        summary.append(("tool calls", ", ".join(f"{k}: {v}" for k, v in called.items())))
    options = [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in run.options.items()]
    panels, seen = [], set()
    for k, rec in enumerate(run.trace):
        panels.append(_node_panel(run, k, rec, rec.get("node") not in seen))
        seen.add(rec.get("node"))
    lit = [*run.executed, *(n + TOOLS_SUFFIX for n in tool_calls_per_node(run.trace))]  # tools that were called too
    graph = (
        graph_svg(run.nodes, run.edges, lit, run.edge_labels)
        if run.edges
        else '<p class="muted">no graph shape recorded</p>'
    )
    mermaid = (
        f"<details><summary>Mermaid source</summary><pre>{escape(run.mermaid)}</pre></details>" if run.mermaid else ""
    )
    body = (
        f"<section><h2>Final answer</h2>{''.join(answers)}</section>"
        f'<div class="cols"><section><h2>Graph (executed path highlighted)</h2><div class="graphbox">{graph}</div>'
        f"{mermaid}</section><section><h2>Run</h2>{_kv_table(summary)}<h4>Edges</h4>"
        f"{_kv_table(sorted(edge_kinds.items())) if edge_kinds else '<p class=muted>no agent edges</p>'}"
        f"<h4>Options</h4>{_kv_table(options) if options else '<p class=muted>none recorded</p>'}</section></div>"
        f"<section><h2>Timeline</h2>{timeline_svg(run.trace)}</section>"
        f"<section><h2>Plots</h2>{_plots(run)}</section>"
        f"<h2>Nodes</h2>{''.join(panels)}"
    )
    return _page(title or f"latent_graph run · {run.graph or 'graph'}", _subtitle(run), _selector(run.questions), body)


def _label(run: RunTrace) -> str:
    edges = run.options.get("edges")
    return f"{run.graph or 'graph'}" + (f" [{edges} edges]" if edges else "")


def render_compare(a: RunTrace, b: RunTrace, labels: Sequence[str] | None = None) -> str:
    """HTML comparing two runs of the same questions: time, tokens, answers side by side."""
    if list(a.questions) != list(b.questions):
        raise InvalidArgumentError(
            f"compare needs runs of the same questions: got {len(a.questions)} vs {len(b.questions)} "
            "questions, or the same number with different texts"
        )
    la, lb = labels or (_label(a), _label(b))
    ta, tb = a.totals(), b.totals()
    rows = []
    for key, name in (
        ("wall_s", "wall seconds"),
        ("node_s", "node seconds (sum)"),
        ("prompt_tokens", "prompt tokens"),
        ("latent_steps", "latent steps"),
        ("generated_tokens", "generated tokens"),
        ("max_kv_len", "max KV length"),
        ("max_handle_bytes", "max handle bytes"),
    ):
        ratio = f"{tb[key] / ta[key]:.2f}×" if ta[key] else "–"
        rows.append(_row([escape(name), f"{ta[key]:,}", f"{tb[key]:,}", ratio], ["", "num", "num", "num"]))
    table = (
        f"<table><tr><th>metric</th><th>A: {escape(la)}</th><th>B: {escape(lb)}</th><th>B / A</th></tr>"
        f"{''.join(rows)}</table>"
    )
    nodes = list(dict.fromkeys([r["node"] for r in a.trace] + [r["node"] for r in b.trace]))

    def per_node(run: RunTrace, key: str) -> list[float]:
        return [sum(float(r[key]) for r in run.records(n)) for n in nodes]  # type: ignore[literal-required]

    charts = [
        bar_chart(nodes, {"A": per_node(a, "wall_s"), "B": per_node(b, "wall_s")}, "Time per node", "seconds"),
        bar_chart(
            ["prompt", "latent steps", "generated"],
            {
                "A": [ta["prompt_tokens"], ta["latent_steps"], ta["generated_tokens"]],
                "B": [tb["prompt_tokens"], tb["latent_steps"], tb["generated_tokens"]],
            },
            "Tokens",
            "tokens",
        ),
        bar_chart(nodes, {"A": per_node(a, "kv_len"), "B": per_node(b, "kv_len")}, "KV length after node", "columns"),
    ]
    answers = []
    for i, q in enumerate(a.questions):
        x = a.answers[i] if i < len(a.answers) else ""
        y = b.answers[i] if i < len(b.answers) else ""
        same = '<span class="same">same</span>' if x.strip() == y.strip() else '<span class="diff">differ</span>'
        answers.append(_row([str(i + 1), escape(q), f"<pre>{escape(x)}</pre>", f"<pre>{escape(y)}</pre>", same]))
    graphs = "".join(
        f'<section><h3>{escape(lab)}</h3><div class="graphbox">'
        f"{graph_svg(r.nodes, r.edges, r.executed, r.edge_labels) if r.edges else ''}</div></section>"
        for lab, r in ((f"A: {la}", a), (f"B: {lb}", b))
    )
    body = (
        f"<section><h2>Summary</h2><p>A = {escape(la)}<br>B = {escape(lb)}</p>{table}</section>"
        f'<section><h2>Plots</h2><div class="plots">{"".join(charts)}</div></section>'
        f'<div class="cols">{graphs}</div>'
        f"<section><h2>Answers</h2><table><tr><th>#</th><th>question</th><th>A</th><th>B</th><th></th></tr>"
        f"{''.join(answers)}</table></section>"
    )
    sub = escape(
        f"{len(a.questions)} question(s) · model A {a.model.get('name', '?')} · model B {b.model.get('name', '?')}"
    )
    return _page("latent_graph comparison", sub, "", body)


def _write(text: str, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write report {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def write_report(run: RunTrace | str | Path, path: str | Path, title: str | None = None) -> Path:
    """Write a one-run HTML report; ``run`` is a :class:`RunTrace` or a trace JSON path."""
    run = run if isinstance(run, RunTrace) else RunTrace.load(run)
    return _write(render_report(run, title), path)


def write_compare(
    a: RunTrace | str | Path, b: RunTrace | str | Path, path: str | Path, labels: Sequence[str] | None = None
) -> Path:
    """Write a side-by-side HTML comparison of two runs of the same questions."""
    a = a if isinstance(a, RunTrace) else RunTrace.load(a)
    b = b if isinstance(b, RunTrace) else RunTrace.load(b)
    return _write(render_compare(a, b, labels), path)
