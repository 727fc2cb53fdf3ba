"""Draw a compiled latent graph offline, with latent edges visibly different from text edges.

LangGraph's ``draw_mermaid_png()`` calls a web API, so images are rendered locally
with matplotlib instead. Edge kinds come from the node objects (an edge leaving a
latent agent is latent, leaving a text agent is text) or from the
``latent_edges`` map the prebuilt builders attach.

Styles: latent = thick purple ``==>``; text = dashed grey ``-.->``; other = plain.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latent_graph.errors import InvalidArgumentError

LATENT_COLOR = "#7c3aed"
TEXT_COLOR = "#6b7280"
START, END = "__start__", "__end__"


def _node_sends(graph: Any, name: str) -> str | None:
    spec = getattr(getattr(graph, "builder", None), "nodes", {}).get(name)
    runnable = getattr(spec, "runnable", None)
    func = getattr(runnable, "func", runnable)
    return getattr(func, "sends", None)


def edge_kinds_of(graph: Any) -> dict[tuple[str, str], str]:
    """Kind ("latent", "text" or "plain") of each edge of a compiled graph."""
    drawn = graph.get_graph()
    explicit = getattr(graph, "latent_edges", {}) or {}
    kinds = {}
    for e in drawn.edges:
        kind = explicit.get((e.source, e.target)) or _node_sends(graph, e.source)
        kinds[(e.source, e.target)] = kind if kind in ("latent", "text") else "plain"
    return kinds


def _nodes_and_edges(graph: Any) -> tuple[list[str], list[tuple[str, str, str]]]:
    drawn = graph.get_graph()
    kinds = edge_kinds_of(graph)
    nodes = list(drawn.nodes)
    edges = [(e.source, e.target, kinds[(e.source, e.target)]) for e in drawn.edges]
    return nodes, edges


def _label(name: str) -> str:
    return {START: "start", END: "end"}.get(name, name)


def to_mermaid(graph: Any, highlight: Iterable[str] = ()) -> str:
    """Mermaid flowchart text; latent edges thick purple, text edges dashed, executed nodes highlighted."""
    nodes, edges = _nodes_and_edges(graph)
    hot = set(highlight)
    lines = ["graph TD;"]
    for n in nodes:
        shape = f"([{_label(n)}])" if n in (START, END) else f"[{n}]"
        lines.append(f"    {n}{shape}" + (":::ran" if n in hot else ""))
    styles = []
    for i, (a, b, kind) in enumerate(edges):
        if kind == "latent":
            lines.append(f"    {a} == latent ==> {b};")
            styles.append(f"    linkStyle {i} stroke:{LATENT_COLOR},stroke-width:3px;")
        elif kind == "text":
            lines.append(f"    {a} -. text .-> {b};")
            styles.append(f"    linkStyle {i} stroke:{TEXT_COLOR},stroke-dasharray:5 5;")
        else:
            lines.append(f"    {a} --> {b};")
    lines += styles
    lines.append("    classDef ran fill:#fde68a,stroke:#b45309,stroke-width:2px;")
    return "\n".join(lines) + "\n"


def to_ascii(graph: Any) -> str:
    """Plain-text drawing: one line per edge, ``==latent==>`` / ``--text-->`` / ``---->``."""
    _, edges = _nodes_and_edges(graph)
    arrows = {"latent": "==latent==>", "text": "--text---->", "plain": "----------->"}
    width = max((len(_label(a)) for a, _, _ in edges), default=0)
    return "\n".join(f"{_label(a):>{width}} {arrows[k]} {_label(b)}" for a, b, k in edges) + "\n"


def _layers(nodes: list[str], edges: list[tuple[str, str, str]]) -> dict[str, int]:
    depth = {n: 0 for n in nodes}
    for _ in nodes:  # longest-path layering (graphs here are DAGs)
        for a, b, _k in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    return depth


def to_image(graph: Any, path: str | Path, highlight: Iterable[str] = ()) -> Path:
    """Render to PNG or SVG (by file extension) with matplotlib — no network needed."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InvalidArgumentError(f"image path must end in .png or .svg, got {path.name!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    nodes, edges = _nodes_and_edges(graph)
    depth = _layers(nodes, edges)
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
        }[kind]
        ax.annotate("", xy=(x1, y1 + 0.25), xytext=(x0, y0 - 0.25),
                    arrowprops=dict(arrowstyle="-|>", linestyle=style["ls"], color=style["color"], lw=style["lw"]))
        if kind != "plain":
            ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, kind, color=style["color"], fontsize=8)
    for n, (x, y) in pos.items():
        face = "#fde68a" if n in hot else ("#ede9fe" if n not in (START, END) else "#ffffff")
        ax.text(x, y, _label(n), ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.4", fc=face, ec="#4b5563"))
    ax.legend(handles=[Line2D([], [], color=LATENT_COLOR, lw=3, label="latent edge"),
                       Line2D([], [], color=TEXT_COLOR, lw=1.6, ls="--", label="text edge")],
              loc="lower right", fontsize=8, frameon=False)
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
    """Draw in ``fmt`` ("mermaid", "ascii", "png", "svg"); images need ``path``."""
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "ascii":
        return to_ascii(graph)
    if fmt in ("png", "svg"):
        if path is None:
            raise InvalidArgumentError(f"drawing as {fmt} needs an output path")
        return to_image(graph, path)
    raise InvalidArgumentError(f"unknown drawing format {fmt!r}; choose mermaid, ascii, png or svg")
