"""Agent nodes: plain callables that read and write :class:`~latent_graph.state.LatentState`.

``base.py`` (prompt assembly, inputs from state) ← ``latent.py`` (think) ← ``quiet.py``
(compact layout) and ``cross.py`` (another model's handle); ``text.py`` decodes (text agents,
the judger). :func:`add_agent` adds a node to any ``StateGraph`` with its edge kind declared.
"""

from latent_graph.nodes.base import AgentNode, add_agent, compose_prompt
from latent_graph.nodes.cross import CrossModelAgentNode
from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.nodes.models import StandInModel
from latent_graph.nodes.quiet import QuietAgentNode
from latent_graph.nodes.text import JudgerNode, TextAgentNode

__all__ = ["AgentNode", "CrossModelAgentNode", "JudgerNode", "LatentAgentNode", "QuietAgentNode", "StandInModel",
           "TextAgentNode", "add_agent", "compose_prompt"]
