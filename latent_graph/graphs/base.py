"""What every prebuilt graph shares: its keyword options (one owner), node construction, compilation.

:class:`GraphKwargs` declares, once, every keyword a prebuilt builder takes;
:class:`Team` turns them into validated :class:`GraphOptions`, the per-sender edge
kinds and an empty ``StateGraph``, then adds the agents and compiles.
"""

from __future__ import annotations

from langgraph.graph.state import CompiledStateGraph

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph

from latent_graph.engine import (
    DEFAULT_MEMORY,
    DEFAULT_STEPS,
    MEMORY_POLICIES,
    DecodeOptions,
    Realigner,
    check_kv,
    check_memory,
    make_realigner,
    check_steps,
)
from latent_graph.nodes.models import NodeModel
from latent_graph.errors import InvalidArgumentError
from latent_graph.state.edges import EdgeKind, parse_edges
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode, add_agent
from latent_graph.nodes.models import StandInModel, engine_of
from latent_graph.graphs.roles import ANSWER_FORMATS, JUDGER, with_format
from latent_graph.state.schema import MAX_QUESTIONS, GraphInput, GraphOutput, GraphOutputWithHandle, LatentState
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
    """Any LangGraph checkpointer (state holds JSON handle references; a plain InMemorySaver/SqliteSaver also gets
    the latent serializer, so hand-written nodes that put LatentHandle objects in state still checkpoint)."""
    store: Any
    """A LangGraph ``BaseStore`` (cross-thread memory; handle references can be kept in it), passed to ``compile``."""
    handle_store: Any
    """Where handle tensors live (:class:`~latent_graph.persist.HandleStore`); None = the default folder store (so a
    subgraph, a parent's checkpointer and LangGraph Server all find them). A one-shot run that keeps nothing can pass
    ``HandleStore.in_memory()`` to write nothing to disk (the CLI's ``run`` does)."""
    interrupt_after: Sequence[str] | None
    """Node names to pause after (resume with ``graph.invoke(None, config)``)."""
    realign: str | Realigner | None
    """Override the model's realigner: a spec of the engine's catalog (``REALIGNERS``: "ridge", "identity",
    "soft:k=8,t=1", "knn:k=4", "blend:alpha=0.5") or a Realigner / trained adapter."""
    expose_handle: bool
    """Accepted for compatibility: the output always holds the final handle reference (``HandleStore.load`` it)."""
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
    max_questions: int
    """Most questions one invocation may carry (default :data:`~latent_graph.state.schema.MAX_QUESTIONS`); more raise ``TooManyQuestionsError``."""

    kv_keep: float
    """Fraction in (0, 1] of each latent sender's own cache columns its edge adds per row: ``ceil(kv_keep * n)``
    of its ``n``, best-scored first over the row's every column, the earlier senders' kept ones included
    (1 = all, the default: the handle crosses unchanged). See :func:`latent_graph.engine.compress`."""
    kv_budget: int | None
    """At most this many real cache columns per row cross each latent edge (None = no cap)."""
    cache_budget: int | None
    """At most this many real cache columns per row in the handle any node reads; the lowest-scored
    columns are evicted first (long chains, ``latent_thread="continue"`` threads). None = no cap."""


