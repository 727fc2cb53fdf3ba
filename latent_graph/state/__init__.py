"""Plain-data graph state: the state schema and reducers, typed trace records, edge kinds, branch keys, threads.

Everything here is what LangGraph stores or shows: :class:`LatentState` (``schema.py``),
one :class:`NodeRecord` per node run (``trace.py``), the edge kinds nodes declare in their
metadata (``edges.py``; :mod:`latent_graph.present.edges` reads them back from a compiled graph),
Send-task branch keys (``branches.py``) and what a reused thread carries over (``threads.py``).
"""

from latent_graph.state.edges import EDGE_KINDS, METADATA_KEY, EdgeKind, parse_edges, sends_metadata
from latent_graph.state.schema import (
    CanonicalValue,
    GraphInput,
    GraphOutput,
    LatentState,
    Message,
    branches_reducer,
    canonical,
    inbox_reducer,
)
from latent_graph.state.trace import NodeRecord, StepRecord, ToolTurnRecord

__all__ = [
    "CanonicalValue",
    "EDGE_KINDS",
    "METADATA_KEY",
    "EdgeKind",
    "GraphInput",
    "GraphOutput",
    "LatentState",
    "Message",
    "NodeRecord",
    "StepRecord",
    "ToolTurnRecord",
    "branches_reducer",
    "canonical",
    "inbox_reducer",
    "parse_edges",
    "sends_metadata",
]
