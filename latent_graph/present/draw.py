"""Draw a compiled latent graph offline, with latent edges visibly different from text edges.

LangGraph's ``draw_mermaid_png()`` calls a web API, so images are rendered locally
with Graphviz ``dot`` instead (matplotlib where ``dot`` is missing). Edge kinds are
what each sender declared in its node metadata (:func:`latent_graph.present.edges.drawn_edges`).

Styles: latent = thick purple ``==>``; text = dashed grey ``-.->``; conditional edges
(routers, ``Send`` fan-out) dashed and labelled; subgraphs as blocks; other = plain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from langgraph.graph import END, START

from latent_graph.errors import InvalidArgumentError
from latent_graph.present.layout import LATENT as LATENT_COLOR
from latent_graph.present.layout import TEXT as TEXT_COLOR
from latent_graph.present.layout import TOOL as TOOL_COLOR
from latent_graph.present.layout import Shape, edge_text, is_hot, node_id, render, to_dot
from latent_graph.present.layout import label as _label
from latent_graph.present.svg import layers


def _nodes_and_edges(graph: Any) -> tuple[list[str], list[tuple[str, str, str]]]:
    shape = Shape.of(graph)
    return shape.nodes, [(e.source, e.target, e.kind) for e in shape.edges]


def kept_per_edge(trace: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """``{sender: (real columns kept, total)}`` of every compressed latent edge in a run's trace (summed over runs)."""
    out: dict[str, tuple[int, int]] = {}
    for rec in trace:
        if "kv_kept" in rec:
            k, t = out.get(str(rec["node"]), (0, 0))
            out[str(rec["node"])] = (k + int(rec["kv_kept"]), t + int(rec["kv_total"]))
    return out


