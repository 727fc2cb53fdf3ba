"""What every prebuilt graph shares: its keyword options (one owner), node construction, compilation.

:class:`GraphKwargs` declares, once, every keyword a prebuilt builder takes;
:class:`Team` turns them into a validated :class:`Options`, the per-sender edge
kinds and an empty ``StateGraph``, then adds the agents and compiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph

from latent_graph.engine import DEFAULT_STEPS, DecodeOptions, Realigner, check_kv, check_memory, check_steps
from latent_graph.errors import InvalidArgumentError
from latent_graph.state.edges import EdgeKind, parse_edges
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode, add_agent
from latent_graph.nodes.models import local_engine
from latent_graph.graphs.roles import JUDGER, with_format
from latent_graph.state.schema import GraphInput, GraphOutput, GraphOutputWithHandle, LatentState
from latent_graph.persist import latent_checkpointer

_D = DecodeOptions()
MESSAGE_TOKENS = 128
"""Default message budget of text agents: generous, so a text edge is not cut to the judger's answer budget."""


class GraphKwargs(TypedDict, total=False):
    """Keyword options of every prebuilt builder (``build_sequential(model, **kwargs)`` ...)."""

    edges: str | Sequence[str] | Mapping[str, str]
    """Kind of the edge leaving each agent: "latent" (default), "text", one per agent in order, or ``{agent: kind}``."""
    judger: str
    """The judger's role instruction (the task's answer format is appended)."""
    checkpointer: Any
    """A LangGraph checkpointer (see :mod:`latent_graph.persist`); a plain InMemorySaver/SqliteSaver gets the latent serializer."""
    interrupt_after: Sequence[str] | None
    """Node names to pause after (resume with ``graph.invoke(None, config)``)."""
    realign: str | Realigner | None
    """Override the model's realigner ("ridge", "identity" or a Realigner/adapter)."""
    expose_handle: bool
    """Include the final handle in the graph output."""
    steps: int
    """Latent steps per latent agent."""
    memory: str
    """Memory policy of every reader ("all", "last", "latent")."""
    max_new_tokens: int
    """Answer budget of the judger (tokens)."""
    message_tokens: int
    """Message budget of every text agent (tokens; it also stops at the end of its turn). Default 128."""
    temperature: float
    """0 = greedy."""
    top_p: float
    """Nucleus mass."""
    seed: int | None
    """Sampling seed."""
    task: str
    """Answer format of the judger: "math", "choice", "code" or "plain"."""
    inspect: int
    """Top-k logit lens / nearest tokens per latent step (0 = off)."""
    kv_keep: float
    """Fraction in (0, 1] of each latent sender's own cache columns that cross its edge, best-attended first
    (1 = all, the default: the handle crosses unchanged). See :mod:`latent_graph.engine.compress`."""
    kv_budget: int | None
    """At most this many real cache columns per row cross each latent edge (None = no cap)."""
    cache_budget: int | None
    """At most this many real cache columns per row in the handle any node reads; the lowest-scored
    columns are evicted first (long chains, ``latent_thread="continue"`` threads). None = no cap."""


@dataclass(frozen=True)
class Options:
    """Node settings of a prebuilt graph (decoding defaults come from :class:`DecodeOptions`)."""

    steps: int = DEFAULT_STEPS
    memory: str = "all"
    max_new_tokens: int = _D.max_new_tokens
    message_tokens: int = MESSAGE_TOKENS
    temperature: float = _D.temperature
    top_p: float = _D.top_p
    seed: int | None = _D.seed
    task: str = "math"
    inspect: int = 0
    kv_keep: float = 1.0
    kv_budget: int | None = None
    cache_budget: int | None = None

    def __post_init__(self) -> None:
        check_steps(self.steps)
        check_kv(self.kv_keep, self.kv_budget)
        check_kv(1.0, self.cache_budget, "cache_budget")
        check_memory(self.memory)
        self.decoding()  # validates the sampling settings
        self.decoding(self.message_tokens)  # and the message budget
        with_format("", self.task)  # validates the task

    def latent(self) -> dict[str, Any]:
        """Settings of a latent sender node: steps and its compressed edge."""
        return dict(steps=self.steps, kv_keep=self.kv_keep, kv_budget=self.kv_budget)

    def decoding(self, budget: int | None = None) -> dict[str, Any]:
        """Decoding options of the judger (``budget`` None) or of a text agent (``budget=self.message_tokens``)."""
        tokens = self.max_new_tokens if budget is None else budget
        return DecodeOptions(tokens, self.temperature, self.top_p, self.seed).as_dict()


