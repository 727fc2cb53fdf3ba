"""A tool-bound reply as it decodes: text that is surely content, then each tool call once its block closes.

With tools bound the reply is text and ``<tool_call>`` blocks (:func:`~latent_graph.engine.tool_call_constraint`).
:class:`ReplySplitter` is fed the reply's text so far and hands out only what it never has to take back, so the
streamed chunks add up to exactly the :meth:`invoke` message:

- content up to the first ``<tool_call>`` tag (or a trailing prefix of one), without leading or trailing
  whitespace (the final content is stripped);
- the calls of every closed block, as ``tool_call_chunks`` (a call repeated in one reply is kept once);
- at the end, the rest of the content, and a block left open (cut by ``max_new_tokens`` or a stop string) as a
  tool-call chunk whose arguments are the raw cut text: LangChain reads it as an ``invalid_tool_calls`` entry
  (never as a call with guessed arguments), and ``create_agent`` answers it with an error tool message. A cut
  block whose text so far repeats the start of a closed block of the same reply is a repeat, dropped like a
  whole repeated call (small models repeat a call until the token budget ends). Where the grammar allows only
  calls (``calls_only``), a reply without a closed block is a cut call too, even one cut inside its opening tag.
  A block opened after text is text (calls open a reply, as the tool-call grammar has them).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk

from latent_graph.engine import parse_tool_calls

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCKS = re.compile(re.escape(OPEN) + ".*?" + re.escape(CLOSE), re.S)
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _safe_end(text: str) -> int:
    """Where content may end for now: the first ``<tool_call>`` tag, or a trailing prefix of one."""
    at = text.find(OPEN)
    if at >= 0:
        return at
    for k in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if text.endswith(OPEN[:k]):
            return len(text) - k
    return len(text)


def open_block(text: str) -> tuple[str, str | None]:
    """(the text before a last ``<tool_call>`` block that never closed, that block), or (text, None)."""
    at = text.rfind(OPEN)
    if at < 0 or CLOSE in text[at:]:
        return text, None
    return text[:at], text[at:]


class ReplySplitter:
    """Splits one tool-bound reply into streamable content deltas and tool-call chunks (see the module docstring)."""

    def __init__(self, calls_only: bool = False) -> None:
        self.calls_only = calls_only  # the grammar allows only calls: a reply without a whole one was cut
        self.sent = ""
        self.closed = 0
        self.keys: set[tuple[str, str]] = set()
        self.count = 0

    def _content(self, content: str) -> str:
        delta = content[len(self.sent) :] if content.startswith(self.sent) else ""
        self.sent += delta
        return delta

    def _calls(self, calls: list[dict[str, Any]]) -> list[ToolCallChunk]:
        chunks = []
        for c in calls:  # a small model repeats one call: identical calls run once
            key = (c["name"], json.dumps(c["arguments"], sort_keys=True))
            if key not in self.keys:
                self.keys.add(key)
                chunks.append(self._chunk(c["name"], json.dumps(c["arguments"])))
        return chunks

    def _chunk(self, name: str | None, args: str) -> ToolCallChunk:
        self.count += 1
        return tool_call_chunk(name=name, args=args, id=f"call_{uuid.uuid4().hex[:24]}", index=self.count - 1)

    def feed(self, text: str) -> tuple[str, list[ToolCallChunk]]:
        """The content delta and the new calls of the reply ``text`` so far."""
        delta = self._content(text[: _safe_end(text)].strip())
        calls: list[ToolCallChunk] = []
        closed = text.count(CLOSE)
        if closed > self.closed:
            self.closed = closed
            calls = self._calls(parse_tool_calls(text)[1])
        return delta, calls

    def finish(self, text: str) -> tuple[str, list[ToolCallChunk], ToolCallChunk | None]:
        """The rest of the whole reply ``text``: content delta, new calls, and the block cut open at its end (or None)."""
        head, cut = open_block(text)
        if self.calls_only and cut is None and not _BLOCKS.search(head) and head.strip():
            head, cut = "", head  # cut inside the opening tag
        content, calls = parse_tool_calls(head)
        if cut is not None and (content.strip() if calls else head.strip()):
            head, cut = text, None  # after text a tag is text: calls only open a reply
            content, calls = parse_tool_calls(head)
        delta = self._content(content.strip())
        chunks = self._calls(calls)
        if cut is None or any(block.startswith(cut) for block in _BLOCKS.findall(head)):
            return delta, chunks, None
        name = _NAME.search(cut)
        return delta, chunks, self._chunk(name.group(1) if name else None, cut)
