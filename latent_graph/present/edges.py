"""Edge kinds read back from a compiled graph: what drawings, reports and the CLI show.

Each node declared what it passes on in its metadata (:func:`latent_graph.state.edges.sends_metadata`);
this reads the declarations through LangGraph's public drawable graph
(``graph.get_graph().nodes[n].metadata``), never from LangGraph internals and never from
attributes glued onto a compiled graph.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from langgraph.pregel import Pregel

from latent_graph.state import EDGE_KINDS, METADATA_KEY

DrawnKind = Literal["latent", "text", "plain", "tool"]
TOOLS_SUFFIX = " tools"
"""A tool-using agent's tools are drawn as a pseudo node named ``agent + TOOLS_SUFFIX`` (a ``tool`` edge joins them)."""


class DrawnEdge(NamedTuple):
    """One edge as drawn: its kind, whether it is conditional (a router or ``Send``) and its label."""

    source: str
    target: str
    kind: DrawnKind
    conditional: bool
    label: str


def declared(graph: Any, key: str, xray: bool = False) -> dict[str, str]:
    """``{node: value}`` of one declared key (``sends``/``receives``/``branch``) for the nodes of a compiled graph.

    A compiled graph added as a node without a declaration of its own declares what its last node does (a
    prebuilt team: its judger's ``answer``), so ``builder.add_node("team", team)`` draws as what crosses.
    """
    out = {}
    for name, node in graph.get_graph(xray=xray).nodes.items():
        decl = (node.metadata or {}).get(METADATA_KEY) or {}
        if key in decl:
            out[str(name)] = str(decl[key])
        elif not decl and isinstance(node.data, Pregel):
            last = {e.source for e in node.data.get_graph().edges if e.target == "__end__"}
            inner = {v for n, v in declared(node.data, key).items() if n in last}
            if len(inner) == 1:
                out[str(name)] = inner.pop()
    return out


def node_sends(graph: Any, xray: bool = False) -> dict[str, str]:
    """``{node: sends}`` for the nodes of a compiled graph that declared it."""
    return declared(graph, "sends", xray)


def converted_edges(graph: Any, xray: bool = False) -> set[tuple[str, str]]:
    """Latent edges into a node that only reads text: the sender's handle is decoded to a message on the way."""
    sends, receives = node_sends(graph, xray), declared(graph, "receives", xray)
    return {
        (e.source, e.target)
        for e in graph.get_graph(xray=xray).edges
        if sends.get(e.source) == "latent" and receives.get(e.target) == "text"
    }


def drawn_edges(graph: Any, xray: bool = False) -> list[DrawnEdge]:
    """Every edge of a compiled graph with its kind, from its senders' declarations (``xray``: subgraphs expanded).

    A latent edge into a node declared ``receives="text"`` is a text edge (see :func:`converted_edges`).
    An answer passed on to another node (a subgraph's judger feeding the parent) is latent: the judger hands on
    its decoded handle (cache + answer) with the answer as a message; it is text when the judger runs on a
    foreign chat model (declared ``receives="text"``: it has no handle) or the reader reads text only.
    Conditional edges keep LangGraph's label (the router's path name); one into a node declared
    ``branch`` (a parallel branch, e.g. ``Send`` fan-out) is labelled "Send" when it has none.
    """
    sends, branch = node_sends(graph, xray), declared(graph, "branch", xray)
    receives = declared(graph, "receives", xray)
    converted = converted_edges(graph, xray)
    out = []
    for e in graph.get_graph(xray=xray).edges:
        kind = "text" if (e.source, e.target) in converted else sends.get(e.source)
        if kind == "answer" and e.target != "__end__":
            kind = "text" if "text" in (receives.get(e.source), receives.get(e.target)) else "latent"
        label = str(e.data) if e.data is not None else ("Send" if e.conditional and e.target in branch else "")
        out.append(
            DrawnEdge(
                e.source,
                e.target,
                kind if kind in EDGE_KINDS else "plain",  # type: ignore[arg-type]
                bool(e.conditional),
                label,
            )
        )
    return out


def tool_edges(graph: Any, xray: bool = False) -> list[DrawnEdge]:
    """A ``tool`` edge from each tool-using agent to its tools' pseudo node (``agent + TOOLS_SUFFIX``), labelled
    with the tool names its metadata declares (drawings add these to :func:`drawn_edges`)."""
    return [
        DrawnEdge(node, node + TOOLS_SUFFIX, "tool", False, names.replace(",", ", "))
        for node, names in declared(graph, "tools", xray).items()
    ]


def edge_kinds_of(graph: Any, xray: bool = False) -> dict[tuple[str, str], DrawnKind]:
    """Kind ("latent", "text" or "plain") of each edge of a compiled graph (see :func:`drawn_edges`)."""
    return {(e.source, e.target): e.kind for e in drawn_edges(graph, xray)}


def answer_nodes(graph: Any) -> set[str]:
    """Nodes that produce the final answer (their tokens are what a user wants streamed)."""
    return {n for n, s in node_sends(graph).items() if s == "answer"}
