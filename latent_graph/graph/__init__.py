"""The LangGraph layer: state, typed traces, agent nodes, edge kinds, prebuilt graphs and runs.

Data path: a node (``nodes/latent.py`` / ``nodes/text.py``) reads the handle from
:class:`LatentState` (``state.py``), calls the engine, and writes the new handle
and one :class:`NodeRecord` (``trace.py``) back; the judger decodes the answer.
"""

from latent_graph.graph.edges import EDGE_KINDS, EdgeKind, add_agent, answer_nodes, edge_kinds_of, parse_edges
from latent_graph.graph.nodes import (
    AgentNode,
    CrossModelAgentNode,
    JudgerNode,
    LatentAgentNode,
    StandInModel,
    TextAgentNode,
    compose_prompt,
)
from latent_graph.graph.prebuilt import build_compact, build_hierarchical, build_sequential, build_single
from latent_graph.graph.run import GRAPHS, build_graph, execute
from latent_graph.graph.state import (
    GraphInput,
    GraphOutput,
    GraphOutputWithHandle,
    LatentState,
    Message,
    branches_reducer,
    inbox_reducer,
)
from latent_graph.graph.trace import NodeRecord, StepRecord

__all__ = [
    "EDGE_KINDS",
    "GRAPHS",
    "AgentNode",
    "CrossModelAgentNode",
    "EdgeKind",
    "GraphInput",
    "GraphOutput",
    "GraphOutputWithHandle",
    "JudgerNode",
    "LatentAgentNode",
    "LatentState",
    "Message",
    "NodeRecord",
    "StandInModel",
    "StepRecord",
    "TextAgentNode",
    "add_agent",
    "answer_nodes",
    "branches_reducer",
    "build_compact",
    "build_graph",
    "build_hierarchical",
    "build_sequential",
    "build_single",
    "compose_prompt",
    "edge_kinds_of",
    "execute",
    "inbox_reducer",
    "parse_edges",
]
