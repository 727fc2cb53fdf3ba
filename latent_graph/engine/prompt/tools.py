"""The tool-call text format and its decoding constraint (Hermes / Qwen style ``<tool_call>`` blocks).

A tool call is ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``; several
calls (parallel) follow each other on new lines. Qwen-family templates use exactly this
format natively; for a template without tool support the tools are described in the
system turn (:func:`tools_system_text`). Decoding is constrained
(:func:`tool_call_constraint`), so a small model's call always parses and its arguments
validate against the tool's JSON schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from latent_graph.engine.decode.constrain import Constraint
from latent_graph.errors import ConstraintError

CALL_OPEN, CALL_CLOSE = "<tool_call>\n", "\n</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<tool_response>\n", "\n</tool_response>"
MAX_PARALLEL = 4
"""Most tool calls one constrained reply may hold."""

TEXT_REPLY = Constraint.ebnf("root ::= [^<] [^]*")
"""A plain-text reply: anything not starting with ``<`` (so neither a tool call nor an echoed tag)."""

_BLOCK = re.compile(r"\s*<tool_call>\s*(.*?)\s*</tool_call>", re.S)
"""One tool-call block, matched at a position (leading whitespace included)."""


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    """The system-turn text that describes ``tools`` to a model whose template has no tool support."""
    specs = "\n".join(json.dumps(t.get("function", t)) for t in tools)
    return (
        "You may call functions to help answer. Available functions:\n"
        f"<tools>\n{specs}\n</tools>\n"
        "To call a function, reply with a JSON object inside tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
        "After a function result arrives in <tool_response> tags, answer the user in plain text."
    )


def _call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    options = []
    for t in tools:
        fn = t.get("function", t)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"enum": [fn["name"]]}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def tool_call_constraint(tools: list[dict[str, Any]], choice: str = "auto", parallel: bool = True) -> Constraint | None:
    """The constraint of a reply under ``tool_choice``.

    Args:
        tools: Tool specs (``{"type": "function", "function": {"name", "parameters", ...}}``).
        choice: ``auto`` (plain text not starting with ``<``, or tool calls), ``any`` (one or more
            calls), ``none`` (no constraint: plain text) or a tool's name (calls of that tool).
        parallel: Allow up to :data:`MAX_PARALLEL` calls in one reply.
    """
    names = [t.get("function", t).get("name") for t in tools]
    if choice == "none" or not tools:
        return None
    if choice not in ("auto", "any"):
        if choice not in names:
            raise ConstraintError(f"tool_choice {choice!r} names no bound tool; tools: {names}")
        tools = [t for t, n in zip(tools, names) if n == choice]
    one = Constraint.concat(
        Constraint.text(CALL_OPEN), Constraint.json_schema(_call_schema(tools)), Constraint.text(CALL_CLOSE)
    )
    many = [one]
    for _ in range(MAX_PARALLEL - 1 if parallel else 0):
        many.append(Constraint.concat(many[-1], Constraint.text("\n"), one))
    calls = Constraint.union(*many)
    if choice == "auto":
        return Constraint.union(calls, TEXT_REPLY)
    return calls


def _call_of(block: str) -> dict[str, Any] | None:
    """The call ``{"name", "arguments"}`` of one block's JSON text; None when it is not a well-formed call."""
    try:
        call = json.loads(block)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    args = call.get("arguments", call.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    return {"name": call["name"], "arguments": args} if isinstance(args, dict) else None


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(the text after the calls, the calls ``{"name", "arguments"}``) of a reply.

    Calls count only in the declared form, the form the tool-call grammar allows: blocks at the very start of
    the reply, one after another with only whitespace between them. A block inside plain text (a smuggled
    call under ``tool_choice="auto"``, whose text grammar only forbids a leading ``<``) is text, never a call;
    an unparsable block ends the calls (it and what follows stay text). A last block cut off by the token
    budget is dropped from the text after calls.
    """
    calls, pos = [], 0
    while (m := _BLOCK.match(text, pos)) is not None and (call := _call_of(m.group(1))) is not None:
        calls.append(call)
        pos = m.end()
    if not calls:
        return text, []
    tail = text[pos:].strip()
    if tail.startswith("<tool_call>") and "</tool_call>" not in tail:
        tail = ""  # a further call cut off by the token budget
    return tail, calls
