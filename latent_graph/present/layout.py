"""The drawable shape of a graph and its Graphviz ``dot`` layout (cycles, conditional edges, subgraphs).

:class:`Shape` is what every drawing draws: nodes (subgraphs expanded, ``sub:node``
grouped into clusters), and edges with their declared kind (latent / text / plain,
from :func:`latent_graph.present.edges.drawn_edges`, the one source of edge kinds),
whether they are conditional (dashed, labelled) and their label. :func:`to_dot`
writes Graphviz DOT; :func:`render` lays it out with ``dot`` through the python
``graphviz`` package (Debian/Ubuntu: ``apt-get install graphviz``). Where ``dot``
or the package is missing, :func:`render` returns None and says why once on
stderr; callers then fall back to their own simple layered layout.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph import END, START

from latent_graph.present.edges import DrawnEdge, drawn_edges, tool_edges

LATENT = "#7c3aed"
TEXT = "#6b7280"
TOOL = "#047857"
PLAIN = "#111827"
RAN = "#fde68a"
_WARNED: set[str] = set()


def label(name: str) -> str:
    """How a node name is shown (LangGraph's start/end as plain words, a subgraph node by its own name)."""
    return {START: "start", END: "end"}.get(name, name.rsplit(":", 1)[-1])


def node_id(name: str) -> str:
    """An identifier safe in mermaid and DOT."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass
class Shape:
    """Nodes and drawn edges of a graph; ``clusters`` groups subgraph nodes by subgraph name."""

    nodes: list[str]
    edges: list[DrawnEdge]
    clusters: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, graph: Any) -> Shape:
        """The shape of a compiled graph, subgraphs expanded."""
        tools = tool_edges(graph, xray=True)  # a tool-using agent's tools: a pseudo node beside it
        return cls.build(
            [*graph.get_graph(xray=True).nodes, *(e.target for e in tools)], [*drawn_edges(graph, xray=True), *tools]
        )

    @classmethod
    def build(cls, nodes: list[str], edges: list[DrawnEdge]) -> Shape:
        clusters: dict[str, list[str]] = {}
        for n in nodes:
            if ":" in n:
                clusters.setdefault(n.rsplit(":", 1)[0], []).append(n)
        return cls(nodes, edges, clusters)

    @classmethod
    def from_record(cls, nodes: list[str], edges: dict[str, str], labels: dict[str, str] | None = None) -> Shape:
        """From a run trace's ``nodes``, ``{"a->b": kind}`` and ``{"a->b": label}`` (conditional and tool edges)."""
        labels = labels or {}
        drawn = [
            DrawnEdge(
                k.split("->", 1)[0],
                k.split("->", 1)[1],
                v if v in ("latent", "text", "tool") else "plain",  # type: ignore[arg-type]
                k in labels and v != "tool",
                labels.get(k, ""),
            )
            for k, v in edges.items()
            if "->" in k
        ]
        return cls.build(list(nodes), drawn)

    def edge_record(self) -> tuple[dict[str, str], dict[str, str]]:
        """``({"a->b": kind}, {"a->b": label of a conditional edge, or a tool edge's tool names})`` for a run trace."""
        kinds = {f"{e.source}->{e.target}": e.kind for e in self.edges}
        return kinds, {
            f"{e.source}->{e.target}": e.label or "if" for e in self.edges if e.conditional or e.kind == "tool"
        }


def is_hot(name: str, hot: set[str]) -> bool:
    """Whether node ``name`` ran (trace records name the graph node; subgraph nodes by their own name)."""
    return name in hot or (":" in name and label(name) in hot)


def edge_text(e: DrawnEdge) -> str:
    """The words on an edge: its kind, plus the condition's label."""
    if e.kind == "tool":
        return f"tool turn · {e.label}" if e.label else "tool turn"
    words = [e.kind] if e.kind != "plain" else []
    if e.conditional:
        words.append(e.label or "if")
    return " · ".join(words)


def to_dot(shape: Shape, highlight: Iterable[str] = ()) -> str:
    """Graphviz DOT text: latent edges thick purple, text edges grey, conditional edges dashed and labelled."""
    hot = set(highlight)
    tools = {e.target for e in shape.edges if e.kind == "tool"}  # tools' pseudo nodes
    lines = [
        "digraph G {",
        '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.35, ranksep=0.45];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ede9fe", color="#4b5563", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]

    def node_line(n: str) -> str:
        attrs = {"label": label(n)}
        if n in (START, END):
            attrs.update(shape="oval", fillcolor="#ffffff")
        if n in tools:
            attrs.update(shape="hexagon", fillcolor="#d1fae5", color=TOOL)
        if is_hot(n, hot):
            attrs.update(fillcolor=RAN, color="#b45309", penwidth="2", URL=f"#node-{label(n)}")
        return f"  {node_id(n)} [" + ", ".join(f'{k}="{v}"' for k, v in attrs.items()) + "];"

    clustered = {n for members in shape.clusters.values() for n in members}
    for n in shape.nodes:
        if n not in clustered:
            lines.append(node_line(n))
    for i, (name, members) in enumerate(shape.clusters.items()):
        lines.append(f'  subgraph cluster_{i} {{ label="{name} (subgraph)"; style="rounded,dashed"; color="#9ca3af";')
        lines += ["  " + node_line(n) for n in members]
        lines.append("  }")
    for e in shape.edges:
        color = {"latent": LATENT, "text": TEXT, "tool": TOOL}.get(e.kind, PLAIN)
        width = {"latent": "3", "text": "1.6", "tool": "1.6"}.get(e.kind, "1")
        style = "dotted" if e.kind == "tool" else "dashed" if e.conditional or e.kind == "text" else "solid"
        text = edge_text(e)
        ran = (
            " ran"
            if (is_hot(e.source, hot) or e.source == START) and (is_hot(e.target, hot) or e.target == END)
            else ""
        )
        lines.append(
            f'  {node_id(e.source)} -> {node_id(e.target)} [color="{color}", penwidth={width}, '
            f'style={style}, label="{text}", fontcolor="{color}", class="{e.kind}{ran}"{", dir=both" if e.kind == "tool" else ""}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, fmt: str = "svg") -> bytes | None:
    """Lay out DOT with Graphviz ``dot``; None (and one message on stderr) when it is unavailable."""
    try:
        import graphviz

        return graphviz.Source(dot).pipe(format=fmt)
    except Exception as exc:  # ImportError, graphviz.ExecutableNotFound, a failing dot
        why = f"{type(exc).__name__}: {exc}"
        if why not in _WARNED:
            _WARNED.add(why)
            print(
                f"latent_graph: Graphviz 'dot' is unavailable ({why.splitlines()[0]}); using the simple "
                "built-in layout. Install it with: apt-get install graphviz && pip install graphviz",
                file=sys.stderr,
            )
        return None
