"""How a node reads the state it is handed, whatever the graph's state type, and the conversation in it.

A LangGraph node receives its graph's state as the graph declared it: a dict (``TypedDict`` states,
``MessagesState``), a pydantic ``BaseModel`` or a dataclass. :func:`values_of` is the one reader that turns
any of them into a plain dict of channel values (a node's dict update applies to every state type, and
keys the graph does not declare are ignored by LangGraph, so updates need no conversion).

:func:`conversation_of` is the one owner of the chat rule. A state with LangGraph's ``messages`` channel
(``add_messages``) holds a conversation when it contains a ``HumanMessage``:

- when the state has no ``questions``, the question is the last human message's text and the turns
  before it are the per-question ``context`` (shown to the agents that see context);
- an agent that decodes text (a text agent, the judger) answers into the conversation: its reply is
  appended to ``messages`` as ``AIMessage(name=<agent>)``, for a run of one question (a batch of several
  questions is not one conversation: its answers stay in ``answers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_messages,
    get_buffer_string,
)
from pydantic import BaseModel

from latent_graph.errors import InvalidArgumentError, StateTypeError

MESSAGES = "messages"
"""LangGraph's conversation channel (``MessagesState``, ``add_messages``)."""


def values_of(state: Any) -> dict[str, Any]:
    """The channel values of ``state`` as a plain dict: a dict/TypedDict as is, a pydantic model's or a
    dataclass's fields (shallow: values keep their types, messages stay message objects).

    Raises:
        StateTypeError: ``state`` is none of these (a node was called with something that is not a state).
    """
    if isinstance(state, dict):
        return state
    if isinstance(state, Mapping):
        return dict(state)
    if isinstance(state, BaseModel):
        return {name: getattr(state, name) for name in type(state).model_fields}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    raise StateTypeError(
        f"a node got a {type(state).__name__} as its state; latent_graph nodes read dict/TypedDict states, "
        "pydantic models and dataclasses (what StateGraph(schema) hands its nodes)"
    )


class Conversation(NamedTuple):
    """The chat a state holds: the last human message and what came before it."""

    question: str
    """Text of the last ``HumanMessage``."""
    history: str
    """The text turns before it, one ``Role: text`` line each ("" when it opens the conversation); tool
    traffic (tool results, replies that only call tools, e.g. a supervisor's handoffs) is left out."""


def conversation_of(state: Mapping[str, Any]) -> Conversation | None:
    """The conversation in ``state['messages']`` (None when there is no channel or no human message in it).

    Messages may be message objects or anything ``convert_to_messages`` reads (``("user", "hi")``, dicts).
    """
    raw = state.get(MESSAGES)
    if not raw or not isinstance(raw, Sequence) or isinstance(raw, str):
        return None
    try:
        messages = convert_to_messages(raw)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise InvalidArgumentError(f"state 'messages' is not a list of chat messages: {exc}") from exc
    last = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), None)
    if last is None:
        return None
    turns = [m for m in messages[:last] if not isinstance(m, ToolMessage) and not getattr(m, "tool_calls", None)]
    return Conversation(messages[last].text, get_buffer_string([m for m in turns if m.text]))


def reply(
    state: Mapping[str, Any], agent: str, texts: Sequence[str], ids: Sequence[str | None] = ()
) -> dict[str, list[BaseMessage]]:
    """The update appending ``agent``'s answer to the conversation: ``{"messages": [AIMessage]}`` when
    ``state`` holds one and the run has one question, else nothing (see the module docstring). ``ids``: the
    id of each row's reply (its streamed tokens carry it, so LangGraph's ``messages`` stream sends it once)."""
    if len(texts) != 1 or conversation_of(state) is None:
        return {}
    return {MESSAGES: [AIMessage(content=texts[0], name=agent, id=next(iter(ids), None))]}
