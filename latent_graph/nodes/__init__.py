"""Agent nodes: plain callables that read and write :class:`~latent_graph.state.LatentState`.

``base.py`` (prompt assembly, inputs from state) ← ``latent.py`` (think; ``QuietAgentNode``, the compact
layout's agent, does not restate the question) ← ``cross.py`` (another model's handle) and ``tools.py``
(tool calls and tool turns, then think; tools run through ``toolbox.py``); ``text.py`` decodes (text
agents, the judger); ``streaming.py`` carries custom events and tokens into LangGraph's streams.
:func:`add_agent` adds a node to any ``StateGraph`` with its edge kind declared.
"""

from latent_graph.nodes.base import AgentNode, add_agent, compose_prompt
from latent_graph.nodes.cross import CrossModelAgentNode
from latent_graph.nodes.models import StandInModel
from latent_graph.nodes.latent import LatentAgentNode, QuietAgentNode
from latent_graph.nodes.text import JudgerNode, TextAgentNode
from latent_graph.nodes.tools import ToolAgentNode

__all__ = ["AgentNode", "CrossModelAgentNode", "JudgerNode", "LatentAgentNode", "QuietAgentNode", "StandInModel",
           "TextAgentNode", "ToolAgentNode", "add_agent", "compose_prompt"]
