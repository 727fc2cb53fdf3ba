"""Hierarchical graph: domain experts as parallel branches (fan-out) → judger (fan-in).

Latent experts each think on top of the same (possibly empty) prefix and write
their handle to ``branches[name]``; the judger merges them (see
:mod:`latent_graph.engine.merge` for how positions are assigned) so it sees every
branch. Text experts send messages instead; edges can be mixed per expert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.graph import END, START

from latent_graph.graph.prebuilt import roles
from latent_graph.graph.prebuilt.build import (
    Options,
    add_agent_node,
    add_judger_node,
    check_model,
    compile_graph,
    edge_kinds,
    new_graph,
    with_realign,
)
from latent_graph.engine import LocalLatentModel, Realigner


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
            :func:`~latent_graph.graph.prebuilt.sequential.build_sequential`.
    """
    opts = Options.of(options)
    model = with_realign(check_model(model), realign)
    experts = dict(experts or roles.EXPERTS)
    kinds = edge_kinds(model, edges, list(experts))
    builder = new_graph(expose_handle)
    for i, (name, instruction) in enumerate(experts.items()):
        add_agent_node(builder, model, name, instruction, kinds[name], opts, sees_context=i == 0, branch=True)
        builder.add_edge(START, name)
    add_judger_node(builder, model, "judger", judger, opts, sees_context=False)
    builder.add_edge(list(experts), "judger")
    builder.add_edge("judger", END)
    return compile_graph(builder, checkpointer, "latent-hierarchical", interrupt_after)
