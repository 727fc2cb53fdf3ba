"""Edge kinds as declared data: the one owner of what an edge is and how a graph says so.

A node declares what it passes on (``sends``: latent, text or answer) in its
LangGraph node *metadata* (``builder.add_node(name, node, metadata=node.metadata)``,
or :func:`add_agent`); the edge leaving a node has that node's kind. Reading the
kinds back from a compiled graph (drawings, reports, the CLI's answer nodes) is
:mod:`latent_graph.present.edges`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from latent_graph.errors import InvalidArgumentError

EdgeKind = Literal["latent", "text"]
EDGE_KINDS: tuple[str, ...] = ("latent", "text")
METADATA_KEY = "latent_graph"
"""The key of a node's metadata under which it declares its kind (:func:`sends_metadata`)."""


def sends_metadata(
    sends: str, receives: str | None = None, branch: bool = False, tools: Sequence[str] = ()
) -> dict[str, Any]:
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
        raise InvalidArgumentError(
            "edges spec is empty; use latent, text, a list like latent,text,latent or critic=text"
        )
    if any("=" in p for p in parts):
        pairs = [p.split("=", 1) for p in parts]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            raise InvalidArgumentError(f"edges {spec!r}: mixing name=kind pairs with plain kinds is not allowed")
        return {k.strip(): v.strip() for k, v in pairs}
    return parts[0] if len(parts) == 1 else parts
