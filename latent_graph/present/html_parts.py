"""The building blocks of the HTML reports: the inline style and script, tables and a node's panel.

:mod:`latent_graph.present.html` assembles them into a one-run report or a comparison. Every piece of user or
model text is escaped here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from html import escape
from typing import Any

from latent_graph.present.runtrace import RunTrace
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


def page(title: str, subtitle: str, bar: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{CSS}</style></head>'
        f'<body><header><h1>{escape(title)}</h1><div class="meta">{subtitle}</div></header>{bar}'
        f"<main>{body}</main><script>{JS}</script></body></html>\n"
    )


def qdiv(i: int, inner: str, tag: str = "div") -> str:
    return f'<{tag} data-q="{i}"{" hidden" if i else ""}>{inner}</{tag}>'


def selector(questions: Sequence[str]) -> str:
    if len(questions) <= 1:
        return ""
    opts = "".join(f'<option value="{i}">{i + 1}: {escape(q[:90])}</option>' for i, q in enumerate(questions))
    return (
        f'<div class="bar"><label>Question <select id="qsel">{opts}</select></label> '
        f'<span class="muted">({len(questions)} in this batch)</span></div>'
    )


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def table_row(values: Sequence[Any], cls: Sequence[str] = ()) -> str:
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
        body.append(table_row(cells, ["num", "num", "num"]))
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
        table_row(
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


def node_panel(run: RunTrace, k: int, rec: NodeRecord, first: bool) -> str:
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
        per_q.append(qdiv(i, inner))
    anchor = f' id="node-{escape(name)}"' if first else ""
    badge = ' <span class="badge kind-tool">tools</span>' if tools is not None else ""
    return (
        f'<section class="nodepanel"{anchor}><h3>{k + 1}. {escape(name)} '
        f'<span class="badge kind-{escape(kind)}">{escape(kind)}</span>{badge}</h3>'
        f"{kv_table(figs)}{''.join(per_q)}</section>"
    )
