"""LocalLatentModel's Runnable-shaped face, without importing LangChain.

``LocalLatentModel`` has ``invoke`` / ``batch`` / ``stream`` / ``ainvoke`` / ``astream`` and is
callable, so langchain-core's own coercion makes it a chain step: ``prompt | model`` and
``model | StrOutputParser()`` wrap it in a ``RunnableLambda`` (a callable is Runnable-like in
``coerce_to_runnable``), with the chain's callbacks, tags and run names. Inputs are read by
duck typing, so the engine never imports langchain_core:

- a string -> the decoded text of that prompt (one user turn);
- a prompt value (has ``to_messages()``) or a list of messages (``.type``/``.content``) ->
  the decoded text of that chat, rendered by the chat template (system/human/ai/tool turns);
- a request dict ``{"prompt", "handle", "mode": "think" | "decode", "steps", ...}`` -> a new
  handle (``think``, latent steps) or a :class:`~latent_graph.engine.results.Decoded`.

Token streaming inside a LangChain chain and ``AIMessage`` outputs come from the chat-model
face (``latent_graph.langchain.as_chat_model(model)``); ``model.stream(text)`` streams text here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from latent_graph.engine.chat_turns import ChatTurn
from latent_graph.errors import InvalidArgumentError

ROLE_OF_TYPE = {"system": "system", "human": "user", "user": "user", "ai": "assistant", "assistant": "assistant",
                "tool": "tool"}
"""Message ``type`` (LangChain's names) -> chat-template role."""


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of text blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
    raise InvalidArgumentError(f"message content must be a string or a list of text blocks, got {type(content).__name__}")


def to_turns(messages: Any) -> list[ChatTurn]:
    """Messages (anything with ``.type`` and ``.content``, e.g. LangChain's) as chat turns."""
    turns: list[ChatTurn] = []
    for m in messages:
        role = ROLE_OF_TYPE.get(getattr(m, "type", None) or "")
        if role is None:
            raise InvalidArgumentError(f"cannot put a {type(m).__name__} message into a chat")
        turn: ChatTurn = {"role": role, "content": message_text(m.content)}
        calls = getattr(m, "tool_calls", None)
        if role == "assistant" and calls:
            turn["tool_calls"] = [{"name": c["name"], "arguments": c.get("args", {}), "id": c.get("id") or ""} for c in calls]
        if role == "tool":
            turn["tool_call_id"] = str(getattr(m, "tool_call_id", "") or "")
        turns.append(turn)
    return turns


def _chat(value: Any) -> list[ChatTurn] | None:
    if hasattr(value, "to_messages") and not isinstance(value, (str, dict)):
        value = value.to_messages()
    if hasattr(value, "type") and hasattr(value, "content"):
        value = [value]
    if isinstance(value, list) and value and all(hasattr(m, "type") and hasattr(m, "content") for m in value):
        return to_turns(value)
    return None


def run(model: Any, value: Any, **kwargs: Any) -> Any:
    """One request (see the module docstring); ``kwargs`` are :meth:`decode` keyword arguments."""
    if isinstance(value, str):
        return model.decode(None, value, **kwargs).text
    if hasattr(value, "to_string") and not hasattr(value, "to_messages"):
        return model.decode(None, value.to_string(), **kwargs).text
    turns = _chat(value)
    if turns is not None:
        return model.decode(None, None, messages=[turns], **kwargs).text
    if not isinstance(value, dict) or "prompt" not in value:
        raise InvalidArgumentError("invoke() takes a prompt string, chat messages, a prompt value or a dict with "
                                   f"at least a 'prompt' key; got {type(value).__name__}")
    req = {**value, **kwargs}
    mode, handle, prompt = req.pop("mode", "think"), req.pop("handle", None), req.pop("prompt")
    if mode == "think":
        return model.think(handle, prompt, **req)
    if mode == "decode":
        return model.decode(handle, prompt, **req)
    raise InvalidArgumentError(f"mode must be 'think' or 'decode', got {mode!r}")


def stream(model: Any, value: Any, **kwargs: Any) -> Iterator[Any]:
    """Text deltas of a string or chat input as generated; other requests yield their one result."""
    turns = None if isinstance(value, (str, dict)) else _chat(value)
    if isinstance(value, str) or turns is not None:
        args = (value, kwargs) if turns is None else (None, {**kwargs, "messages": [turns]})
        for chunk in model.decode_stream(None, args[0], **args[1]):
            if chunk.text:
                yield chunk.text
        return
    yield run(model, value, **kwargs)


async def astream(model: Any, value: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """:func:`stream` with each step run in a worker thread (the event loop stays free)."""
    it = stream(model, value, **kwargs)
    done = object()
    while (item := await asyncio.to_thread(next, it, done)) is not done:
        yield item
