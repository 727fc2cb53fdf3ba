"""``with_structured_output`` by constrained decoding: the reply is valid for the schema on the first try.

Targets: a pydantic model (v2 or v1), a TypedDict, a JSON schema, or an OpenAI tool dict.
Methods:

- ``json_schema`` (default): the reply is decoded under the schema's grammar (bound as OpenAI's
  ``response_format``, as ``create_agent`` binds it; :func:`response_constraint`), then parsed
  (into the pydantic model, or a dict);
- ``function_calling``: the schema is bound as the only tool with ``tool_choice`` set to it,
  and the call's arguments are the output (also on ``raw.tool_calls``);
- ``json_mode``: the reply is a JSON object (decoded under a JSON grammar; under the schema's grammar when a
  schema is given, so it parses into it).

``strict`` is accepted (decoding is always strict: the grammar enforces the schema).
``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}`` instead of raising.
A reply cut before its JSON or call closed (``max_new_tokens``, a stop string) raises
:class:`~latent_graph.errors.TruncatedReplyError` (the parsers would complete cut JSON into a wrong object).
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool

from latent_graph.engine import Constraint
from latent_graph.errors import InvalidArgumentError, TruncatedReplyError

METHODS = ("json_schema", "function_calling", "json_mode")


def _is_pydantic(schema: Any) -> bool:
    if not isinstance(schema, type):
        return False
    try:
        import pydantic
        import pydantic.v1

        return issubclass(schema, (pydantic.BaseModel, pydantic.v1.BaseModel))
    except ImportError:  # pragma: no cover - pydantic v2 always has v1
        return hasattr(schema, "model_json_schema")


def tool_spec(schema: Any) -> dict[str, Any]:
    """The OpenAI tool dict of a structured-output target."""
    if isinstance(schema, dict) and "properties" in schema and "title" not in schema and "name" not in schema:
        schema = {**schema, "title": "output"}  # a bare JSON schema needs a name to become a tool
    try:
        return convert_to_openai_tool(schema)
    except Exception as exc:
        raise InvalidArgumentError(
            f"with_structured_output takes a pydantic model, TypedDict, JSON schema or "
            f"tool dict; cannot use {schema!r}: {exc}"
        ) from exc


def json_schema_of(schema: Any) -> dict[str, Any]:
    """The JSON schema the reply must match."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, dict) and "properties" in schema and "function" not in schema:
        return {k: v for k, v in schema.items() if k not in ("title", "description") or k == "type"} | (
            {"type": "object"} if "type" not in schema else {}
        )
    return tool_spec(schema)["function"]["parameters"]


def response_constraint(response_format: Any) -> Constraint | None:
    """The grammar of a final reply under ``response_format``: OpenAI's ``{"type": "json_schema", "json_schema":
    {"name", "schema"}}`` / ``{"type": "json_object"}`` / ``{"type": "text"}``, or a schema as
    :func:`json_schema_of` takes it; None: plain text."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return Constraint.json()
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidArgumentError(f"response_format json_schema needs a 'schema' dict, got {response_format!r}")
        return Constraint.json_schema(schema)
    return Constraint.json_schema(json_schema_of(response_format))


def whole(message: AIMessage) -> AIMessage:
    """``message``, or :class:`TruncatedReplyError` where its tool call or JSON content was cut before it closed."""
    reason = message.response_metadata.get("finish_reason")
    if message.invalid_tool_calls:
        raise TruncatedReplyError(f"the structured tool call was cut (finish_reason={reason!r}); raise max_new_tokens")
    if not message.tool_calls:
        try:
            json.loads(message.text)
        except ValueError as exc:
            raise TruncatedReplyError(
                f"the JSON reply is not whole (finish_reason={reason!r}; raise max_new_tokens): {exc}"
            ) from exc
    return message


def structured_runnable(
    model: Any,
    schema: Any,
    *,
    include_raw: bool = False,
    method: str = "json_schema",
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable:
    """A runnable: chat input -> structured output of ``model`` (see the module docstring)."""
    if kwargs:
        raise InvalidArgumentError(f"unknown with_structured_output arguments: {sorted(kwargs)}")
    if method not in METHODS:
        raise InvalidArgumentError(f"method {method!r} is not supported; choose one of {METHODS}")
    if schema is None and method != "json_mode":
        raise InvalidArgumentError(f"method {method!r} needs a schema")
    fmt = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable
    if method == "function_calling":
        name = tool_spec(schema)["function"]["name"]
        llm = model.bind_tools([schema], tool_choice=name, parallel_tool_calls=False, ls_structured_output_format=fmt)
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if _is_pydantic(schema)
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    else:
        # json_mode: any JSON object, or, when a schema is given to parse into, a JSON object of that schema
        response_format = (
            {"type": "json_object"}
            if schema is None
            else {
                "type": "json_schema",
                "json_schema": {"name": tool_spec(schema)["function"]["name"], "schema": json_schema_of(schema)},
            }
        )
        llm = model.bind(response_format=response_format, ls_structured_output_format=fmt)
        parser = PydanticOutputParser(pydantic_object=schema) if _is_pydantic(schema) else JsonOutputParser()
    parser = RunnableLambda(whole) | parser
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    failed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")
