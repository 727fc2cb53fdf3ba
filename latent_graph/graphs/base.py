"""What every prebuilt graph shares: its keyword options (one owner), node construction, compilation.

:class:`GraphOptions` owns every node setting (name, type, default, help, choices, checks): the CLI's flags,
serve's request schema, Studio's ``configurable`` keys, the registry's factory keywords and the bench read its
fields. :class:`GraphKwargs` types the builders' keywords for type checkers: the graph's wiring (edges, savers,
stores, realigner) plus the GraphOptions fields, checked against them at import. :class:`Team` turns the
keywords into validated :class:`GraphOptions`, the per-sender edge kinds and an empty ``StateGraph``, then adds
the agents and compiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict, get_type_hints

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from latent_graph.engine import (
    DEFAULT_MEMORY,
    DEFAULT_STEPS,
    MEMORY_POLICIES,
    DecodeOptions,
    Realigner,
    check_kv,
    check_memory,
    check_steps,
)
from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs.roles import ANSWER_FORMATS, JUDGER, with_format
from latent_graph.nodes import JudgerNode, LatentAgentNode, NodeModel, StandInModel, TextAgentNode, add_agent, engine_of
from latent_graph.state.edges import EdgeKind, parse_edges
from latent_graph.state.schema import MAX_QUESTIONS, GraphInput, GraphOutput, LatentState
from latent_graph.state.threads import check_config

_D = DecodeOptions()
MESSAGE_TOKENS = 128
"""Default message budget of text agents: generous, so a text edge is not cut to the judger's answer budget."""


class GraphKwargs(TypedDict, total=False):
    """Keyword options of every prebuilt builder (``build_sequential(model, **kwargs)`` ...), for type checkers.

    The graph's wiring is declared here; the node settings below it are :class:`GraphOptions`' fields, declared
    (with default, help and checks) there only: :func:`_check_kwargs` fails at import when the two differ.
    """

    edges: str | Sequence[str] | Mapping[str, str]
    """Kind of the edge leaving each agent: "latent" (default), "text", one per agent in order, or ``{agent: kind}``."""
    judger: str
    """The judger's role instruction (the task's answer format is appended)."""
    checkpointer: Any
    """Any LangGraph saver (``BaseCheckpointSaver``, sync or async), used as given: state holds JSON handle
    references, which every saver stores with its own serializer; the tensors live in ``handle_store``."""
    store: Any
    """A LangGraph ``BaseStore`` (cross-thread memory; handle references can be kept in it), passed to ``compile``."""
    handle_store: Any
    """Where handle tensors live (:class:`~latent_graph.persist.HandleStore`); None = the default folder store (so a
    subgraph, a parent's checkpointer and LangGraph Server all find them). A one-shot run that keeps nothing can pass
    ``HandleStore.in_memory()`` to write nothing to disk (the CLI's ``run`` does)."""
    interrupt_after: Sequence[str] | None
    """Node names to pause after (resume with ``graph.invoke(None, config)``)."""
    name: str
    """The compiled graph's name (default: its registry name, e.g. "compact"): what a parent graph, a supervisor
    (``create_supervisor`` hands off to agents by name) and LangGraph Server call it."""
    realign: str | Realigner | None
    """Override the model's realigner: a spec of the engine's catalog (``REALIGNERS``: "ridge", "identity",
    "soft:k=8,t=1", "knn:k=4", "blend:alpha=0.5") or a Realigner / trained adapter."""

    # the GraphOptions fields, typed as there
    steps: int
    memory: str
    max_new_tokens: int
    message_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    task: str
    inspect: int
    max_questions: int
    kv_keep: float
    kv_budget: int | None
    cache_budget: int | None


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

    def decoding(self, budget: int | None = None) -> DecodeOptions:
        """Decoding options of the judger (``budget`` None) or of a text agent (``budget=self.message_tokens``)."""
        tokens = self.max_new_tokens if budget is None else budget
        return DecodeOptions(tokens, self.temperature, self.top_p, self.seed)


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(GraphOptions))
"""The node settings' names, in declaration order (CLI flags, serve's request fields, studio's ``configurable``)."""


def _check_kwargs() -> tuple[str, ...]:
    """The wiring keys of :class:`GraphKwargs` (those that are not options); raises if it drifts from GraphOptions."""
    kw, opts = get_type_hints(GraphKwargs), get_type_hints(GraphOptions)
    drift = sorted(n for n in OPTION_NAMES if kw.get(n) != opts[n])
    if drift:
        raise TypeError(f"GraphKwargs must type every GraphOptions field as GraphOptions does: {drift}")
    return tuple(k for k in kw if k not in opts)


