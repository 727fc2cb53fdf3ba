"""Common options of the prebuilt graphs: settings, node construction, compilation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph

from latent_graph.engine import DEFAULT_STEPS, DecodeOptions, LocalLatentModel, Realigner, check_memory, check_steps
from latent_graph.errors import InvalidArgumentError
from latent_graph.graph.edges import EdgeKind, add_agent, parse_edges
from latent_graph.graph.nodes.models import local_engine
from latent_graph.graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode
from latent_graph.graph.prebuilt.roles import with_format
from latent_graph.persist import latent_checkpointer
from latent_graph.graph.state import GraphInput, GraphOutput, GraphOutputWithHandle, LatentState

_D = DecodeOptions()


@dataclass(frozen=True)
class Options:
    """Settings every prebuilt graph takes (decoding defaults come from :class:`DecodeOptions`)."""

    steps: int = DEFAULT_STEPS
    memory: str = "all"
    max_new_tokens: int = _D.max_new_tokens
    temperature: float = _D.temperature
    top_p: float = _D.top_p
    seed: int | None = _D.seed
    task: str = "math"
    inspect: int = 0

    def __post_init__(self) -> None:
        check_steps(self.steps)
        check_memory(self.memory)
        self.decoding()  # validates the sampling settings
        with_format("", self.task)  # validates the task

    @classmethod
    def of(cls, options: dict[str, Any]) -> Options:
        """Options from keyword arguments; an unknown name is an :class:`InvalidArgumentError`."""
        unknown = set(options) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidArgumentError(f"unknown graph options {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**options)

    def decoding(self) -> dict[str, Any]:
        return DecodeOptions(self.max_new_tokens, self.temperature, self.top_p, self.seed).as_dict()


def check_model(model: Any) -> Any:
    """The local engine (also given as its chat face), or a foreign LangChain chat model."""
    engine = local_engine(model)
    if engine is not None:
        return engine
    if not isinstance(model, BaseChatModel):
        raise InvalidArgumentError(f"prebuilt graphs need a LocalLatentModel or a LangChain chat model, "
                                   f"got {type(model).__name__}")
    return model


def edge_kinds(model: Any, edges: Any, senders: Sequence[str]) -> dict[str, EdgeKind]:
    """Kinds of the edges leaving ``senders``; every edge is text on a foreign chat model (it cannot think latently)."""
    kinds = parse_edges(edges, list(senders))
    return kinds if local_engine(model) is not None else {s: "text" for s in senders}


def add_agent_node(
    builder: StateGraph, model: LocalLatentModel, name: str, instruction: str, kind: EdgeKind, opts: Options, *,
    sees_context: bool = False, branch: bool = False,
) -> None:
    """Add a latent or text agent (by the kind of the edge leaving it), its kind declared in the node metadata."""
    common: dict[str, Any] = dict(model=model, name=name, instruction=instruction, sees_context=sees_context,
                                  memory=opts.memory, inspect=opts.inspect, branch=branch)
    node = LatentAgentNode(steps=opts.steps, **common) if kind == "latent" else TextAgentNode(**common, **opts.decoding())
    add_agent(builder, node)


def add_judger_node(builder: StateGraph, model: LocalLatentModel, name: str, instruction: str, opts: Options,
                    sees_context: bool) -> None:
    """Add the answering node, with the task's answer-format instruction appended."""
    add_agent(builder, JudgerNode(model=model, name=name, instruction=with_format(instruction, opts.task),
                                  sees_context=sees_context, memory=opts.memory, **opts.decoding()))


def with_realign(model: Any, realign: str | Realigner | None) -> Any:
    if realign is None:
        return model
    if local_engine(model) is None:
        raise InvalidArgumentError("realign applies to a LocalLatentModel, not to a foreign chat model")
    return model.with_realigner(realign)


def new_graph(expose_handle: bool = False) -> StateGraph:
    """A StateGraph over :class:`LatentState`; the handle is in the output only if asked for."""
    output = GraphOutputWithHandle if expose_handle else GraphOutput
    return StateGraph(LatentState, input_schema=GraphInput, output_schema=output)


def compile_graph(builder: StateGraph, checkpointer: Any, name: str, interrupt_after: Sequence[str] | None = None) -> Any:
    """Compile; a plain InMemorySaver/SqliteSaver gets the latent serializer (:func:`latent_checkpointer`)."""
    return builder.compile(checkpointer=latent_checkpointer(checkpointer), name=name, interrupt_after=list(interrupt_after or []) or None)
