"""Sequential graph: planner → critic → refiner → judger (LatentMAS sequential roles), and the single agent.

Each edge can be latent (the handle flows on) or text (the sender decodes a
message and the receiver starts a fresh cache with that message in its prompt).
"""

from __future__ import annotations

from collections.abc import Mapping

from langgraph.graph import END, START
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import Unpack

from latent_graph.graphs import roles
from latent_graph.graphs.base import GraphKwargs, Team
from latent_graph.nodes import NodeModel


def build_sequential(
    model: NodeModel, *, agents: Mapping[str, str] | None = None, **kwargs: Unpack[GraphKwargs]
) -> CompiledStateGraph:
    """Build and compile a sequential agent chain ending in a judger.

    Args:
        model: The shared :class:`~latent_graph.engine.LocalLatentModel` (or its chat face), or a foreign
            LangChain chat model (then every edge is text).
        agents: Ordered ``{name: role instruction}``; default planner, critic, refiner.
            The first agent alone sees the per-question private ``context``.
        **kwargs: :class:`~latent_graph.graphs.base.GraphKwargs` (edges, steps, memory, sampling...).
    """
    agents = dict(roles.SEQUENTIAL if agents is None else agents)
    team = Team(model, kwargs, list(agents))
    prev = START
    for i, (name, instruction) in enumerate(agents.items()):
        team.add_agent(name, instruction, sees_context=i == 0)
        team.state_graph.add_edge(prev, name)
        prev = name
    team.add_judger("judger", team.judger, sees_context=not agents)
    team.state_graph.add_edge(prev, "judger")
    team.state_graph.add_edge("judger", END)
    return team.compile("sequential")


def build_single(
    model: NodeModel, *, instruction: str = roles.SINGLE, **kwargs: Unpack[GraphKwargs]
) -> CompiledStateGraph:
    """A single agent answering directly (the baseline); it sees any private context."""
    team = Team(model, kwargs, [])
    team.add_judger("single", instruction, sees_context=True)
    team.state_graph.add_edge(START, "single")
    team.state_graph.add_edge("single", END)
    return team.compile("single")
