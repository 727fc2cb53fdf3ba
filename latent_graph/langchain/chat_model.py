"""LatentChatModel: a :class:`~latent_graph.engine.LocalLatentModel` as a langchain-core ``BaseChatModel``.

Chats go through the model's own chat template turn by turn (system / human / ai / tool
messages; message text tokenized literally, see :mod:`latent_graph.engine.prompt.chat`) and
decode from a fresh cache (graph nodes call the engine directly and read handles).

- ``bind_tools(tools, tool_choice=...)``: ``auto`` / ``any`` (or ``required``) / a tool's name /
  ``none``. Replies are decoded under a grammar (:mod:`latent_graph.engine.prompt.tools`), so a
  call always parses and its arguments validate; ``AIMessage.tool_calls`` carry ids, several
  calls in one reply are parallel calls (``parallel_tool_calls=False`` allows one). Under
  ``auto`` the policy ``auto_tool_choice`` decides: ``"after_user"`` (default, for small
  models, which rarely choose a call themselves and repeat a call after its result) makes the
  reply to a human turn a tool call and the reply to tool results plain text (one round of
  calls per user turn); ``"model"`` lets the model choose each time (text or calls).
- ``with_structured_output``: constrained decoding (:mod:`latent_graph.langchain.structured`).
- ``stop`` cuts the text before the first stop string and ends generation there; call
  options ``max_tokens`` (alias of ``max_new_tokens``), ``temperature``, ``top_p``, ``seed``;
  ``usage_metadata`` and ``response_metadata["model_name"]`` on the reply / last chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, model_validator

from latent_graph.engine import (
    TEXT_REPLY,
    Constraint,
    Decoded,
    DecodeOptions,
    LocalLatentModel,
    count_chat_tokens,
    parse_tool_calls,
    tool_call_constraint,
)
from latent_graph.errors import InvalidArgumentError
from latent_graph.langchain.face import to_turns

ALIASES = {"max_tokens": "max_new_tokens"}
"""LangChain's common option names mapped to :class:`DecodeOptions` fields."""

_CALL_KEYS = ("tools", "tool_choice", "parallel_tool_calls", "constraint", "ls_structured_output_format")
"""Per-call keywords that are not decoding options (set by ``bind_tools`` / structured output)."""


def decode_options(base: dict[str, Any], options: dict[str, Any]) -> DecodeOptions:
    """``base`` updated by call ``options`` (aliases allowed); an unknown option is refused by name."""
    opts = dict(base)
    for key, value in options.items():
        name = ALIASES.get(key, key)
        if name not in DecodeOptions.names():
            known = sorted([*DecodeOptions.names(), *ALIASES, *_CALL_KEYS[:4]])
            raise InvalidArgumentError(f"unknown chat-model option {key!r}; supported: {known} and stop")
        opts[name] = value
    return DecodeOptions(**opts)


def _cut(text: str, stop: Sequence[str]) -> int | None:
    """Index of the earliest stop string in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(hits) if hits else None


def _tool_choice(choice: Any) -> str:
    """LangChain's tool_choice spellings as ``auto`` / ``any`` / ``none`` / a tool name."""
    if choice is None or choice == "auto":
        return "auto"
    if choice is True or choice in ("any", "required"):
        return "any"
    if choice is False or choice == "none":
        return "none"
    if isinstance(choice, dict):
        return str((choice.get("function") or {}).get("name") or choice.get("name") or "")
    if isinstance(choice, str):
        return choice
    raise InvalidArgumentError(f"tool_choice must be 'auto', 'any', 'none' or a tool name, got {choice!r}")