WIRING: tuple[str, ...] = _check_kwargs()
"""Builder keywords that wire the graph (edges, judger, savers, stores, realigner) rather than set its nodes."""


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
            raise InvalidArgumentError(
                f"prebuilt graphs need a LocalLatentModel or a LangChain chat model, got {type(model).__name__}"
            )
        unknown = set(kwargs) - set(GraphKwargs.__annotations__)
        if unknown:
            raise InvalidArgumentError(
                f"unknown graph options {sorted(unknown)}; known: {sorted(GraphKwargs.__annotations__)}"
            )
        self.opts = GraphOptions(**{k: v for k, v in kwargs.items() if k not in WIRING})
        realign = kwargs.get("realign")
        if realign is not None and engine is None:
            raise InvalidArgumentError("realign applies to a LocalLatentModel, not to a foreign chat model")
        if realign is None or isinstance(engine, StandInModel):  # a drawing stand-in has no weights to realign
            self.model = model if engine is None else engine
        else:
            self.model = engine.with_realigner(realign)  # any REALIGNERS spec or a Realigner (the engine resolves it)
        kinds = parse_edges(kwargs.get("edges", "latent"), list(senders))
        # a foreign chat model cannot think latently: every edge leaving it is text
        self.kinds: dict[str, EdgeKind] = kinds if engine is not None else {s: "text" for s in senders}
        name = kwargs.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidArgumentError(f"name must be a non-empty string, got {name!r}")
        self.name: str | None = name
        self.judger = kwargs.get("judger", JUDGER)
        self.handle_store = kwargs.get("handle_store")
        self.kwargs = kwargs
        self.state_graph = StateGraph(LatentState, input_schema=GraphInput, output_schema=GraphOutput)

    def add_agent(self, name: str, instruction: str, *, sees_context: bool = False, branch: bool = False) -> None:
        """A latent or text agent (by the kind of the edge leaving it), its kind declared in the node metadata."""
        common: dict[str, Any] = dict(
            model=self.model,
            name=name,
            instruction=instruction,
            sees_context=sees_context,
            memory=self.opts.memory,
            inspect=self.opts.inspect,
            branch=branch,
            max_questions=self.opts.max_questions,
            handle_store=self.handle_store,
            cache_budget=self.opts.cache_budget,
        )
        kind: EdgeKind = self.kinds[name]
        node = (
            LatentAgentNode(**self.opts.latent(), **common)
            if kind == "latent"
            else TextAgentNode(**common, decoding=self.opts.decoding(self.opts.message_tokens))
        )
        add_agent(self.state_graph, node)

    def add_judger(self, name: str, instruction: str, sees_context: bool) -> None:
        """The answering node, with the task's answer-format instruction appended."""
        add_agent(
            self.state_graph,
            JudgerNode(
                model=self.model,
                name=name,
                instruction=with_format(instruction, self.opts.task),
                sees_context=sees_context,
                memory=self.opts.memory,
                max_questions=self.opts.max_questions,
                handle_store=self.handle_store,
                cache_budget=self.opts.cache_budget,
                decoding=self.opts.decoding(),
            ),
        )

    def compile(self, name: str) -> CompiledStateGraph:
        """Compile with the caller's checkpointer and store, untouched, into a :class:`CheckedGraph`; named ``name=``
        if given, else ``name``."""
        interrupt = list(self.kwargs.get("interrupt_after") or []) or None
        graph = self.state_graph.compile(
            checkpointer=self.kwargs.get("checkpointer"),
            name=self.name or name,
            interrupt_after=interrupt,
            store=self.kwargs.get("store"),
        )
        return CheckedGraph(**{k: v for k, v in graph.__dict__.items() if k != "__orig_class__"})


class CheckedGraph(CompiledStateGraph):
    """A compiled graph that checks every run config (:func:`~latent_graph.state.threads.check_config`) before its
    checkpointer sees it: runs, state reads, history and updates, sync and async (``invoke`` runs ``stream``,
    ``update_state`` runs ``bulk_update_state``). The checkpointer itself is the caller's object, untouched."""

    def _checked(self, *configs: Any) -> None:
        for config in (self.config, *configs):
            check_config(config)

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        self._checked(config)
        return super().stream(input, config, **kwargs)

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        self._checked(config)
        return super().astream(input, config, **kwargs)

    def get_state(self, config: Any, **kwargs: Any) -> Any:
        self._checked(config)
        return super().get_state(config, **kwargs)

    async def aget_state(self, config: Any, **kwargs: Any) -> Any:
        self._checked(config)
        return await super().aget_state(config, **kwargs)

    def get_state_history(self, config: Any, **kwargs: Any) -> Any:
        self._checked(config, kwargs.get("before"))
        return super().get_state_history(config, **kwargs)

    def aget_state_history(self, config: Any, **kwargs: Any) -> Any:
        self._checked(config, kwargs.get("before"))
        return super().aget_state_history(config, **kwargs)

    def bulk_update_state(self, config: Any, supersteps: Any) -> Any:
        self._checked(config)
        return super().bulk_update_state(config, supersteps)

    async def abulk_update_state(self, config: Any, supersteps: Any) -> Any:
        self._checked(config)
        return await super().abulk_update_state(config, supersteps)