def tool_calls_per_node(trace: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{agent: tool calls}`` of every tool-using agent that called a tool in a run's trace (all rows, all runs)."""
    out: dict[str, int] = {}
    for rec in trace:
        n = sum(len(row) for row in rec.get("tool_turns") or [])
        if n:
            out[str(rec["node"])] = out.get(str(rec["node"]), 0) + n
    return out


def to_mermaid(
    graph: Any,
    highlight: Iterable[str] = (),
    kept: Mapping[str, tuple[int, int]] | None = None,
    calls: Mapping[str, int] | None = None,
) -> str:
    """Mermaid flowchart text: latent edges thick purple, text edges dashed, conditional edges dashed and
    labelled, subgraphs as blocks, executed nodes highlighted; ``kept`` (:func:`kept_per_edge`) labels each
    compressed latent edge with the cache columns kept / total. A tool-using agent's tools are a hexagon joined
    by a dotted green ``tool turn`` edge, labelled with ``calls`` (:func:`tool_calls_per_node`) when it called them."""
    shape = Shape.of(graph)
    kept, calls = kept or {}, calls or {}
    tools = {e.target for e in shape.edges if e.kind == "tool"}
    hot = set(highlight)
    lines = ["graph TD;"]

    def node(n: str) -> str:
        shape_text = (
            f"([{_label(n)}])" if n in (START, END) else f"{{{{{_label(n)}}}}}" if n in tools else f"[{_label(n)}]"
        )
        return f"    {node_id(n)}{shape_text}" + (":::ran" if is_hot(n, hot) else "")

    clustered = {n for members in shape.clusters.values() for n in members}
    lines += [node(n) for n in shape.nodes if n not in clustered]
    for name, members in shape.clusters.items():
        lines.append(f"    subgraph {node_id(name)} [{name}]")
        lines += ["    " + node(n) for n in members]
        lines.append("    end")
    styles = []
    for i, e in enumerate(shape.edges):
        a, b, text = node_id(e.source), node_id(e.target), edge_text(e)
        color = {"latent": LATENT_COLOR, "text": TEXT_COLOR}.get(e.kind)
        if e.kind == "latent" and not e.conditional:
            words = f"latent {kept[e.source][0]}/{kept[e.source][1]} cols" if e.source in kept else "latent"
            lines.append(f"    {a} == {words} ==> {b};")
            styles.append(f"    linkStyle {i} stroke:{LATENT_COLOR},stroke-width:3px;")
        elif e.kind == "tool":
            count = calls.get(_label(e.source), 0)
            lines.append(
                f"    {a} -. {text}{f' · {count} call' + ('s' if count != 1 else '') if count else ''} .-> {b};"
            )
            styles.append(f"    linkStyle {i} stroke:{TOOL_COLOR},stroke-width:1.5px,stroke-dasharray:2 3;")
        elif text:
            lines.append(f"    {a} -. {text} .-> {b};")
            width = "3px" if e.kind == "latent" else "1.5px"
            styles.append(f"    linkStyle {i} stroke:{color or '#111827'},stroke-width:{width},stroke-dasharray:5 5;")
        else:
            lines.append(f"    {a} --> {b};")
    lines += styles
    lines.append("    classDef ran fill:#fde68a,stroke:#b45309,stroke-width:2px;")
    return "\n".join(lines) + "\n"


def to_ascii(graph: Any) -> str:
    """Plain-text drawing: one line per edge, ``==latent==>`` / ``--text---->`` / ``----------->``,
    conditional edges ``- - if - ->`` with their label."""
    shape = Shape.of(graph)
    arrows = {"latent": "==latent==>", "text": "--text---->", "plain": "----------->", "tool": "<-tool--->"}
    width = max((len(_label(e.source)) for e in shape.edges), default=0)
    return (
        "\n".join(
            f"{_label(e.source):>{width}} {arrows[e.kind] if not e.conditional else f'- -{edge_text(e)}- ->'} {_label(e.target)}"
            f"{f' ({e.label})' if e.kind == 'tool' and e.label else ''}"
            for e in shape.edges
        )
        + "\n"
    )


def to_dot_source(graph: Any, highlight: Iterable[str] = ()) -> str:
    """Graphviz DOT text of the graph (see :func:`latent_graph.present.layout.to_dot`)."""
    return to_dot(Shape.of(graph), highlight)


def to_image(graph: Any, path: str | Path, highlight: Iterable[str] = ()) -> Path:
    """Render to PNG or SVG (by file extension), laid out by Graphviz ``dot``; without ``dot`` a simple
    layered matplotlib drawing (a message on stderr says so). No network needed either way."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InvalidArgumentError(f"image path must end in .png or .svg, got {path.name!r}")
    laid = render(to_dot_source(graph, highlight), path.suffix[1:].lower())
    if laid is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(laid)
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    nodes, edges = _nodes_and_edges(graph)
    depth = layers(nodes, [(a, b) for a, b, _ in edges])
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(depth[n], []).append(n)
    pos = {}
    for d, names in rows.items():
        for i, n in enumerate(names):
            pos[n] = ((i - (len(names) - 1) / 2) * 2.6, -d * 1.4)
    hot = set(highlight)
    width = max(len(v) for v in rows.values())
    fig, ax = plt.subplots(figsize=(max(5.0, 2.6 * width + 1), 1.4 * len(rows) + 1))
    for a, b, kind in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        style = {
            "latent": dict(color=LATENT_COLOR, lw=3.0, ls="-"),
            "text": dict(color=TEXT_COLOR, lw=1.6, ls="--"),
            "plain": dict(color="#111827", lw=1.0, ls="-"),
            "tool": dict(color=TOOL_COLOR, lw=1.4, ls=":"),
        }[kind]
        ax.annotate(
            "",
            xy=(x1, y1 + 0.25),
            xytext=(x0, y0 - 0.25),
            arrowprops=dict(arrowstyle="-|>", linestyle=style["ls"], color=style["color"], lw=style["lw"]),
        )
        if kind != "plain":
            ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, kind, color=style["color"], fontsize=8)
    for n, (x, y) in pos.items():
        face = "#fde68a" if n in hot else ("#ede9fe" if n not in (START, END) else "#ffffff")
        ax.text(
            x,
            y,
            _label(n),
            ha="center",
            va="center",
            fontsize=10,
            bbox=dict(boxstyle="round,pad=0.4", fc=face, ec="#4b5563"),
        )
    ax.legend(
        handles=[
            Line2D([], [], color=LATENT_COLOR, lw=3, label="latent edge"),
            Line2D([], [], color=TEXT_COLOR, lw=1.6, ls="--", label="text edge"),
        ],
        loc="lower right",
        fontsize=8,
        frameon=False,
    )
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.5, max(xs) + 1.5)
    ax.set_ylim(-1.4 * (len(rows) - 1) - 0.8, 0.8)
    ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix[1:].lower(), dpi=120)
    plt.close(fig)
    return path


def draw(graph: Any, fmt: str = "mermaid", path: str | Path | None = None) -> str | Path:
    """Draw in ``fmt`` ("mermaid", "ascii", "dot", "png", "svg"); images need ``path``."""
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "ascii":
        return to_ascii(graph)
    if fmt == "dot":
        return to_dot_source(graph)
    if fmt in ("png", "svg"):
        if path is None:
            raise InvalidArgumentError(f"drawing as {fmt} needs an output path")
        return to_image(graph, path)
    raise InvalidArgumentError(f"unknown drawing format {fmt!r}; choose mermaid, ascii, dot, png or svg")
