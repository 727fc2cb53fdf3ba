"""Bounds on decoding constraints, checked before xgrammar sees them.

A JSON schema, regex or grammar is user input wherever ``with_structured_output`` or ``bind_tools`` is
exposed (serve, Studio), and xgrammar's parse and compile time grow with its size (super-linearly with
schema depth and the property count of one object). :func:`check_constraint` walks a
:class:`~latent_graph.engine.decode.constrain.Constraint` against a
:class:`~latent_graph.engine.options.GrammarLimits` (``model.limits.grammar``) without
calling xgrammar and without recursion (a schema nested thousands of levels deep is refused, not a
``RecursionError``): text sizes first (nothing is parsed before its length is known to be small), then
nesting depth by a linear scan of the JSON text, then the parsed schema's enums and properties. Past
any limit: :class:`~latent_graph.errors.ConstraintError` naming the limit and how to raise it.
``compile_seconds`` bounds what is left (the compile itself, see
:class:`~latent_graph.engine.decode.constrain.Compiler`) and ``max_cached`` the compiled grammars kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from latent_graph.engine.options import GrammarLimits
from latent_graph.errors import ConstraintError


def _over(what: str, size: int, limit: int, field: str) -> ConstraintError:
    return ConstraintError(
        f"{what} ({size}) exceeds the limit of {limit}; refused before compiling "
        f"(raise GrammarLimits.{field} if this is intended)"
    )


def _size(what: str, text: str, limit: int, field: str) -> None:
    if len(text) > limit:
        raise _over(f"{what} length in characters", len(text), limit, field)


def json_depth(text: str) -> int:
    """Deepest nesting of JSON objects/arrays in ``text`` (a linear scan that skips strings; no parsing)."""
    depth = deepest = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[{}\[\]]', text, re.S):
        ch = m.group()
        if ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}]":
            depth -= 1
    return deepest


def check_schema(text: str, limits: GrammarLimits) -> Any:
    """The parsed schema of ``text`` if it is within ``limits`` (size, depth, enums, properties, patterns)."""
    _size("JSON schema", text, limits.max_schema_chars, "max_schema_chars")
    depth = json_depth(text)
    if depth > limits.max_depth:
        raise _over("JSON schema nesting depth", depth, limits.max_depth, "max_depth")
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConstraintError(f"JSON schema is not valid JSON: {exc}") from None
    stack = [schema]
    while stack:  # iterative: the depth is bounded already, but no recursion is needed either
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        enum = node.get("enum")
        if isinstance(enum, list) and len(enum) > limits.max_enum:
            raise _over("enum values", len(enum), limits.max_enum, "max_enum")
        props = node.get("properties")
        if isinstance(props, dict) and len(props) > limits.max_properties:
            raise _over("object properties", len(props), limits.max_properties, "max_properties")
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            _size("schema pattern", pattern, limits.max_regex_chars, "max_regex_chars")
        stack.extend(node.values())
    return schema


def check_constraint(constraint: Any, limits: GrammarLimits) -> None:
    """:class:`ConstraintError` unless every part of ``constraint`` is within ``limits`` (xgrammar is not called)."""
    stack, nodes = [constraint], 0
    while stack:
        c = stack.pop()
        nodes += 1
        if nodes > limits.max_parts:
            raise _over("constraint parts", nodes, limits.max_parts, "max_parts")
        if c.kind == "json_schema":
            check_schema(c.spec, limits)
        elif c.kind == "regex":
            _size("regex", c.spec, limits.max_regex_chars, "max_regex_chars")
        elif c.kind == "ebnf":
            _size("EBNF grammar", c.spec, limits.max_ebnf_chars, "max_ebnf_chars")
            rules = c.spec.count("::=")
            if rules > limits.max_ebnf_rules:
                raise _over("EBNF grammar rules", rules, limits.max_ebnf_rules, "max_ebnf_rules")
        elif c.kind == "text":
            _size("literal", c.spec, limits.max_literal_chars, "max_literal_chars")
        elif c.kind == "choice":
            if len(c.parts) > limits.max_enum:
                raise _over("choice options", len(c.parts), limits.max_enum, "max_enum")
            total = sum(len(p) for p in c.parts)
            if total > limits.max_ebnf_chars:
                raise _over("choice options' total length", total, limits.max_ebnf_chars, "max_ebnf_chars")
        elif c.kind in ("concat", "union"):
            stack.extend(c.parts)
