"""LangChain's input protocol, read by duck typing: messages (``.type``, ``.content``, ``.tool_calls``) as chat turns.

The engine renders chats from plain :class:`~latent_graph.engine.ChatTurn` dicts; this is where LangChain's
message objects (or anything shaped like them) become those turns, for :class:`LatentRunnable` and the
chat-model face.
"""

from __future__ import annotations

from typing import Any

from latent_graph.engine import ChatTurn
from latent_graph.errors import InvalidArgumentError

ROLE_OF_TYPE = {
    "system": "system",
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "tool": "tool",
}
"""Message ``type`` (LangChain's names) -> chat-template role."""


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of text blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", ""))
            for b in content
            if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
        )
    raise InvalidArgumentError(
        f"message content must be a string or a list of text blocks, got {type(content).__name__}"
    )


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
            turn["tool_calls"] = [
                {"name": c["name"], "arguments": c.get("args", {}), "id": c.get("id") or ""} for c in calls
            ]
        if role == "tool":
            turn["tool_call_id"] = str(getattr(m, "tool_call_id", "") or "")
        turns.append(turn)
    return turns
