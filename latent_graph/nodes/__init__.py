"""LangGraph wiring: agent nodes (plain callables) and the state they share."""

from latent_graph.nodes.base import AgentNode, compose_prompt
from latent_graph.nodes.cross import CrossModelAgentNode
from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.nodes.state import (
    GraphInput,
    GraphOutput,
    GraphOutputWithHandle,
    LatentState,
    branches_reducer,
    inbox_reducer,
)
from latent_graph.nodes.text import JudgerNode, TextAgentNode

__all__ = [
    "AgentNode",
    "CrossModelAgentNode",
    "GraphInput",
    "GraphOutput",
    "GraphOutputWithHandle",
    "JudgerNode",
    "LatentAgentNode",
    "LatentState",
    "TextAgentNode",
    "branches_reducer",
    "compose_prompt",
    "inbox_reducer",
]
