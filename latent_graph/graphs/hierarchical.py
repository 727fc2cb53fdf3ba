"""Hierarchical graph: domain experts as parallel branches (fan-out) → judger (fan-in).

Latent experts each think on top of the same (possibly empty) prefix and write
their handle to ``branches[name]``; the judger merges them (see
:mod:`latent_graph.merge` for how positions are assigned) so it sees every
branch. Text experts send messages instead; edges can be mixed per expert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.graph import END, START

from latent_graph.graphs import roles
from latent_graph.graphs._build import (
    Options,
    agent_node,
    check_options,
    compile_graph,
    edge_kinds,
    judger_node,
    new_graph,
    with_realign,
)
from latent_graph.model import LocalLatentModel
from latent_graph.realign import Realigner


def build_hierarchical(
    model: LocalLatentModel,
    *,
    edges: str | Sequence[str] | Mapping[str, str] = "latent",
    experts: Mapping[str, str] | None = None,
    judger: str = roles.JUDGER,
    checkpointer: Any = None,
    interrupt_after: Sequence[str] | None = None,
    realign: str | Realigner | None = None,
    expose_handle: bool = False,
    **options: Any,
) -> Any:
    """Build and compile parallel experts feeding one judger.

    Args:
        model: The shared local model.
        edges: "latent", "text", a list (one per expert, in order) or ``{expert: kind}``.
        experts: Ordered ``{name: instruction}``; default math, science and code experts.
            The first expert alone sees the per-question private ``context``.
        judger, checkpointer, realign, expose_handle, **options: as in
            :func:`~latent_graph.graphs.sequential.build_sequential`.
    """
    opts = Options(**options)
    check_options(model, opts)
    model = with_realign(model, realign)
    experts = dict(experts or roles.EXPERTS)
    kinds = edge_kinds(edges, list(experts))
    builder = new_graph(expose_handle)
    for i, (name, instruction) in enumerate(experts.items()):
        node = agent_node(model, name, instruction, kinds[name], opts, sees_context=i == 0, branch=True)
        builder.add_node(name, node)
        builder.add_edge(START, name)
    builder.add_node("judger", judger_node(model, "judger", judger, opts, sees_context=False))
    builder.add_edge(list(experts), "judger")
    builder.add_edge("judger", END)
    drawn = {(name, "judger"): kinds[name] for name in experts}
    return compile_graph(builder, checkpointer, drawn, "latent-hierarchical", interrupt_after)
