"""Toolbox: the tools of a tool-using latent agent, their JSON specs, and running decoded calls through LangGraph.

Tools are given as a LangGraph ``ToolNode`` (run as is: its own error handling, injected state
and store) or as a list of LangChain tools and plain callables (wrapped into one ``ToolNode``).
A plain callable becomes a ``StructuredTool`` (its signature is the argument schema, its docstring
the description) whose return value is checked: text, or a JSON value (numbers, lists, dicts...)
that becomes JSON text; anything else is a failed call, never silently ``repr``-ed.

:meth:`Toolbox.run` runs one batch of calls and returns one :class:`Outcome` per call, in order.
A failure (an unknown tool, a tool that raised, a result that is not text) is an outcome with an
``error``; the node decides what to do with it (record an error turn, or raise
:class:`~latent_graph.errors.ToolCallError`).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import DEFAULT_RUNTIME, Runtime

from latent_graph.errors import InvalidArgumentError


@dataclass(frozen=True)
class Outcome:
    """What one call gave: the text that enters the cache, and why it failed (None = it did not)."""

    text: str
    error: str | None = None


class _BadResult(Exception):
    """A plain callable returned something that is neither text nor a JSON value."""


def _checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` returning text: a string as is, a JSON value as JSON text; anything else raises (a failed call)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> str:
        out = fn(*args, **kwargs)
        if isinstance(out, str):
            return out
        try:
            return json.dumps(out, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            raise _BadResult(
                f"tool {getattr(fn, '__name__', fn)!r} returned a {type(out).__name__}, not text or a JSON value"
            ) from None

    return call


def as_tool(tool: Any) -> BaseTool:
    """A LangChain tool as is; a plain callable as a checked ``StructuredTool``; anything else is refused."""
    if isinstance(tool, BaseTool):
        return tool
    if not callable(tool) or inspect.isclass(tool):
        raise InvalidArgumentError(f"a tool must be a LangChain tool or a plain function, got {type(tool).__name__}")
    name = getattr(tool, "__name__", "")
    if not name or name == "<lambda>":
        raise InvalidArgumentError("a plain-callable tool needs a name: use a def'd function (not a lambda)")
    doc = inspect.getdoc(tool) or f"Call {name}."
    return StructuredTool.from_function(_checked(tool), name=name, description=doc.split("\n\n")[0])


def _text(message: ToolMessage) -> str | None:
    """A tool message's content as text; None when it holds no text (images, other blocks)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
    ]
    return "".join(parts) if parts else None


def _runtime(config: Any) -> Runtime:
    """The LangGraph runtime of the run ``config`` belongs to (a node inside a graph), else the default one."""
    for value in ((config or {}).get("configurable") or {}).values():
        if isinstance(value, Runtime):
            return value
    return DEFAULT_RUNTIME


class Toolbox:
    """The tools of one agent (see the module docstring).

    Args:
        tools: A ``ToolNode``, or a sequence of LangChain tools / plain functions.
        catch: Whether a tool's exception becomes a failed outcome (True) or propagates (False). A
            ``ToolNode`` you pass keeps its own ``handle_tool_errors``.
    """

    def __init__(self, tools: Any, catch: bool = True) -> None:
        if isinstance(tools, ToolNode):
            self.node = tools
        else:
            if isinstance(tools, (str, bytes, dict)) or not isinstance(tools, Sequence):
                raise InvalidArgumentError(f"tools must be a ToolNode or a list of tools, got {type(tools).__name__}")
            wrapped = [as_tool(t) for t in tools]
            names = [t.name for t in wrapped]
            if len(set(names)) != len(names):
                raise InvalidArgumentError(f"two tools share a name: {names}")
            self.node = ToolNode(wrapped, handle_tool_errors=catch) if wrapped else None
        self.tools = list(self.node.tools_by_name.values()) if self.node is not None else []
        self.specs: list[dict[str, Any]] = [convert_to_openai_tool(t) for t in self.tools]
        """The tools as JSON-schema specs ``{"type": "function", "function": {name, description, parameters}}``."""

    @property
    def names(self) -> list[str]:
        return [s["function"]["name"] for s in self.specs]

    def run(self, calls: Sequence[dict[str, Any]], config: Any = None) -> list[Outcome]:
        """Run ``calls`` (``{"name", "arguments", "id"}``) through the ToolNode; one outcome per call, in order."""
        if not calls:
            return []
        if self.node is None:
            return [Outcome(f"Error: no tools are bound (called {c['name']!r})", "no tools") for c in calls]
        ai = AIMessage(
            content="",
            tool_calls=[{"name": c["name"], "args": c["arguments"], "id": c["id"], "type": "tool_call"} for c in calls],
        )
        out = self.node.invoke({"messages": [ai]}, config, runtime=_runtime(config))
        found = out.get("messages", []) if isinstance(out, dict) else [m for m in out if isinstance(m, ToolMessage)]
        by_id = {m.tool_call_id: m for m in found if isinstance(m, ToolMessage)}
        results = []
        for c in calls:
            m = by_id.get(c["id"])
            if m is None:
                why = (
                    f"tool {c['name']!r} returned no tool message (a Command?): a latent agent's tool must return text"
                )
                results.append(Outcome(f"Error: {why}", why))
                continue
            text = _text(m)
            if text is not None:  # a lone surrogate cannot be tokenized: keep it visible as an escape
                text = text.encode("utf-8", "backslashreplace").decode("utf-8")
            if text is None:
                why = f"tool {c['name']!r} returned no text (content blocks without text)"
                results.append(Outcome(f"Error: {why}", why))
            elif m.status == "error":
                results.append(Outcome(text if text.startswith("Error") else f"Error: {text}", text))
            else:
                results.append(Outcome(text))
        return results