_GRAPH_KEYS = ("edges", "judger", "checkpointer", "interrupt_after", "realign", "expose_handle")


class Team:
    """A prebuilt graph under construction: validated options, edge kinds and the builder.

    Args:
        model: The shared local model.
        kwargs: The builder's :class:`GraphKwargs`.
        senders: Agent names whose outgoing edge kinds ``edges`` names, in order.
    """

    def __init__(self, model: Any, kwargs: Mapping[str, Any], senders: Sequence[str]) -> None:
        engine = local_engine(model)  # the local engine, also when given as its chat face
        if engine is None and not isinstance(model, BaseChatModel):
            raise InvalidArgumentError(f"prebuilt graphs need a LocalLatentModel or a LangChain chat model, "
                                       f"got {type(model).__name__}")
        unknown = set(kwargs) - set(GraphKwargs.__annotations__)
        if unknown:
            raise InvalidArgumentError(f"unknown graph options {sorted(unknown)}; known: {sorted(GraphKwargs.__annotations__)}")
        self.opts = Options(**{k: v for k, v in kwargs.items() if k not in _GRAPH_KEYS})
        realign = kwargs.get("realign")
        if realign is not None and engine is None:
            raise InvalidArgumentError("realign applies to a LocalLatentModel, not to a foreign chat model")
        self.model = model if engine is None else (engine if realign is None else engine.with_realigner(realign))
        kinds = parse_edges(kwargs.get("edges", "latent"), list(senders))
        # a foreign chat model cannot think latently: every edge leaving it is text
        self.kinds: dict[str, EdgeKind] = kinds if engine is not None else {s: "text" for s in senders}
        self.judger = kwargs.get("judger", JUDGER)
        self.kwargs = kwargs
        output = GraphOutputWithHandle if kwargs.get("expose_handle", False) else GraphOutput
        self.state_graph = StateGraph(LatentState, input_schema=GraphInput, output_schema=output)

    def add_agent(self, name: str, instruction: str, *, sees_context: bool = False, branch: bool = False) -> None:
        """A latent or text agent (by the kind of the edge leaving it), its kind declared in the node metadata."""
        common: dict[str, Any] = dict(model=self.model, name=name, instruction=instruction, sees_context=sees_context,
                                      memory=self.opts.memory, inspect=self.opts.inspect, branch=branch,
                                      cache_budget=self.opts.cache_budget)
        kind: EdgeKind = self.kinds[name]
        node = (LatentAgentNode(**self.opts.latent(), **common) if kind == "latent"
                else TextAgentNode(**common, **self.opts.decoding(self.opts.message_tokens)))
        add_agent(self.state_graph, node)

    def add_judger(self, name: str, instruction: str, sees_context: bool) -> None:
        """The answering node, with the task's answer-format instruction appended."""
        add_agent(self.state_graph, JudgerNode(model=self.model, name=name, instruction=with_format(instruction, self.opts.task),
                                           sees_context=sees_context, memory=self.opts.memory,
                                           cache_budget=self.opts.cache_budget, **self.opts.decoding()))

    def compile(self, name: str) -> Any:
        """Compile; a plain InMemorySaver/SqliteSaver gets the latent serializer (:func:`latent_checkpointer`)."""
        interrupt = list(self.kwargs.get("interrupt_after") or []) or None
        saver = latent_checkpointer(self.kwargs.get("checkpointer"))
        return self.state_graph.compile(checkpointer=saver, name=name, interrupt_after=interrupt)
