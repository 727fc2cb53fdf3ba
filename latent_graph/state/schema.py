"""Graph state for latent multi-agent graphs, with the reducers that keep it consistent.

- ``questions`` (and optional per-question ``context``, shown to the first agent only);
- ``handle``: the latent edge carrier — a :class:`~latent_graph.persist.refs.HandleRef` (plain JSON)
  to the last latent agent's handle, whose tensors live in a blob store (nodes also accept a
  :class:`LatentHandle` object from hand-written code; ``HandleStore.load(ref)`` gives one back);
- ``branches``: references written by parallel branches, merged by the judger;
- ``inbox``: text-edge messages, marked read by the agent that consumes them;
- ``transcript``: every text message ever sent (named so it cannot collide with LangGraph's chat channel);
- ``messages``: LangGraph's ``add_messages`` channel (as in ``MessagesState``): a run without
  ``questions`` reads its question and context from the conversation, and the agents that decode text
  answer into it (:mod:`latent_graph.state.access`), so a prebuilt team is a ``MessagesState`` agent too;
- ``trace``: one record per executed node; ``answers``: the judger's output.

Lists merge by id and reading is a monotonic flag, so a compiled graph used as a
node of another graph (a subgraph, which returns its whole state) merges once.
The handle reference is part of the input and the output, so a latent edge flows into and
out of a subgraph.
"""

import operator
import sys
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.channels import LastValue
from langgraph.graph.message import add_messages
from typing_extensions import NotRequired, TypedDict

from latent_graph.errors import (
    BatchSizeMismatchError,
    BranchCollisionError,
    HandleRefError,
    InvalidArgumentError,
    NoQuestionsError,
    TooManyQuestionsError,
)
from latent_graph.persist.refs import HandleRef
from latent_graph.state.access import conversation_of
from latent_graph.state.trace import NodeRecord

CLEAR: dict[str, str] = {"op": "clear"}
"""Inbox update marking every message read."""


