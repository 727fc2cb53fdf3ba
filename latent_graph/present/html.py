"""Self-contained offline HTML reports of graph runs (one run, or two side by side).

Everything is inline — CSS, a few lines of JS, SVG drawings — so the file opens
from disk with no network. Every piece of user or model text is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

from latent_graph.errors import InvalidArgumentError
from latent_graph.present.draw import tool_calls_per_node
from latent_graph.present.edges import TOOLS_SUFFIX
from latent_graph.present.html_parts import kv_table, node_panel, page, qdiv, selector, table_row
from latent_graph.present.runtrace import RunTrace
from latent_graph.present.svg import bar_chart, graph_svg, line_chart, timeline_svg


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
        norms.append(qdiv(i, line_chart(series, "Hidden-state norm per latent step", "L2 norm")))
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
            qdiv(
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
        panels.append(node_panel(run, k, rec, rec.get("node") not in seen))
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
        f"{mermaid}</section><section><h2>Run</h2>{kv_table(summary)}<h4>Edges</h4>"
        f"{kv_table(sorted(edge_kinds.items())) if edge_kinds else '<p class=muted>no agent edges</p>'}"
        f"<h4>Options</h4>{kv_table(options) if options else '<p class=muted>none recorded</p>'}</section></div>"
        f"<section><h2>Timeline</h2>{timeline_svg(run.trace)}</section>"
        f"<section><h2>Plots</h2>{_plots(run)}</section>"
        f"<h2>Nodes</h2>{''.join(panels)}"
    )
    return page(title or f"latent_graph run · {run.graph or 'graph'}", _subtitle(run), selector(run.questions), body)


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
        rows.append(table_row([escape(name), f"{ta[key]:,}", f"{tb[key]:,}", ratio], ["", "num", "num", "num"]))
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
        answers.append(table_row([str(i + 1), escape(q), f"<pre>{escape(x)}</pre>", f"<pre>{escape(y)}</pre>", same]))
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
    return page("latent_graph comparison", sub, "", body)


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
