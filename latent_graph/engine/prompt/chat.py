"""Whole chats and tool turns (system / user / assistant / tool) through the tokenizer's own chat template.

:func:`render_chat` renders a list of :class:`ChatTurn` with the template (``tools=`` passed
when the template knows tools, e.g. Qwen3's ``<tool_call>`` tags); every piece of message
text - contents, tool-call names and arguments, tool results - is user data, so its
character span is recorded (by rendering once more with stand-ins) and
:func:`~latent_graph.engine.prompt.turn.encode_turn` tokenizes it literally.

A template without tool support (SmolLM2's) gets the tool format of
:mod:`latent_graph.engine.prompt.tools` spelt out in plain turns: the tool list in the system
turn, tool calls as ``<tool_call>`` blocks in the assistant turn, tool results as a user
turn inside ``<tool_response>`` tags.

:func:`render_tool_turn` renders what follows an open assistant turn that decoded a tool call: its close,
the tool results (the template's own ``tool`` turns, or one user turn in ``<tool_response>`` tags) and a
new assistant header; result text is user data too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

import torch

from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.prompt.tools import CALL_CLOSE, CALL_OPEN, RESPONSE_CLOSE, RESPONSE_OPEN, tools_system_text
from latent_graph.engine.prompt.turn import Spans, encode_turn, fill_markers, left_pad, pad_id
from latent_graph.errors import BatchSizeMismatchError, EmptyPromptError, InvalidArgumentError

ROLES = ("system", "user", "assistant", "tool")


class ToolCall(TypedDict):
    """One tool call an assistant turn made."""

    name: str
    """The tool's name."""
    arguments: dict[str, Any]
    """Its arguments (a JSON object)."""
    id: str
    """The call's id (a tool turn answers it)."""


class ChatTurn(TypedDict, total=False):
    """One message of a chat."""

    role: str
    """``system``, ``user``, ``assistant`` or ``tool``."""
    content: str
    """The message text (user data: tokenized literally)."""
    tool_calls: list[ToolCall]
    """Tool calls of an assistant turn."""
    tool_call_id: str
    """The call a tool turn answers."""


