"""The compact prompt layout: a latent chain that does not pile prompts up in the shared cache.

Why: in the sequential graph (the LatentMAS layout) every agent restates its role preamble *and* the
question, so the judger's cache holds the question four times and three role prompts;
a 135M model then echoes the preamble ("You are the Judger…") instead of answering.
The compact layout keeps one copy: the first agent reads the private context and the
question, later latent agents get a one-line instruction (plus any fact told to them
alone) and no question, and the judger gets a bare ``Question: …`` turn. What it changes on the relay
probes is measured in docs/results/relay_ablation.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from langgraph.graph import END, START
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import Unpack

from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs.base import GraphKwargs, Team
from latent_graph.nodes import LatentAgentNode, NodeModel, add_agent

COMPACT_FIRST = "Read the context and the question. Think about the fact needed to answer."
COMPACT_LATER = "Continue thinking about the fact needed to answer."


def build_compact(
    model: NodeModel, *, agents: Sequence[str] = ("planner", "critic", "refiner"), **kwargs: Unpack[GraphKwargs]
) -> CompiledStateGraph:
    """Latent chain ``agents`` → judger in the compact layout (same keyword options as ``build_sequential``;
    every edge is latent)."""
    if kwargs.get("edges", "latent") != "latent":
        raise InvalidArgumentError(f"the compact layout has latent edges only, got edges={kwargs['edges']!r}")
    team = Team(model, {**kwargs, "edges": "latent"}, list(agents))
    prev = START
    for i, name in enumerate(agents):
        add_agent(
            team.state_graph,
            LatentAgentNode(
                model=team.model,
                name=name,
                instruction=COMPACT_FIRST if i == 0 else COMPACT_LATER,
                sees_context=i == 0,
                memory=team.opts.memory,
                inspect=team.opts.inspect,
                restate=i == 0,
                max_questions=team.opts.max_questions,
                handle_store=team.handle_store,
                cache_budget=team.opts.cache_budget,
                **team.opts.latent(),
            ),
        )
        team.state_graph.add_edge(prev, name)
        prev = name
    team.add_judger("judger", "", sees_context=not agents)
    team.state_graph.add_edge(prev, "judger")
    team.state_graph.add_edge("judger", END)
    return team.compile("compact")
