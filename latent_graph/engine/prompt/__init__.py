"""Prompt rendering: agent turns, whole chats, tool turns and the tool-call format, as token ids.

Every piece of user text (prompts, system messages, chat contents, tool results) is tokenized
literally: only the chat template's own markup may produce special tokens.

- :mod:`.turn`: one agent's turn on top of a cache (:func:`encode_prompts`), :func:`encode_turn`, :func:`left_pad`;
- :mod:`.chat`: whole chats (:class:`ChatTurn`) and the tool turn after a decoded call (:func:`render_tool_turn`);
- :mod:`.tools`: the ``<tool_call>`` text format and its decoding constraint;
- :mod:`.literal`: private tokenizer backends (thread-safe literal tokenization).
"""

from latent_graph.engine.prompt.chat import (
    ChatTurn,
    ToolCall,
    chat_rows,
    count_chat_tokens,
    encode_chats,
    render_chat,
    render_tool_turn,
    supports_tools,
    tool_rows,
)
from latent_graph.engine.prompt.tools import TEXT_REPLY, parse_tool_calls, tool_call_constraint, tools_system_text
from latent_graph.engine.prompt.turn import (
    encode_prompts,
    encode_turn,
    format_prompt,
    left_pad,
    markup_ids,
    pad_id,
    prompt_list,
    prompt_rows,
    render_prompt,
)

__all__ = [
    "TEXT_REPLY",
    "ChatTurn",
    "ToolCall",
    "chat_rows",
    "count_chat_tokens",
    "encode_chats",
    "encode_prompts",
    "encode_turn",
    "format_prompt",
    "left_pad",
    "markup_ids",
    "pad_id",
    "parse_tool_calls",
    "prompt_list",
    "prompt_rows",
    "render_chat",
    "render_prompt",
    "render_tool_turn",
    "supports_tools",
    "tool_call_constraint",
    "tool_rows",
    "tools_system_text",
]