# ------------------------------------------------ values that pickle by content
def canonical(value: Any) -> Any:
    """``value`` rebuilt so that its pickle depends on its content only, so LangGraph's default node cache key hits.

    ``CachePolicy()``'s default key is ``pickle.dumps`` of the node's input (the state dict, as the channels hold
    it). Pickle writes a string, list or dict once and refers back to it wherever the *same object* appears again,
    so two equal states pickle differently when their objects are shared differently: a node's fresh output (a
    segment's agent name that is also the trace record's ``node``, a one-character token that is CPython's shared
    object) against the same output read back from the cache (every value a new object, keys from msgpack's key
    cache). Every value the package's channels hold is therefore rebuilt by :func:`canonical`: every string interned
    (one object per distinct string, so sharing follows equality), containers new, tuples as the lists a serializer
    gives back. Equal content, equal pickle; in another process too (``SqliteCache``).
    """
    if isinstance(value, str):
        return sys.intern(value if type(value) is str else str.__str__(value))
    if isinstance(value, dict):
        return {canonical(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


class CanonicalValue(LastValue):  # type: ignore[type-arg]
    """LangGraph's ``LastValue`` channel holding :func:`canonical` values (one write per step, as ``LastValue``)."""

    def update(self, values: Sequence[Any]) -> bool:
        changed = super().update(values)
        if changed:
            self.value = canonical(self.value)
        return changed

    def from_checkpoint(self, checkpoint: Any) -> "CanonicalValue":
        channel = super().from_checkpoint(checkpoint)
        if channel.is_available():
            channel.value = canonical(channel.value)
        return channel


class Message(TypedDict):
    """Text one agent sent over a text edge (or the judger's answers)."""

    agent: str
    """The sender."""
    texts: list[str]
    """One text per batch row (question)."""
    id: NotRequired[str]
    """Unique id (reducers keep a message once, however often a subgraph returns it)."""
    read: NotRequired[bool]
    """In the inbox: whether a reader consumed it (read messages are kept, marked, never re-read)."""


def new_message(agent: str, texts: list[str]) -> Message:
    """A message with a fresh id."""
    return Message(agent=agent, texts=list(texts), id=uuid.uuid4().hex)


def read_update(messages: list[Message]) -> dict[str, Any]:
    """Inbox update marking ``messages`` read."""
    return {"op": "read", "ids": [m["id"] for m in messages if "id" in m]}


def unread(inbox: list[Message] | None) -> list[Message]:
    """Messages of an inbox nobody has read yet."""
    return [m for m in inbox or [] if not m.get("read")]


def merge_by_id(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append records/messages, keeping each id once (items without an id are always appended).

    A compiled subgraph used as a node returns its whole list, including what it
    received; merging by id makes that a no-op for items already present.
    """
    out = list(left or [])
    seen = {x["id"] for x in out if isinstance(x, dict) and "id" in x}
    for x in right or []:
        if isinstance(x, dict) and "id" in x:
            if x["id"] in seen:
                continue
            seen.add(x["id"])
        out.append(x)
    return canonical(out)  # type: ignore[no-any-return]


def trace_reducer(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """:func:`merge_by_id`, keeping only the newest turn's records: a reused thread's trace stays one turn long.

    Nodes stamp each record with the thread's ``turn`` (see :mod:`latent_graph.state.threads`).
    A new record without a newer stamp than what the trace holds (a compiled subgraph's own
    records carry its inner turn) joins the newest turn; records of earlier turns are dropped
    (they stay in the thread's checkpoint history). Unstamped records are always kept.
    """
    out = merge_by_id(left, right)
    stamps = [x["turn"] for x in out if isinstance(x, dict) and isinstance(x.get("turn"), int)]
    if not stamps:
        return out
    held = max((x["turn"] for x in left or [] if isinstance(x, dict) and isinstance(x.get("turn"), int)), default=0)
    seen = {id(x) for x in left or []}
    out = [
        {**x, "turn": held}
        if id(x) not in seen and isinstance(x, dict) and isinstance(x.get("turn"), int) and x["turn"] < held
        else x
        for x in out
    ]
    newest = max(held, *stamps)
    kept = [x for x in out if not (isinstance(x, dict) and isinstance(x.get("turn"), int) and x["turn"] < newest)]
    return canonical(kept)  # type: ignore[no-any-return]


def inbox_reducer(left: list[Message] | None, right: Any) -> list[Message]:
    """Append messages (by id); ``{"op": "read", "ids": [...]}`` marks them read, ``CLEAR`` marks all read.

    Reading is monotonic: a message that is read anywhere (e.g. inside a subgraph,
    which returns its inbox with the flag set) stays read in the parent.
    """
    left = [m if "id" in m else {**m, "id": uuid.uuid4().hex} for m in left or []]
    if isinstance(right, dict) and right.get("op") in ("read", "clear"):
        ids = None if right["op"] == "clear" else set(right.get("ids") or [])
        return canonical([{**m, "read": True} if ids is None or m["id"] in ids else m for m in left])  # type: ignore[no-any-return]
    read = {m["id"] for m in right or [] if m.get("read") and "id" in m}
    merged = merge_by_id(left, [m if "id" in m else {**m, "id": uuid.uuid4().hex} for m in right or []])
    return canonical([{**m, "read": True} if m["id"] in read else m for m in merged])  # type: ignore[no-any-return]


def branches_reducer(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Merge branch handles by branch key (see :mod:`latent_graph.state.branches`); ``None`` clears them.

    Raises:
        BranchCollisionError: Two writes put different handles under one key (two
            tasks of one node that do not say which Send task they are).
    """
    if right is None:
        return {}
    left, right = branch_map(left), branch_map(right)
    clash = sorted(k for k, v in right.items() if k in left and not same_handle(left[k], v))
    if clash:
        raise BranchCollisionError(
            f"parallel branches {clash} were written twice before a reader merged them; every Send task "
            "keeps its own key (node[i]) when it runs under LangGraph, so two different tasks used one name"
        )
    return canonical({**left, **right})  # type: ignore[no-any-return]


def branch_map(value: Any) -> dict[str, Any]:
    """``value`` as the ``branches`` map (None: empty); anything but a dict raises :class:`HandleRefError`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HandleRefError(
            f"'branches' must map branch keys to handle references, got {type(value).__name__}; "
            "pass back the map a graph returned, unchanged"
        )
    return value


def same_handle(a: Any, b: Any) -> bool:
    """Whether two handle values (references or handle objects) are the same handle."""
    if isinstance(a, dict) and isinstance(b, dict):  # a blob reference's digest, or a live reference's id
        name = a.get("digest") or a.get("live")
        return name is not None and (name, a.get("writer")) == (b.get("digest") or b.get("live"), b.get("writer"))
    return a is b


class LatentState(TypedDict, total=False):
    """Full internal state of a latent_graph graph."""

    questions: list[str]
    """The batch of questions (one row each)."""
    context: list[str] | None
    """Optional private context per question, shown to agents with ``sees_context``."""
    agent_context: dict[str, list[str]] | None
    """Private text per question for one named agent only (``{agent: [text per question]}``)."""
    handle: Annotated[HandleRef | None, CanonicalValue]
    """The latent edge carrier: a reference to the last latent agent's handle (None after a text edge)."""
    branches: Annotated[dict[str, HandleRef], branches_reducer]
    """References written by parallel branches (keyed ``node`` or ``node[i]`` per Send task), merged by the next reader."""
    inbox: Annotated[list[Message], inbox_reducer]
    """Text-edge messages; the next agent reads the unread ones and marks them read."""
    transcript: Annotated[list[Message], merge_by_id]
    """Every text message ever sent."""
    messages: Annotated[list[AnyMessage], add_messages]
    """LangGraph's conversation channel: the question when there are no ``questions``; replies are appended."""
    trace: Annotated[list[NodeRecord], trace_reducer]
    """One record per executed node of the current turn, in order (earlier turns: the checkpoint history)."""
    answers: Annotated[list[str], CanonicalValue]
    """The judger's answer per question."""
    turn: Annotated[int, operator.add]
    """Runs (turns) this thread has finished: answer nodes add 1 (see :mod:`latent_graph.state.threads`)."""
    handle_turn: int
    """The turn in which ``handle`` was written (an older one is carried over by the thread policy)."""


class GraphInput(TypedDict, total=False):
    """What a caller (or a parent graph, when the graph is a subgraph) passes to ``graph.invoke``."""

    questions: list[str]
    """The batch of questions."""
    context: list[str] | None
    """Optional private context per question."""
    agent_context: dict[str, list[str]] | None
    """Private text per question for one named agent only (``{agent: [text per question]}``)."""
    handle: HandleRef | None
    """A handle reference to continue from (a parent graph's latent edge into this graph; a LatentHandle works too)."""
    branches: dict[str, HandleRef]
    """Parallel branch references to merge (a parent's fan-out into this graph)."""
    inbox: list[Message]
    """Text-edge messages sent into this graph."""
    messages: Annotated[list[AnyMessage], add_messages]
    """A conversation (``MessagesState``): without ``questions``, its last human message is the question."""


class GraphOutput(TypedDict, total=False):
    """What ``graph.invoke`` returns: answers, transcript, trace, inbox and the final handle reference."""

    answers: list[str]
    """The judger's answer per question."""
    transcript: list[Message]
    """The transcript of text messages."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation, with the answer appended as an ``AIMessage`` named by the judger (one-question runs)."""
    trace: list[NodeRecord]
    """One record per executed node."""
    inbox: list[Message]
    """The inbox with read flags (a parent graph learns what this graph consumed)."""
    handle: HandleRef | None
    """The final handle's reference: a parent graph reads the latent edge out of this graph (no stale handle)."""


MAX_QUESTIONS = 256
"""Default cap on the questions of one graph invocation (one batch); graphs take ``max_questions=``."""


def questions_of(state: dict[str, Any], limit: int = MAX_QUESTIONS) -> list[str]:
    """The batch of questions in ``state`` (a single string counts as one); at most ``limit`` of them.

    Without ``questions``, the last human message of the conversation in ``messages`` is the one question.
    """
    qs = state.get("questions")
    conversation = None if qs else conversation_of(state)
    if conversation is not None:
        return [conversation.question]
    if isinstance(qs, str):
        qs = [qs]
    if isinstance(qs, (list, tuple)) and len(qs) > limit:  # before touching them: refuse in O(1)
        raise TooManyQuestionsError(
            f"graph input has {len(qs)} questions; at most {limit} per invocation "
            "(raise max_questions= when building the graph, or split the batch)"
        )
    if not qs:
        raise NoQuestionsError(
            "graph input needs 'questions' (a non-empty list of strings) or 'messages' holding a HumanMessage "
            "(LangGraph's MessagesState: its last human message is the question)"
        )
    if not isinstance(qs, (list, tuple)) or not all(isinstance(q, str) for q in qs):
        raise InvalidArgumentError("graph input 'questions' must be a non-empty list of strings")
    return list(qs)


def contexts_of(state: dict[str, Any], n: int) -> list[str] | None:
    """Per-question private context: ``state['context']``, else the conversation before the question it asks."""
    ctx = state.get("context")
    if ctx is None:
        conversation = None if state.get("questions") else conversation_of(state)
        return [conversation.history] if conversation and conversation.history else None
    if isinstance(ctx, str):
        ctx = [ctx] * n
    if not isinstance(ctx, (list, tuple)) or not all(c is None or isinstance(c, str) for c in ctx):
        raise InvalidArgumentError("graph input 'context' must be a string or a list of strings (one per question)")
    if len(ctx) != n:
        raise BatchSizeMismatchError(f"{len(ctx)} contexts for {n} questions")
    return list(ctx)


def agent_contexts_of(state: dict[str, Any], agent: str, n: int) -> list[str] | None:
    """Per-question private text for ``agent`` from ``state['agent_context']`` (None if it has none)."""
    mapping = state.get("agent_context") or {}
    if not isinstance(mapping, dict):
        raise InvalidArgumentError("graph input 'agent_context' must map agent names to per-question texts")
    if agent not in mapping:
        return None
    return contexts_of({"context": mapping[agent]}, n)
