"""Edge kinds as declared data: the one owner of what an edge is and how a graph says so.

A node declares what it passes on (``sends``: latent, text or answer) in its
LangGraph node *metadata* (``builder.add_node(name, node, metadata=node.metadata)``,
or :func:`add_agent`); the edge leaving a node has that node's kind. Drawings,
reports and the CLI read the kinds back through LangGraph's public drawable
graph (``graph.get_graph().nodes[n].metadata``), never from LangGraph internals
and never from attributes glued onto a compiled graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from latent_graph.errors import InvalidArgumentError

EdgeKind = Literal["latent", "text"]
EDGE_KINDS: tuple[str, ...] = ("latent", "text")
DrawnKind = Literal["latent", "text", "plain", "tool"]
METADATA_KEY = "latent_graph"
TOOLS_SUFFIX = " tools"
"""A tool-using agent's tools are drawn as a pseudo node named ``agent + TOOLS_SUFFIX`` (a ``tool`` edge joins them)."""


def sends_metadata(sends: str, receives: str | None = None, branch: bool = False,
                   tools: Sequence[str] = ()) -> dict[str, Any]:
    """Node metadata declaring what the node passes on (``receives="text"``: a node on a foreign chat
    model, which turns a latent edge into it into a text edge; ``branch``: a parallel branch node;
    ``tools``: the names of the tools a tool-using agent may call)."""
    decl: dict[str, Any] = {"sends": sends}
    if receives is not None:
        decl["receives"] = receives
    if branch:
        decl["branch"] = "true"
    if tools:
        decl["tools"] = ",".join(tools)
    return {METADATA_KEY: decl}


class DrawnEdge(NamedTuple):
    """One edge as drawn: its kind, whether it is conditional (a router or ``Send``) and its label."""

    source: str
    target: str
    kind: DrawnKind
    conditional: bool
    label: str


def declared(graph: Any, key: str, xray: bool = False) -> dict[str, str]:
    """``{node: value}`` of one declared key (``sends``/``receives``/``branch``) for the nodes of a compiled graph."""
    out = {}
    for name, node in graph.get_graph(xray=xray).nodes.items():
        decl = (node.metadata or {}).get(METADATA_KEY) or {}
        if key in decl:
            out[str(name)] = str(decl[key])
    return out


def node_sends(graph: Any, xray: bool = False) -> dict[str, str]:
    """``{node: sends}`` for the nodes of a compiled graph that declared it."""
    return declared(graph, "sends", xray)


def converted_edges(graph: Any, xray: bool = False) -> set[tuple[str, str]]:
    """Latent edges into a node that only reads text: the sender's handle is decoded to a message on the way."""
    sends, receives = node_sends(graph, xray), declared(graph, "receives", xray)
    return {(e.source, e.target) for e in graph.get_graph(xray=xray).edges
            if sends.get(e.source) == "latent" and receives.get(e.target) == "text"}


def drawn_edges(graph: Any, xray: bool = False) -> list[DrawnEdge]:
    """Every edge of a compiled graph with its kind, from its senders' declarations (``xray``: subgraphs expanded).

    A latent edge into a node declared ``receives="text"`` is a text edge (see :func:`converted_edges`),
    and so is an answer passed on to another node (a subgraph's judger feeding the parent). Conditional edges keep LangGraph's label (the router's path name); one into a node declared
    ``branch`` (a parallel branch, e.g. ``Send`` fan-out) is labelled "Send" when it has none.
    """
    sends, branch = node_sends(graph, xray), declared(graph, "branch", xray)
    converted = converted_edges(graph, xray)
    out = []
    for e in graph.get_graph(xray=xray).edges:
        kind = "text" if (e.source, e.target) in converted else sends.get(e.source)
        if kind == "answer" and e.target != "__end__":
            kind = "text"  # an answer passed on inside a bigger graph is a message
        label = str(e.data) if e.data is not None else ("Send" if e.conditional and e.target in branch else "")
        out.append(DrawnEdge(e.source, e.target, kind if kind in EDGE_KINDS else "plain",  # type: ignore[arg-type]
                             bool(e.conditional), label))
    return out


def tool_edges(graph: Any, xray: bool = False) -> list[DrawnEdge]:
    """A ``tool`` edge from each tool-using agent to its tools' pseudo node (``agent + TOOLS_SUFFIX``), labelled
    with the tool names its metadata declares (drawings add these to :func:`drawn_edges`)."""
    return [DrawnEdge(node, node + TOOLS_SUFFIX, "tool", False, names.replace(",", ", "))
            for node, names in declared(graph, "tools", xray).items()]


def edge_kinds_of(graph: Any, xray: bool = False) -> dict[tuple[str, str], DrawnKind]:
    """Kind ("latent", "text" or "plain") of each edge of a compiled graph (see :func:`drawn_edges`)."""
    return {(e.source, e.target): e.kind for e in drawn_edges(graph, xray)}


def answer_nodes(graph: Any) -> set[str]:
    """Nodes that produce the final answer (their tokens are what a user wants streamed)."""
    return {n for n, s in node_sends(graph).items() if s == "answer"}


def parse_edges(edges: str | Sequence[str] | Mapping[str, str], senders: Sequence[str]) -> dict[str, EdgeKind]:
    """Kind of the edge leaving each sender: one kind for all, a list (in order) or a dict by name."""
    if isinstance(edges, str):
        kinds = {s: edges for s in senders}
    elif isinstance(edges, Mapping):
        unknown = set(edges) - set(senders)
        if unknown:
            raise InvalidArgumentError(f"edges names unknown agents {sorted(unknown)}; agents: {list(senders)}")
        kinds = {s: edges.get(s, "latent") for s in senders}
    else:
        edges = list(edges)
        if len(edges) != len(senders):
            raise InvalidArgumentError(
                f"{len(edges)} edge kinds for {len(senders)} edges (one per agent before the judger: {list(senders)})"
            )
        kinds = dict(zip(senders, edges))
    bad = {k for k in kinds.values() if k not in EDGE_KINDS}
    if bad:
        raise InvalidArgumentError(f"edge kinds must be 'latent' or 'text', got {sorted(bad)}")
    return kinds  # type: ignore[return-value]


def parse_edge_spec(spec: str) -> str | list[str] | dict[str, str]:
    """Parse a command-line edge spec: "latent", "text", "latent,text,latent" (one per edge) or "critic=text,..."."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise InvalidArgumentError("edges spec is empty; use latent, text, a list like latent,text,latent or critic=text")
    if any("=" in p for p in parts):
        pairs = [p.split("=", 1) for p in parts]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            raise InvalidArgumentError(f"edges {spec!r}: mixing name=kind pairs with plain kinds is not allowed")
        return {k.strip(): v.strip() for k, v in pairs}
    return parts[0] if len(parts) == 1 else parts
