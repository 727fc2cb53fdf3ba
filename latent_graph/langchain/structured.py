"""``with_structured_output`` for a chat model without tool calling: prompted JSON, validated, retried.

The schema (a pydantic model or a JSON-schema dict) is put into the prompt as a
JSON schema; the reply's first JSON object is parsed and validated (pydantic, or a
small JSON-schema check of required keys and basic types). A bad reply is retried
with the error appended, up to ``retries`` times; then
:class:`~langchain_core.exceptions.OutputParserException` says what was wrong.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableLambda

from latent_graph.errors import InvalidArgumentError

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}


def json_schema_of(schema: Any) -> dict[str, Any]:
    """The JSON schema of a pydantic model class or a JSON-schema dict."""
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    raise InvalidArgumentError(f"with_structured_output takes a pydantic model or a JSON-schema dict, got {schema!r}")


def first_json_object(text: str) -> Any:
    """The first JSON object in ``text`` (models wrap it in prose or code fences)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                return decoder.raw_decode(text[i:])[0]
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object in the reply")


def validate(value: Any, schema: Any) -> Any:
    """``value`` checked against ``schema`` (a pydantic instance for a model class)."""
    if not isinstance(schema, dict):
        return schema.model_validate(value)
    if schema.get("type", "object") == "object" and not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in schema.get("required", []) if k not in value]
    if missing:
        raise ValueError(f"missing required keys {missing}")
    for key, prop in (schema.get("properties") or {}).items():
        want = _TYPES.get(prop.get("type", ""))
        if key in value and want and (not isinstance(value[key], want) or isinstance(value[key], bool) != (want is bool)):
            raise ValueError(f"key {key!r} must be of JSON type {prop['type']}")
    return value


def _messages(value: Any) -> list[BaseMessage]:
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(value)]
    return list(value)


def structured_runnable(model: Any, schema: Any, *, include_raw: bool = False, method: str = "json_schema",
                        retries: int = 2) -> Runnable:
    """A runnable: chat input -> validated structured output of ``model``."""
    if method not in ("json_schema", "json_mode"):
        raise InvalidArgumentError(f"method {method!r} is not supported (no tool calling); use 'json_schema'")
    spec = json.dumps(json_schema_of(schema))
    instruction = f"Reply with only one JSON object that matches this JSON schema, no other text:\n{spec}"

    def run(value: Any, config: Any = None) -> Any:
        messages = [*_messages(value), HumanMessage(instruction)]
        raw, error = None, None
        for _ in range(retries + 1):
            raw = model.invoke(messages, config)
            try:
                parsed = validate(first_json_object(str(raw.content)), schema)
                return {"raw": raw, "parsed": parsed, "parsing_error": None} if include_raw else parsed
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                error = exc
                messages = [*messages, raw, HumanMessage(f"That was not valid: {exc}. {instruction}")]
        failure = OutputParserException(f"no valid JSON for the schema after {retries + 1} tries: {error}",
                                        llm_output=str(raw.content) if raw is not None else None)
        if include_raw:
            return {"raw": raw, "parsed": None, "parsing_error": failure}
        raise failure

    return RunnableLambda(run, name="structured_output")
