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

The bounds of a call (:class:`ToolLimits`, the one owner): its arguments are validated against the tool's
JSON schema (``jsonschema-rs``) before the tool runs, for pydantic and dict schemas alike (invalid:
:class:`~latent_graph.errors.ToolArgumentsError`, the tool is not called); one batch of calls may run
``timeout_s`` (past it: :class:`~latent_graph.errors.ToolTimeoutError`; Python cannot stop a thread, so the
tool finishes in a daemon thread and its result is dropped); a result longer than ``max_result_chars`` is
refused before anything copies or tokenizes it (:class:`~latent_graph.errors.ToolResultTooLargeError`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import DEFAULT_RUNTIME, Runtime

from latent_graph.errors import (
    InvalidArgumentError,
    ToolArgumentsError,
    ToolCallError,
    ToolResultTooLargeError,
    ToolTimeoutError,
)


@dataclass(frozen=True)
class ToolLimits:
    """Bounds of a tool-using agent's calls (see the module docstring).

    Attributes:
        timeout_s: Seconds one batch of calls may run (they run in parallel in the ToolNode).
        max_result_chars: Characters of one tool result.
    """

    timeout_s: float = 30.0
    max_result_chars: int = 100_000

    def __post_init__(self) -> None:
        t, n = self.timeout_s, self.max_result_chars
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise InvalidArgumentError(f"ToolLimits.timeout_s must be a positive number, got {t!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgumentError(f"ToolLimits.max_result_chars must be an int >= 1, got {n!r}")


@dataclass(frozen=True)
class Outcome:
    """What one call gave: the text that enters the cache, why it failed (None = it did not) and as what error."""

    text: str
    error: str | None = None
    kind: type[ToolCallError] = ToolCallError


def _failed(why: str, kind: type[ToolCallError] = ToolCallError) -> Outcome:
    return Outcome(f"Error: {why}", why, kind)


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
        limits: The calls' bounds (:class:`ToolLimits`).
    """

    def __init__(self, tools: Any, catch: bool = True, limits: ToolLimits | None = None) -> None:
        self.limits = limits or ToolLimits()
        if not isinstance(self.limits, ToolLimits):
            raise InvalidArgumentError(f"tool limits must be a ToolLimits, got {type(limits).__name__}")
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
        try:
            self.specs: list[dict[str, Any]] = [convert_to_openai_tool(t) for t in self.tools]
            """The tools as JSON-schema specs ``{"type": "function", "function": {name, description, parameters}}``."""
            self._validators = {s["function"]["name"]: _validator(s) for s in self.specs}
        except RecursionError:
            raise InvalidArgumentError("a tool's argument schema is nested too deeply") from None

    @property
    def names(self) -> list[str]:
        return [s["function"]["name"] for s in self.specs]

    def run(self, calls: Sequence[dict[str, Any]], config: Any = None) -> list[Outcome]:
        """Run ``calls`` (``{"name", "arguments", "id"}``) through the ToolNode; one outcome per call, in order."""
        if not calls:
            return []
        if self.node is None:
            return [_failed(f"no tools are bound (called {c['name']!r})") for c in calls]
        refused = {c["id"]: self._check_arguments(c) for c in calls}
        valid = [c for c in calls if refused[c["id"]] is None]
        found = self._invoke(valid, config) if valid else []
        if found is None:
            why = f"the tool calls ran past ToolLimits.timeout_s={self.limits.timeout_s} s"
            found, refused = [], {**refused, **{c["id"]: _failed(why, ToolTimeoutError) for c in valid}}
        by_id = {m.tool_call_id: m for m in found if isinstance(m, ToolMessage)}
        return [refused[c["id"]] or self._outcome(c, by_id.get(c["id"])) for c in calls]

    def _check_arguments(self, call: dict[str, Any]) -> Outcome | None:
        """A failed outcome when ``call``'s arguments do not validate against its tool's JSON schema."""
        validator = self._validators.get(call["name"])
        if validator is None:
            return None  # an unknown tool: the ToolNode answers it
        errors = [e.message for e in validator.iter_errors(call["arguments"])][:3]
        if not errors:
            return None
        return _failed(
            f"arguments of tool {call['name']!r} do not match its schema: {'; '.join(errors)}", ToolArgumentsError
        )

    def _invoke(self, calls: list[dict[str, Any]], config: Any) -> list[Any] | None:
        """The ToolNode's messages for ``calls``; None when they ran past the timeout (the thread is left to finish)."""
        ai = AIMessage(
            content="",
            tool_calls=[{"name": c["name"], "args": c["arguments"], "id": c["id"], "type": "tool_call"} for c in calls],
        )
        node, runtime, done, out = self.node, _runtime(config), threading.Event(), []
        context = contextvars.copy_context()  # the run's config (interrupt(), get_config()) travels along

        def work() -> None:
            try:
                out.append((True, context.run(node.invoke, {"messages": [ai]}, config, runtime=runtime)))
            except BaseException as exc:  # re-raised in the caller: interrupts, tool_errors="raise"
                out.append((False, exc))
            finally:
                done.set()

        threading.Thread(target=work, name="latent-graph-tools", daemon=True).start()
        if not done.wait(self.limits.timeout_s):
            return None
        ok, value = out[0]
        if not ok:
            raise value
        return (
            value.get("messages", []) if isinstance(value, dict) else [m for m in value if isinstance(m, ToolMessage)]
        )

    def _outcome(self, call: dict[str, Any], m: ToolMessage | None) -> Outcome:
        if m is None:
            return _failed(
                f"tool {call['name']!r} returned no tool message (a Command?): a latent agent's tool must return text"
            )
        text = _text(m)
        if text is None:
            return _failed(f"tool {call['name']!r} returned no text (content blocks without text)")
        if len(text) > self.limits.max_result_chars:  # before any copy, and long before tokenizing
            why = (
                f"tool {call['name']!r} returned {len(text)} characters, more than "
                f"ToolLimits.max_result_chars={self.limits.max_result_chars}"
            )
            return _failed(why, ToolResultTooLargeError)
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate stays visible as an escape
        if m.status == "error":
            return Outcome(text if text.startswith("Error") else f"Error: {text}", text)
        return Outcome(text)


def _validator(spec: dict[str, Any]) -> Any:
    """A JSON-schema validator of a tool's arguments (an object schema when the tool declares none)."""
    fn = spec["function"]
    try:
        return jsonschema_rs.validator_for(fn.get("parameters") or {"type": "object"})
    except Exception as exc:  # an invalid schema: refused when the agent is built, not when the model calls
        raise InvalidArgumentError(f"tool {fn['name']!r} has an invalid JSON schema: {exc}") from exc