class LatentChatModel(BaseChatModel):
    """Chat model over a local latent engine: text, tool calls and structured output.

    Decoding settings live in one :class:`DecodeOptions` (``options``); the constructor also
    takes them as keywords (``max_new_tokens`` or LangChain's ``max_tokens``, ``temperature``,
    ``top_p``, ``seed``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalLatentModel
    options: DecodeOptions = DecodeOptions()
    model_name: str = ""
    """Reported as ``ls_model_name`` and ``response_metadata["model_name"]`` (default: the engine's name)."""
    auto_tool_choice: Literal["after_user", "model"] = "after_user"
    """How ``tool_choice="auto"`` decides between a call and text (see the module docstring)."""
    stop: list[str] | None = None
    """Default stop strings (a call's ``stop`` replaces them)."""

    @model_validator(mode="before")
    @classmethod
    def _fold_options(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = {k: data.pop(k) for k in list(data) if ALIASES.get(k, k) in DecodeOptions.names()}
        if given:
            base = data.get("options") or DecodeOptions()
            data["options"] = decode_options(base.as_dict(), given)
        if not data.get("model_name") and isinstance(data.get("engine"), LocalLatentModel):
            data["model_name"] = str(data["engine"].name)
        return data

    @property
    def _llm_type(self) -> str:
        return "latent-graph-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "fingerprint": self.engine.fingerprint.digest}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        opts = decode_options(
            self.options.as_dict(), {k: v for k, v in kwargs.items() if k not in _CALL_KEYS and k != "model"}
        )
        name = str(kwargs.get("model") or self.model_name)  # traces name a per-call override (a call refuses it)
        params = LangSmithParams(
            ls_provider="latent_graph",
            ls_model_name=name,
            ls_model_type="chat",
            ls_temperature=opts.temperature,
            ls_max_tokens=opts.max_new_tokens,
        )
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ----------------------------------------------------------- decoding
    def _constraint(
        self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None, choice: str, parallel: bool
    ) -> Constraint | None:
        if not tools:
            return None
        if choice == "auto" and self.auto_tool_choice == "after_user" and messages:
            choice = {"human": "any", "tool": "none"}.get(messages[-1].type, choice)
            if choice == "none":
                return TEXT_REPLY
        return tool_call_constraint(tools, choice, parallel)

    def _decode(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        """Chunks of one reply: text deltas (when no tools are bound), then one chunk with calls, usage and metadata."""
        call = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        stop = self.stop if stop is None else stop
        opts = decode_options(self.options.as_dict(), kwargs)
        tools = call.get("tools") or None
        constraint = call.get("constraint")
        if constraint is None:
            constraint = self._constraint(
                messages,
                tools,
                _tool_choice(call.get("tool_choice")),
                call.get("parallel_tool_calls", True) is not False,
            )
        live = stream and not tools  # tool calls are parsed from the whole reply
        gen = self.engine.decode_iter(
            None,
            None,
            opts,
            agent="chat",
            messages=[to_turns(messages)],
            tools=tools,
            constraint=constraint,
            stream=True,
        )
        text, n_out, decoded, finish = "", 0, None, "length"
        for item in gen:
            if isinstance(item, Decoded):
                decoded = item
                break
            n_out += int(item.token_id >= 0)  # -1: the held-back end of a row's text, no token
            cut = _cut(text + item.text, stop or [])
            delta = item.text if cut is None else (text + item.text)[len(text) : cut]
            text += delta
            if delta and live:
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if cut is not None:
                gen.close()  # stop generating at the stop string
                finish = "stop"
                break
        n_in = (
            decoded.prompt_tokens[0]
            if decoded is not None
            else count_chat_tokens(self.engine.tokenizer, to_turns(messages), tools)
        )
        if decoded is not None and n_out < opts.max_new_tokens:
            finish = "stop"
        content, calls = parse_tool_calls(text) if tools else (text, [])
        seen, chunks = set(), []
        for c in calls:  # a small model repeats one call: identical calls run once
            key = (c["name"], repr(sorted(c["arguments"].items())))
            if key not in seen:
                seen.add(key)
                chunks.append(
                    tool_call_chunk(
                        name=c["name"],
                        args=_json(c["arguments"]),
                        id=f"call_{uuid.uuid4().hex[:24]}",
                        index=len(chunks),
                    )
                )
        usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        meta = {"model_name": self.model_name, "finish_reason": "tool_calls" if chunks else finish}
        last = AIMessageChunk(
            content="" if live else content,
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata=meta,
            tool_call_chunks=chunks,
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._decode(messages, stop, True, **kwargs):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from langchain_core.language_models.chat_models import generate_from_stream

        result = generate_from_stream(self._decode(messages, stop, False, **kwargs))
        msg = result.generations[0].message
        if isinstance(msg, AIMessage):  # a plain AIMessage, not a chunk, from invoke
            result.generations[0].message = AIMessage(
                content=msg.content,
                tool_calls=msg.tool_calls,
                usage_metadata=msg.usage_metadata,
                response_metadata=msg.response_metadata,
                id=msg.id,
            )
        return result

    # ------------------------------------------------------ tools, schemas
    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable | Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """This model with ``tools`` bound (``tool_choice``: auto / any / required / none / a name)."""
        specs = [convert_to_openai_tool(t) for t in tools]
        choice = _tool_choice(tool_choice)
        names = [s["function"]["name"] for s in specs]
        if choice not in ("auto", "any", "none") and choice not in names:
            raise InvalidArgumentError(f"tool_choice {tool_choice!r} names no bound tool; tools: {names}")
        return super().bind(tools=specs, tool_choice=choice, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        """Output matching ``schema`` (pydantic model, TypedDict, JSON schema or tool dict), decoded under its grammar.

        Args:
            schema: The target.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}``.
            **kwargs: ``method`` (``json_schema`` default, ``function_calling``, ``json_mode``), ``strict``.
        """
        from latent_graph.langchain.structured import structured_runnable

        return structured_runnable(self, schema, include_raw=include_raw, **kwargs)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def as_chat_model(model: LocalLatentModel, **options: Any) -> LatentChatModel:
    """``model`` as a langchain-core chat model; ``options`` are :class:`DecodeOptions` fields (or ``max_tokens``)."""
    return LatentChatModel(engine=model, options=decode_options(DecodeOptions().as_dict(), options))
