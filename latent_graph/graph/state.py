"""Graph state for latent multi-agent graphs, with the reducers that keep it consistent.

- ``questions`` (and optional per-question ``context``, shown to the first agent only);
- ``handle``: the latent edge carrier — the last latent agent's :class:`LatentHandle`;
- ``branches``: handles written by parallel branches, merged by the judger;
- ``inbox``: text-edge messages not yet read (the next agent consumes them);
- ``messages``: every text message ever sent (the transcript);
- ``trace``: one record per executed node; ``answers``: the judger's output.

The handle is hidden from the graph's input/output schema unless asked for.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from latent_graph.engine import LatentHandle
from latent_graph.errors import BatchSizeMismatchError, BranchCollisionError, InvalidArgumentError
from latent_graph.graph.trace import NodeRecord

CLEAR: dict[str, str] = {"op": "clear"}


class Message(TypedDict):
    """Text one agent sent over a text edge (or the judger's answers)."""

    agent: str
    """The sender."""
    texts: list[str]
    """One text per batch row (question)."""


def inbox_reducer(left: list[Message] | None, right: Any) -> list[Message]:
    """Append messages; the update ``CLEAR`` empties the inbox (the reader consumed it)."""
    if right == CLEAR:
        return []
    return [*(left or []), *(right or [])]


def branches_reducer(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Merge branch handles by branch key (see :mod:`latent_graph.graph.tasks`); ``None`` clears them.

    Raises:
        BranchCollisionError: Two writes put different handles under one key (two
            tasks of one node that do not say which Send task they are).
    """
    if right is None:
        return {}
    left = left or {}
    clash = sorted(k for k, v in right.items() if k in left and left[k] is not v)
    if clash:
        raise BranchCollisionError(
            f"parallel branches {clash} were written twice before a reader merged them; every Send task "
            "keeps its own key (node[i]) when it runs under LangGraph, so two different tasks used one name"
        )
    return {**left, **right}


class LatentState(TypedDict, total=False):
    """Full internal state of a latent_graph graph."""

    questions: list[str]
    """The batch of questions (one row each)."""
    context: list[str] | None
    """Optional private context per question, shown to agents with ``sees_context``."""
    handle: LatentHandle | None
    """The latent edge carrier: the last latent agent's handle (None after a text edge)."""
    branches: Annotated[dict[str, LatentHandle], branches_reducer]
    """Handles written by parallel branches (keyed ``node`` or ``node[i]`` per Send task), merged by the next reader."""
    inbox: Annotated[list[Message], inbox_reducer]
    """Text-edge messages not yet read (the next agent consumes them)."""
    messages: Annotated[list[Message], operator.add]
    """Every text message ever sent (the transcript)."""
    trace: Annotated[list[NodeRecord], operator.add]
    """One record per executed node, in order."""
    answers: list[str]
    """The judger's answer per question."""


class GraphInput(TypedDict, total=False):
    """What a caller passes to ``graph.invoke``."""

    questions: list[str]
    """The batch of questions."""
    context: list[str] | None
    """Optional private context per question."""


class GraphOutput(TypedDict, total=False):
    """What ``graph.invoke`` returns by default (no handle)."""

    answers: list[str]
    """The judger's answer per question."""
    messages: list[Message]
    """The transcript of text messages."""
    trace: list[NodeRecord]
    """One record per executed node."""


class GraphOutputWithHandle(GraphOutput, total=False):
    """Output schema that also exposes the final latent handle."""

    handle: LatentHandle | None
    """The final handle."""


def questions_of(state: dict[str, Any]) -> list[str]:
    """The batch of questions in ``state`` (a single string counts as one)."""
    qs = state.get("questions")
    if isinstance(qs, str):
        qs = [qs]
    if not qs or not all(isinstance(q, str) for q in qs):
        raise InvalidArgumentError("graph input needs 'questions': a non-empty list of strings")
    return list(qs)


def contexts_of(state: dict[str, Any], n: int) -> list[str] | None:
    ctx = state.get("context")
    if ctx is None:
        return None
    if isinstance(ctx, str):
        ctx = [ctx] * n
    if len(ctx) != n:
        raise BatchSizeMismatchError(f"{len(ctx)} contexts for {n} questions")
    return list(ctx)
