"""Agent nodes: callables (and LangChain ``Runnable``s) that read and write :class:`~latent_graph.state.LatentState`.

``base.py`` (prompt assembly, inputs from state) ← ``latent.py`` (think) ← ``cross.py`` (another model's
handle) and ``tools.py`` (tool calls and tool turns, then think; tools run through ``toolbox.py``); ``text.py``
decodes (text agents, the judger); ``streaming.py`` carries custom events and tokens into LangGraph's streams (and gives a node called by hand
its caller's config, and ``ainvoke`` a cancellable worker so ``timeout=`` can stop it);
``model_kind.py`` tells which kind of model a node runs on (latent, foreign chat model, drawing stand-in).
:func:`add_agent` adds a node to any ``StateGraph`` with its edge kind declared.
"""

from latent_graph.nodes.base import AgentNode, add_agent, compose_prompt
from latent_graph.nodes.cross import CrossModelAgentNode
from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.nodes.model_kind import NodeModel, StandInModel, engine_of
from latent_graph.nodes.text import JudgerNode, TextAgentNode
from latent_graph.nodes.toolbox import ToolLimits
from latent_graph.nodes.tools import ToolAgentNode

__all__ = [
    "AgentNode",
    "CrossModelAgentNode",
    "JudgerNode",
    "LatentAgentNode",
    "NodeModel",
    "StandInModel",
    "TextAgentNode",
    "ToolAgentNode",
    "ToolLimits",
    "add_agent",
    "compose_prompt",
    "engine_of",
]
