"""Plain-data graph state: the state schema and reducers, typed trace records, edge kinds, branch keys, threads.

Everything here is what LangGraph stores or shows: :class:`LatentState` (``schema.py``),
one :class:`NodeRecord` per node run (``trace.py``), the edge kinds nodes declare in their
metadata (``edges.py``), Send-task branch keys (``branches.py``) and what a reused thread
carries over (``threads.py``).
"""

from latent_graph.state.edges import EDGE_KINDS, EdgeKind, answer_nodes, edge_kinds_of, parse_edges
from latent_graph.state.schema import (
    GraphInput,
    GraphOutput,
    GraphOutputWithHandle,
    LatentState,
    Message,
    branches_reducer,
    inbox_reducer,
)
from latent_graph.state.trace import NodeRecord, StepRecord, ToolTurnRecord

__all__ = ["EDGE_KINDS", "EdgeKind", "GraphInput", "GraphOutput", "GraphOutputWithHandle", "LatentState", "Message",
           "NodeRecord", "StepRecord", "ToolTurnRecord", "answer_nodes", "branches_reducer", "edge_kinds_of",
           "inbox_reducer", "parse_edges"]
