"""Hierarchical graph: domain experts as parallel branches (fan-out) → judger (fan-in).

Latent experts each think on top of the same (possibly empty) prefix and write
their handle to ``branches[name]``; the judger merges them (see
:mod:`latent_graph.engine.merge` for how positions are assigned) so it sees every
branch. Text experts send messages instead; edges can be mixed per expert.
"""

from __future__ import annotations

from collections.abc import Mapping

from langgraph.graph import END, START
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import Unpack

from latent_graph.graphs import roles
from latent_graph.graphs.base import GraphKwargs, Team
from latent_graph.nodes import NodeModel


def build_hierarchical(
    model: NodeModel, *, experts: Mapping[str, str] | None = None, **kwargs: Unpack[GraphKwargs]
) -> CompiledStateGraph:
    """Build and compile parallel experts feeding one judger.

    Args:
        model: The shared :class:`~latent_graph.engine.LocalLatentModel` (or its chat face), or a foreign
            LangChain chat model (then every edge is text).
        experts: Ordered ``{name: instruction}``; default math, science and code experts.
            The first expert alone sees the per-question private ``context``.
        **kwargs: :class:`~latent_graph.graphs.base.GraphKwargs`; ``edges`` names one kind per expert.
    """
    experts = dict(roles.EXPERTS if experts is None else experts)
    team = Team(model, kwargs, list(experts))
    for i, (name, instruction) in enumerate(experts.items()):
        team.add_agent(name, instruction, sees_context=i == 0, branch=True)
        team.state_graph.add_edge(START, name)
    team.add_judger("judger", team.judger, sees_context=False)
    team.state_graph.add_edge(list(experts), "judger")
    team.state_graph.add_edge("judger", END)
    return team.compile("hierarchical")
