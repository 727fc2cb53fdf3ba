"""Draw a compiled latent graph offline, with latent edges visibly different from text edges.

LangGraph's ``draw_mermaid_png()`` calls a web API, so images are rendered locally
with matplotlib instead. Edge kinds are what each sender declared in its node
metadata (:func:`latent_graph.graph.edge_kinds_of`).

Styles: latent = thick purple ``==>``; text = dashed grey ``-.->``; other = plain.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.graph import END, START

from latent_graph.errors import InvalidArgumentError
from latent_graph.graph import edge_kinds_of
from latent_graph.present.svg import LATENT as LATENT_COLOR
from latent_graph.present.svg import TEXT as TEXT_COLOR
from latent_graph.present.svg import label as _label
from latent_graph.present.svg import layers


def _nodes_and_edges(graph: Any) -> tuple[list[str], list[tuple[str, str, str]]]:
    drawn = graph.get_graph()
    kinds = edge_kinds_of(graph)
    nodes = list(drawn.nodes)
    edges = [(e.source, e.target, kinds[(e.source, e.target)]) for e in drawn.edges]
    return nodes, edges


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
