"""Sequential graph: planner → critic → refiner → judger (LatentMAS sequential roles).

Each edge can be latent (the handle flows on) or text (the sender decodes a
message and the receiver starts a fresh cache with that message in its prompt).
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


def build_sequential(
    model: LocalLatentModel,
    *,
    edges: str | Sequence[str] | Mapping[str, str] = "latent",
    agents: Mapping[str, str] | None = None,
    judger: str = roles.JUDGER,
    checkpointer: Any = None,
    interrupt_after: Sequence[str] | None = None,
    realign: str | Realigner | None = None,
    expose_handle: bool = False,
    **options: Any,
) -> Any:
    """Build and compile a sequential agent chain ending in a judger.

    Args:
        model: The shared local model.
        edges: "latent", "text", one kind per agent before the judger (in order), or a
            dict ``{agent: kind}`` giving the kind of the edge *leaving* that agent.
        agents: Ordered ``{name: role instruction}``; default planner, critic, refiner.
        judger: The judger's role instruction (the task's answer format is appended).
        checkpointer: Optional LangGraph checkpointer (see :mod:`latent_graph.persist.serializer`).
        interrupt_after: Node names to pause after (resume with ``graph.invoke(None, config)``).
        realign: Override the model's realigner ("ridge", "identity" or a Realigner/adapter).
        expose_handle: Include the final handle in the graph output.
        **options: steps, memory, max_new_tokens, temperature, top_p, seed, task, inspect.
    """
    opts = Options.of(options)
    model = with_realign(check_model(model), realign)
    agents = dict(agents or roles.SEQUENTIAL)
    kinds = edge_kinds(model, edges, list(agents))
    builder = new_graph(expose_handle)
    prev = START
    for i, (name, instruction) in enumerate(agents.items()):
        add_agent_node(builder, model, name, instruction, kinds[name], opts, sees_context=i == 0)
        builder.add_edge(prev, name)
        prev = name
    add_judger_node(builder, model, "judger", judger, opts, sees_context=not agents)
    builder.add_edge(prev, "judger")
    builder.add_edge("judger", END)
    return compile_graph(builder, checkpointer, "latent-sequential", interrupt_after)


def build_single(
    model: LocalLatentModel,
    *,
    instruction: str = roles.SINGLE,
    checkpointer: Any = None,
    interrupt_after: Sequence[str] | None = None,
    expose_handle: bool = False,
    **options: Any,
) -> Any:
    """A single agent answering directly (the baseline); it sees any private context."""
    opts = Options.of(options)
    model = check_model(model)
    builder = new_graph(expose_handle)
    add_judger_node(builder, model, "single", instruction, opts, sees_context=True)
    builder.add_edge(START, "single")
    builder.add_edge("single", END)
    return compile_graph(builder, checkpointer, "single-agent", interrupt_after)