def supports_tools(tokenizer: Any) -> bool:
    """True when the chat template renders a ``tools`` list itself."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return isinstance(template, str) and "tools" in template and "tool_call" in template


def check_chat(turns: Any) -> list[ChatTurn]:
    """``turns`` if it is a non-empty list of well-formed turns, else a named error."""
    if not isinstance(turns, (list, tuple)) or not turns:
        raise EmptyPromptError("a chat needs at least one message")
    for t in turns:
        if not isinstance(t, dict) or t.get("role") not in ROLES:
            raise InvalidArgumentError(f"each chat turn is a dict with a role in {ROLES}, got {t!r}")
        if not isinstance(t.get("content", ""), str):
            raise InvalidArgumentError(f"chat turn content must be a string, got {type(t.get('content')).__name__}")
    return list(turns)


def _plain_turns(turns: list[ChatTurn], tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The turns for a template without tool support: tools, calls and results spelt out as text."""
    out: list[dict[str, Any]] = []
    for t in turns:
        content = t.get("content", "")
        if t["role"] == "assistant" and t.get("tool_calls"):
            blocks = [
                CALL_OPEN + json.dumps({"name": c["name"], "arguments": c["arguments"]}) + CALL_CLOSE
                for c in t["tool_calls"]
            ]
            content = "\n".join([content, *blocks] if content else blocks)
        if t["role"] == "tool":
            out.append({"role": "user", "content": RESPONSE_OPEN + content + RESPONSE_CLOSE})
            continue
        out.append({"role": t["role"], "content": content})
    if tools:
        text = tools_system_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def _template_turns(turns: list[ChatTurn]) -> list[dict[str, Any]]:
    """The turns for a template with tool support (arguments as JSON text so they are one literal span)."""
    out: list[dict[str, Any]] = []
    for t in turns:
        m: dict[str, Any] = {"role": t["role"], "content": t.get("content", "")}
        if t.get("tool_calls"):
            m["tool_calls"] = [
                {
                    "id": c.get("id", ""),
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for c in t["tool_calls"]
            ]
        if t.get("tool_call_id"):
            m["tool_call_id"] = t["tool_call_id"]
        out.append(m)
    return out


def _mark(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A copy of ``messages`` with every text replaced by a unique stand-in, and the stand-ins' values."""
    fills: dict[str, str] = {}

    def stand_in(value: str) -> str:
        key = f"\u2063{len(fills)}\u2063"
        fills[key] = value
        return key

    marked = []
    for m in messages:
        c = dict(m, content=stand_in(m["content"]) if m["content"] else "")
        if m.get("tool_calls"):
            c["tool_calls"] = [
                {
                    **tc,
                    "function": {
                        "name": stand_in(tc["function"]["name"]),
                        "arguments": stand_in(tc["function"]["arguments"]),
                    },
                }
                for tc in m["tool_calls"]
            ]
        marked.append(c)
    return marked, fills


def render_chat(
    tokenizer: Any, turns: Sequence[ChatTurn], tools: list[dict[str, Any]] | None = None, generation: bool = True
) -> tuple[str, Spans]:
    """(rendered chat text, character spans of message text in it) for a fresh cache.

    Args:
        tokenizer: Tokenizer with a chat template.
        turns: The chat (see :class:`ChatTurn`).
        tools: JSON-schema tool specs ``{"type": "function", "function": {name, description, parameters}}``.
        generation: End with an open assistant turn.
    """
    turns = check_chat(turns)
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidArgumentError("whole chats need a tokenizer with a chat template")
    native = supports_tools(tokenizer)
    messages = _template_turns(turns) if native else _plain_turns(turns, tools)
    extra = {"tools": tools} if native and tools else {}

    def render(msgs: list[dict[str, Any]]) -> str:
        return str(tokenizer.apply_chat_template(msgs, add_generation_prompt=generation, tokenize=False, **extra))

    marked, fills = _mark(messages)
    return fill_markers(render(messages), render(marked), fills)


def chat_rows(
    tokenizer: Any, chats: Sequence[Sequence[ChatTurn]], tools: list[dict[str, Any]] | None = None
) -> list[list[int]]:
    """Render and tokenize one chat per row for a fresh cache (message text literal): token ids per row, unpadded."""
    if not isinstance(chats, (list, tuple)) or not chats:
        raise InvalidArgumentError("messages must be a non-empty list of chats (one list of turns per row)")
    return [encode_turn(tokenizer, *render_chat(tokenizer, chat, tools)) for chat in chats]


def encode_chats(
    tokenizer: Any, chats: Sequence[Sequence[ChatTurn]], device: torch.device, tools: list[dict[str, Any]] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`chat_rows` left-padded: ``input_ids`` (B, n), ``mask`` (B, n)."""
    return left_pad(chat_rows(tokenizer, chats, tools), pad_id(tokenizer), device)


def count_chat_tokens(tokenizer: Any, turns: Sequence[ChatTurn], tools: list[dict[str, Any]] | None = None) -> int:
    """Prompt tokens of one chat as the engine feeds it (:func:`chat_rows`)."""
    return len(encode_turn(tokenizer, *render_chat(tokenizer, turns, tools)))


# ------------------------------------------------------------ tool turns
_A, _B = "\u2063A\u2063", "\u2063B\u2063"  # stand-ins of an earlier user / assistant turn while rendering


def _candidates(tokenizer: Any, results: Sequence[str]) -> list[list[dict[str, str]]]:
    """The chat messages that may carry ``results``: the template's own ``tool`` messages (when it knows tools),
    then one user turn of ``<tool_response>`` blocks (the format of templates without tool support)."""
    user = [{"role": "user", "content": "\n".join(RESPONSE_OPEN + r + RESPONSE_CLOSE for r in results)}]
    return [[{"role": "tool", "content": r} for r in results], user] if supports_tools(tokenizer) else [user]


def _render(tokenizer: Any, results: Sequence[str]) -> str:
    """What follows an assistant turn's text: its close, the tool turn(s), a new assistant header (from the template)."""
    if getattr(tokenizer, "chat_template", None):
        for turns in _candidates(tokenizer, results):
            chat = [{"role": "user", "content": _A}, {"role": "assistant", "content": _B}, *turns]
            try:
                full = str(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
            except Exception:  # a template that refuses this shape of chat: try the next one
                continue
            if _B in full:
                return full[full.index(_B) + len(_B) :]
    return "".join(f"\nUser: {t['content']}" for t in _candidates(tokenizer, results)[-1]) + "\nAssistant:"


def render_tool_turn(tokenizer: Any, results: Sequence[str]) -> tuple[str, Spans]:
    """(text appended after an open assistant turn, character spans of the result texts in it).

    Args:
        tokenizer: The model's tokenizer (its chat template decides the turn's markup).
        results: The tool results of one row, in call order (plain text).
    """
    if not results or not all(isinstance(r, str) for r in results):
        raise InvalidArgumentError(f"a tool turn needs one or more result strings, got {results!r}")
    fills = {f"\u2063R{i}\u2063": r for i, r in enumerate(results)}
    return fill_markers(_render(tokenizer, results), _render(tokenizer, list(fills)), fills)


def tool_rows(tokenizer: Any, handle: LatentHandle, results: Sequence[Sequence[str]]) -> list[list[int]]:
    """Token ids of each row's tool turn after ``handle``'s decoded call (``results[b]``: row b's result texts;
    empty = no turn, the row gets no tokens); named errors for a handle a tool turn cannot follow."""
    if not isinstance(handle, LatentHandle) or handle.last_hidden is None:
        raise InvalidArgumentError("a tool turn follows a decoded tool call: pass the handle that decode returned")
    if handle.meta.get("open_turn", "1") != "1":
        raise InvalidArgumentError(
            "a tool turn follows an open assistant turn (the decoded call); this handle's is closed"
        )
    rows = [list(r) for r in results]
    if len(rows) != handle.batch_size:
        raise BatchSizeMismatchError(f"{len(rows)} rows of tool results for a handle of batch size {handle.batch_size}")
    return [encode_turn(tokenizer, *render_tool_turn(tokenizer, r)) if r else [] for r in rows]
