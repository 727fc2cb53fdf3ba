"""Agent nodes: plain callables that read and write :class:`~latent_graph.graph.state.LatentState`."""

from latent_graph.graph.nodes.base import AgentNode, compose_prompt
from latent_graph.graph.nodes.cross import CrossModelAgentNode
from latent_graph.graph.nodes.latent import LatentAgentNode
from latent_graph.graph.nodes.models import StandInModel
from latent_graph.graph.nodes.text import JudgerNode, TextAgentNode

__all__ = ["AgentNode", "CrossModelAgentNode", "JudgerNode", "LatentAgentNode", "StandInModel", "TextAgentNode", "compose_prompt"]
