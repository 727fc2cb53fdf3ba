"""Common options of the prebuilt graphs: edge specs, sampling, compilation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph

from latent_graph.errors import InvalidArgumentError
from latent_graph.handle import MEMORY_POLICIES
from latent_graph.model import LocalLatentModel
from latent_graph.nodes import (
    GraphInput,
    GraphOutput,
    GraphOutputWithHandle,
    JudgerNode,
    LatentAgentNode,
    LatentState,
    TextAgentNode,
)
from latent_graph.realign import Realigner

EDGE_KINDS = ("latent", "text")


@dataclass(frozen=True)
class Options:
    """Settings every prebuilt graph takes."""

    steps: int = 8
    memory: str = "all"
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    task: str = "math"
    inspect: int = 0

    def decoding(self) -> dict[str, Any]:
        return dict(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed)


def check_options(model: Any, opts: Options) -> None:
    if not isinstance(model, LocalLatentModel):
        raise InvalidArgumentError(f"prebuilt graphs need a LocalLatentModel, got {type(model).__name__}")
    if isinstance(opts.steps, bool) or not isinstance(opts.steps, int) or opts.steps < 0:
        from latent_graph.errors import InvalidStepsError

        raise InvalidStepsError(f"steps must be an int >= 0, got {opts.steps!r}")
    if opts.memory not in MEMORY_POLICIES:
        raise InvalidArgumentError(f"unknown memory policy {opts.memory!r}; choose one of {MEMORY_POLICIES}")


def edge_kinds(edges: str | Sequence[str] | Mapping[str, str], senders: Sequence[str]) -> dict[str, str]:
    """Kind of the edge leaving each sender: one kind for all, a list (in order) or a dict by name."""
    if isinstance(edges, str):
        kinds = {s: edges for s in senders}
    elif isinstance(edges, Mapping):
        unknown = set(edges) - set(senders)
        if unknown:
            raise InvalidArgumentError(f"edges names unknown agents {sorted(unknown)}; agents: {list(senders)}")
        kinds = {s: edges.get(s, "latent") for s in senders}
    else:
        edges = list(edges)
        if len(edges) != len(senders):
            raise InvalidArgumentError(
                f"{len(edges)} edge kinds for {len(senders)} edges (one per agent before the judger: {list(senders)})"
            )
        kinds = dict(zip(senders, edges))
    bad = {k for k in kinds.values() if k not in EDGE_KINDS}
    if bad:
        raise InvalidArgumentError(f"edge kinds must be 'latent' or 'text', got {sorted(bad)}")
    return kinds


def agent_node(
    model: LocalLatentModel, name: str, instruction: str, kind: str, opts: Options, *,
    sees_context: bool = False, branch: bool = False,
) -> LatentAgentNode | TextAgentNode:
    """A latent or text agent node (by the kind of the edge leaving it)."""
    common: dict[str, Any] = dict(model=model, name=name, instruction=instruction, sees_context=sees_context,
                                  memory=opts.memory, inspect=opts.inspect, branch=branch)
    if kind == "latent":
        return LatentAgentNode(steps=opts.steps, **common)
    return TextAgentNode(**common, **opts.decoding())


def judger_node(model: LocalLatentModel, name: str, instruction: str, opts: Options, sees_context: bool) -> JudgerNode:
    """The answering node, with the task's answer-format instruction appended."""
    from latent_graph.graphs.roles import with_format

    return JudgerNode(model=model, name=name, instruction=with_format(instruction, opts.task),
                      sees_context=sees_context, memory=opts.memory, **opts.decoding())


def with_realign(model: LocalLatentModel, realign: str | Realigner | None) -> LocalLatentModel:
    return model if realign is None else model.with_realigner(realign)


def new_graph(expose_handle: bool = False) -> StateGraph:
    """A StateGraph over :class:`LatentState`; the handle is in the output only if asked for."""
    output = GraphOutputWithHandle if expose_handle else GraphOutput
    return StateGraph(LatentState, input_schema=GraphInput, output_schema=output)


def compile_graph(
    builder: StateGraph,
    checkpointer: Any,
    edges: dict[tuple[str, str], str],
    name: str,
    interrupt_after: Sequence[str] | None = None,
) -> Any:
    graph = builder.compile(checkpointer=checkpointer, name=name, interrupt_after=list(interrupt_after or []) or None)
    graph.latent_edges = edges  # read by latent_graph.viz to style latent vs text edges
    return graph
