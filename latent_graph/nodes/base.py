"""Shared machinery of agent nodes: prompt assembly, inputs from state, per-step events.

A node is a callable ``node(state, config=None) -> dict`` usable in any ``StateGraph``, and a LangChain
``Runnable`` whose ``ainvoke`` is natively async: LangGraph's ``add_node(..., timeout=...)`` accepts it, and a
cancelled run stops at its next latent step or token (:mod:`latent_graph.nodes.streaming`). It never mutates the
handle it reads (engine calls return new ones) and writes its :class:`~latent_graph.state.trace.NodeRecord`
once, when it has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig

from latent_graph.engine import DEFAULT_MEMORY, KVPolicy, LatentHandle, StepInfo, compress, merge_branches
from latent_graph.errors import StateChannelError
from latent_graph.nodes.model_kind import NodeModel, engine_of
from latent_graph.nodes.streaming import ambient, check_stop, emitter, in_worker, settle
from latent_graph.persist import HandleStore, LiveHandleStore, default_handle_store
from latent_graph.state.branches import branch_key, graph_node, ordered, task_id
from latent_graph.state.edges import sends_metadata
from latent_graph.state.schema import (
    MAX_QUESTIONS,
    Message,
    agent_contexts_of,
    branch_map,
    contexts_of,
    questions_of,
    read_update,
    unread,
)
from latent_graph.state.threads import carried
from latent_graph.state.trace import NodeRecord, Sends, StepRecord, node_record


def compose_prompt(instruction: str, question: str | None, context: str | None, inbox: list[Message], row: int) -> str:
    """Role instruction + private context + question (None: not restated) + text received over text edges."""
    parts = [instruction.strip()]
    if context:
        parts.append(f"Context (only you have seen this): {context}")
    if question is not None:
        parts.append(f"Question: {question}")
    for msg in inbox:
        parts.append(f"Message from {msg['agent']}:\n{msg['texts'][row]}")
    return "\n\n".join(parts)


def add_agent(builder: Any, node: AgentNode, name: str | None = None) -> Any:
    """``builder.add_node(name or node.name, node, metadata=node.metadata)``: an agent node with its edge kind declared.

    Raises:
        StateChannelError: The node passes a latent handle on but the graph's state has no channel for it
            (LangGraph would drop the update silently).
    """
    channel = "branches" if node.branch else "handle"
    channels = getattr(builder, "channels", None)
    if node.sends == "latent" and not node.foreign and isinstance(channels, dict) and channel not in channels:
        raise StateChannelError(
            f"agent {node.name!r} passes its latent handle on in {channel!r}, which the graph's state lacks "
            "(LangGraph drops updates to undeclared keys): build on latent_graph.state.LatentState (it holds "
            f"MessagesState's 'messages' too) or declare '{channel}' in your state"
        )
    return builder.add_node(name or node.name, node, metadata=node.metadata)


@dataclass
class AgentNode(Runnable[dict[str, Any], dict[str, Any]]):
    """Base of latent, text and judger nodes.

    Attributes:
        model: The shared latent model (:class:`~latent_graph.engine.LatentModel`), or a LangChain chat model
            for an external text agent.
        name: Agent name (segment table, trace, events).
        instruction: Role prompt; the question (and messages) are appended.
        sees_context: Whether this agent sees the per-question private ``context``.
        memory: Memory policy applied to the incoming handle ("all", "last", "latent").
        branch: Write the output handle to ``branches[name]`` (parallel fan-out) instead of ``handle``.
        inspect: Top-k nearest tokens / logit-lens per latent step (0 = off; costs a vocab matmul).
        max_questions: Most questions one invocation may carry (more raise ``TooManyQuestionsError``).
        handle_store: Where handle tensors go and references are resolved
            (:class:`~latent_graph.persist.HandleStore`, or a ``LiveHandleStore`` for a run that keeps nothing);
            None = the process's default folder store.
        cache_budget: At most this many real cache columns per row in the handle it reads; the
            lowest-scored columns are evicted first (:func:`latent_graph.engine.compress`). None = no cap.
        restate: Whether the prompt restates the question (False: a later agent of the compact layout, which
            reads the question in the cache it receives; its prompt is the instruction + its private context).
    """

    model: NodeModel
    name: str
    instruction: str
    sees_context: bool = False
    memory: str = DEFAULT_MEMORY
    branch: bool = False
    inspect: int = 0
    max_questions: int = MAX_QUESTIONS
    handle_store: HandleStore | LiveHandleStore | None = None
    cache_budget: int | None = None
    restate: bool = True
    sends: ClassVar[Sends] = "latent"

    def __post_init__(self) -> None:
        engine = engine_of(self.model)  # checks the model's kind once, here
        if engine is not None:
            self.model = engine  # the same model behind its chat face is the same engine

    # ------------------------------------------------------------- runs
    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """``self(input, config)`` (LangGraph runs the node through this when the graph runs synchronously)."""
        return self(input, config)  # type: ignore[operator,no-any-return]

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The run in a worker thread; cancelled (``timeout=``), it stops at the next latent step or token."""
        return await in_worker(self.model, self, input, ambient(config))

    def begin(self, config: RunnableConfig | None) -> RunnableConfig | None:
        """Start a run: wait until cancelled runs on this model have stopped; the config to run under
        (:func:`~latent_graph.nodes.streaming.ambient`: the caller's when called by hand without one)."""
        settle(self.model)
        return ambient(config)

    @property
    def foreign(self) -> bool:
        """Whether this node runs on a chat model other than a latent model (it reads text only)."""
        return isinstance(self.model, BaseChatModel)

    @property
    def metadata(self) -> dict[str, Any]:
        """LangGraph node metadata declaring what this node passes on (read by drawings and the CLI)."""
        return sends_metadata(self.sends, "text" if self.foreign else None, self.branch)

    @property
    def handles(self) -> HandleStore | LiveHandleStore:
        """The handle store this node writes to and resolves references through."""
        return self.handle_store if self.handle_store is not None else default_handle_store()

    # ---------------------------------------------------------------- inputs
    def resolved(self, state: dict[str, Any], config: Any = None) -> dict[str, Any]:
        """``state`` with ``handle`` and ``branches`` references resolved to handles (objects pass through).

        Every value goes through the handle store's ``load``, so anything that is neither a LatentHandle nor a
        well-formed, signed reference of this run's namespace (the store's ``namespace(config)``) raises a
        :class:`~latent_graph.errors.HandleRefError` there (one check, every store).
        """
        handle, branches = state.get("handle"), branch_map(state.get("branches"))
        if handle is None and not branches:
            return state
        store = self.handles
        ns = store.namespace(config)
        return {
            **state,
            "handle": None if handle is None else store.load(handle, self._reader(handle), namespace=ns),
            "branches": {k: store.load(v, self._reader(v), namespace=ns) for k, v in branches.items()},
        }

    def _reader(self, ref: Any) -> Any:
        """The model a reference is resolved for: this node's, else (a foreign chat model) its ``handoff_model``."""
        return getattr(self, "handoff_model", None) if self.foreign else self.model

    def incoming(self, state: dict[str, Any], config: Any = None) -> LatentHandle | None:
        """The handle this agent reads: merged branches (stable key order) if any, else ``state['handle']``.

        A handle left by an earlier run of the same thread is dropped or windowed by the
        thread policy (:mod:`latent_graph.state.threads`).
        """
        state = self.resolved(state, config)
        prefix = carried(state, config, int(getattr(self.model, "max_context", 0) or 2048))
        branches = state.get("branches") or {}
        if branches and not self.branch:
            prefix = merge_branches(prefix, [branches[k] for k in ordered(branches)])
        if self.cache_budget is not None and prefix is not None and not self.foreign:
            prefix = compress(self.model, prefix, KVPolicy(budget=self.cache_budget))
        return prefix

    def prompts(self, state: dict[str, Any]) -> list[str]:
        qs = questions_of(state, self.max_questions)
        ctx = self.contexts(state, len(qs))
        inbox = unread(state.get("inbox"))
        return [
            compose_prompt(self.instruction, q if self.restate else None, ctx[i] or None, inbox, i)
            for i, q in enumerate(qs)
        ]

    def contexts(self, state: dict[str, Any], n: int) -> list[str]:
        """Private text per question this agent sees: the shared ``context`` (if it sees it) + its own."""
        shared = (contexts_of(state, n) if self.sees_context else None) or [""] * n
        own = agent_contexts_of(state, self.name, n) or [""] * n
        return [" ".join(c for c in pair if c) for pair in zip(shared, own)]

    def consumed(self, state: dict[str, Any]) -> dict[str, Any]:
        """State updates that mark this agent's inputs as read."""
        update: dict[str, Any] = {}
        pending = unread(state.get("inbox"))
        if pending:
            update["inbox"] = read_update(pending)
        if state.get("branches") and not self.branch:
            update["branches"] = None
        return update

    def output(self, handle: LatentHandle, config: Any = None, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Where this node's handle goes: ``branches[key]`` for a parallel branch, else ``handle``.

        The key is the agent name, or ``name[i]`` for the i-th ``Send`` task of its node, so
        N Sends to one branch node keep N branches.
        """
        ref = self.handles.save(handle, self.handles.namespace(config))
        if self.branch:
            return {"branches": {branch_key(self.name, config): {**ref, "writer": task_id(config)}}}
        return {"handle": ref, "handle_turn": int((state or {}).get("turn") or 0)}

    @staticmethod
    def in_turn(record: Any, state: dict[str, Any]) -> Any:
        """``record`` stamped with the thread's current turn (the ``trace`` reducer keeps one turn)."""
        return {**record, "turn": int((state or {}).get("turn") or 0)}

    def trace_record(self, config: Any, **fields: Any) -> NodeRecord:
        """This run's trace record (:func:`node_record` of ``fields``), naming the node, its kind, its memory policy
        and the LangGraph task the run was (graph node and branch key)."""
        task = {"graph_node": graph_node(config, self.name), "branch": branch_key(self.name, config)}
        return node_record(node=self.name, kind=self.sends, memory=self.memory, task=task, **fields)

    # ------------------------------------------------------------ latent steps
    def step_callback(self, steps_log: list[StepRecord], config: Any = None) -> Callable[[StepInfo], None]:
        """An ``on_step`` callback that records each step and emits it (custom stream and ``astream_events``)."""
        emit = emitter(config)
        model = self.model

        def on_step(info: StepInfo) -> None:
            check_stop()
            record = StepRecord(step=info.step, norm=[round(float(x), 4) for x in info.hidden.float().norm(dim=-1)])
            if self.inspect:
                near = model.nearest_tokens(info.embedding, k=self.inspect)
                record["nearest"] = [[t for t, _ in row] for row in near]
                record["cosine"] = [round(row[0][1], 4) for row in near]
                record["lens"] = [
                    [[t, round(p, 4)] for t, p in row] for row in model.logit_lens(info.hidden, k=self.inspect)
                ]
            steps_log.append(record)
            emit({"event": "latent_step", "node": self.name, "total": int(getattr(self, "steps", 0)), **record})

        return on_step