def option(default: Any, help: str, choices: Sequence[str] | None = None) -> Any:
    """A :class:`GraphOptions` field: its default, one line of help and its choices (read by the CLI and serve)."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices) if choices else None})



@dataclass(frozen=True)
class GraphOptions:
    """Node settings of a prebuilt graph: the one owner of their names, defaults, choices and checks.

    The CLI's flags (``--steps``, ``--max-new-tokens`` ...), serve's request fields and the bench read
    them from here (:func:`dataclasses.fields`); decoding defaults come from :class:`DecodeOptions`.
    """

    steps: int = option(DEFAULT_STEPS, "latent steps per latent agent")
    memory: str = option(DEFAULT_MEMORY, "what each reader sees of the incoming handle", MEMORY_POLICIES)
    max_new_tokens: int = option(_D.max_new_tokens, "the judger's answer budget")
    message_tokens: int = option(MESSAGE_TOKENS, "message budget of text agents (they also stop at end of turn)")
    temperature: float = option(_D.temperature, "0 = greedy")
    top_p: float = option(_D.top_p, "nucleus sampling mass")
    seed: int | None = option(_D.seed, "sampling seed")
    task: str = option("math", "answer format of the judger", tuple(ANSWER_FORMATS))
    inspect: int = option(0, "record top-K logit-lens / nearest tokens per latent step (opt-in; slower)")
    max_questions: int = option(MAX_QUESTIONS, "most questions one invocation may carry")
    kv_keep: float = option(1.0, "fraction of each latent sender's own cache columns its edge adds per row (1 = all)")
    kv_budget: int | None = option(None, "max cache columns per row crossing each latent edge (None = no cap)")
    cache_budget: int | None = option(None, "max cache columns per row in the handle any node reads (None = no cap)")

    def __post_init__(self) -> None:
        if isinstance(self.max_questions, bool) or not isinstance(self.max_questions, int) or self.max_questions < 1:
            raise InvalidArgumentError(f"max_questions must be an int >= 1, got {self.max_questions!r}")
        check_steps(self.steps)
        check_kv(self.kv_keep, self.kv_budget)
        check_kv(1.0, self.cache_budget, "cache_budget")
        check_memory(self.memory)
        self.decoding()  # validates the sampling settings
        self.decoding(self.message_tokens)  # and the message budget
        with_format("", self.task)  # validates the task
        if not isinstance(self.inspect, int) or self.inspect < 0:
            raise InvalidArgumentError(f"inspect must be an integer >= 0, got {self.inspect!r}")

    def latent(self) -> dict[str, Any]:
        """Settings of a latent sender node: steps and its compressed edge."""
        return dict(steps=self.steps, kv_keep=self.kv_keep, kv_budget=self.kv_budget)

    def decoding(self, budget: int | None = None) -> dict[str, Any]:
        """Decoding options of the judger (``budget`` None) or of a text agent (``budget=self.message_tokens``)."""
        tokens = self.max_new_tokens if budget is None else budget
        return DecodeOptions(tokens, self.temperature, self.top_p, self.seed).as_dict()


_GRAPH_KEYS = ("edges", "judger", "checkpointer", "interrupt_after", "realign", "expose_handle", "store", "handle_store")


class Team:
    """A prebuilt graph under construction: validated options, edge kinds and the builder.

    Args:
        model: The shared local model.
        kwargs: The builder's :class:`GraphKwargs`.
        senders: Agent names whose outgoing edge kinds ``edges`` names, in order.
    """

    def __init__(self, model: NodeModel, kwargs: Mapping[str, Any], senders: Sequence[str]) -> None:
        engine = engine_of(model)  # the local engine, also when given as its chat face
        if engine is None and not isinstance(model, BaseChatModel):
            raise InvalidArgumentError(f"prebuilt graphs need a LocalLatentModel or a LangChain chat model, "
                                       f"got {type(model).__name__}")
        unknown = set(kwargs) - set(GraphKwargs.__annotations__)
        if unknown:
            raise InvalidArgumentError(f"unknown graph options {sorted(unknown)}; known: {sorted(GraphKwargs.__annotations__)}")
        self.opts = GraphOptions(**{k: v for k, v in kwargs.items() if k not in _GRAPH_KEYS})
        realign = kwargs.get("realign")
        if realign is not None and engine is None:
            raise InvalidArgumentError("realign applies to a LocalLatentModel, not to a foreign chat model")
        if isinstance(realign, str) and engine is not None and not isinstance(engine, StandInModel):
            realign = make_realigner(engine, realign)  # a spec from the engine's catalog (REALIGNERS)
        self.model = model if engine is None else (engine if realign is None else engine.with_realigner(realign))
        kinds = parse_edges(kwargs.get("edges", "latent"), list(senders))
        # a foreign chat model cannot think latently: every edge leaving it is text
        self.kinds: dict[str, EdgeKind] = kinds if engine is not None else {s: "text" for s in senders}
        self.judger = kwargs.get("judger", JUDGER)
        self.handle_store = kwargs.get("handle_store")
        self.kwargs = kwargs
        output = GraphOutputWithHandle if kwargs.get("expose_handle", False) else GraphOutput
        self.state_graph = StateGraph(LatentState, input_schema=GraphInput, output_schema=output)

    def add_agent(self, name: str, instruction: str, *, sees_context: bool = False, branch: bool = False) -> None:
        """A latent or text agent (by the kind of the edge leaving it), its kind declared in the node metadata."""
        common: dict[str, Any] = dict(model=self.model, name=name, instruction=instruction, sees_context=sees_context,
                                      memory=self.opts.memory, inspect=self.opts.inspect, branch=branch,
                                      max_questions=self.opts.max_questions, handle_store=self.handle_store,
                                      cache_budget=self.opts.cache_budget)
        kind: EdgeKind = self.kinds[name]
        node = (LatentAgentNode(**self.opts.latent(), **common) if kind == "latent"
                else TextAgentNode(**common, **self.opts.decoding(self.opts.message_tokens)))
        add_agent(self.state_graph, node)

    def add_judger(self, name: str, instruction: str, sees_context: bool) -> None:
        """The answering node, with the task's answer-format instruction appended."""
        add_agent(self.state_graph, JudgerNode(model=self.model, name=name, instruction=with_format(instruction, self.opts.task),
                                           sees_context=sees_context, memory=self.opts.memory,
                                           max_questions=self.opts.max_questions,
                                           handle_store=self.handle_store, cache_budget=self.opts.cache_budget,
                                           **self.opts.decoding()))

    def compile(self, name: str) -> CompiledStateGraph:
        """Compile; a plain InMemorySaver/SqliteSaver gets the latent serializer (:func:`latent_checkpointer`)."""
        interrupt = list(self.kwargs.get("interrupt_after") or []) or None
        saver = self.kwargs.get("checkpointer")
        saver = latent_checkpointer(saver) if saver is not None else None
        return self.state_graph.compile(checkpointer=saver, name=name, interrupt_after=interrupt,
                                        store=self.kwargs.get("store"))
