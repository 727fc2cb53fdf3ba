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
- ``response_format`` (OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema"}}`` or
  ``{"type": "json_object"}``, bound by ``create_agent``'s native structured output): the final
  (non-call) reply is JSON decoded under that schema; ``with_structured_output`` binds it too
  (:mod:`latent_graph.langchain.structured`). ``profile`` declares tool calling, tool choice, tool-call
  streaming and structured output, so ``create_agent(model, tools, response_format=Schema)`` takes that route.
- ``stream`` yields text as it decodes, with tools bound too, and each tool call as ``tool_call_chunks``
  once its block closes (:mod:`latent_graph.langchain.reply`); ``invoke`` is those chunks added up.
- A tool call or JSON reply cut by ``max_new_tokens`` (or a stop string) says so: ``finish_reason``
  ``"length"``, a warning, and a cut call is an ``invalid_tool_calls`` entry (never a call with guessed
  arguments); ``with_structured_output`` raises :class:`~latent_graph.errors.TruncatedReplyError`.
- ``stop`` cuts the text before the first stop string and ends generation there; call
  options ``max_tokens`` (alias of ``max_new_tokens``), ``temperature``, ``top_p``, ``seed``;
  ``usage_metadata`` and ``response_metadata["model_name"]`` on the reply / last chunk.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
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
    tool_call_constraint,
)
from latent_graph.errors import InvalidArgumentError
from latent_graph.langchain.face import to_turns
from latent_graph.langchain.reply import ReplySplitter
from latent_graph.langchain.structured import response_constraint

ALIASES = {"max_tokens": "max_new_tokens"}
"""LangChain's common option names mapped to :class:`DecodeOptions` fields."""

_CALL_KEYS = ("tools", "tool_choice", "parallel_tool_calls", "response_format", "ls_structured_output_format")
"""Per-call keywords that are not decoding options (set by ``bind_tools`` / structured output)."""

CUT_CALL = "the tool call was cut (finish_reason={!r}) before its block closed: raise max_new_tokens"
"""The ``error`` of an ``invalid_tool_calls`` entry made from a cut call."""


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

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What LangChain may rely on: tool calls and JSON replies are decoded under their grammar (text in, text out)."""
        return ModelProfile(
            name=self.model_name,
            open_weights=True,
            max_input_tokens=self.engine.max_context,
            text_inputs=True,
            image_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            pdf_inputs=False,
            text_outputs=True,
            tool_calling=True,
            tool_choice=True,
            tool_call_streaming=True,
            structured_output=True,
            temperature=True,
        )

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
    def _choice(self, messages: list[BaseMessage], choice: str) -> str:
        """The tool choice of this reply: ``auto`` decided by :attr:`auto_tool_choice` (see the module docstring)."""
        if choice == "auto" and self.auto_tool_choice == "after_user" and messages:
            return {"human": "any", "tool": "none"}.get(messages[-1].type, choice)
        return choice

    def _decode(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        """Chunks of one reply as it decodes: text deltas and tool-call chunks (:mod:`.reply`), then usage and metadata."""
        call = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        stop = self.stop if stop is None else stop
        opts = decode_options(self.options.as_dict(), kwargs)
        tools = call.get("tools") or None
        answer = response_constraint(call.get("response_format"))  # the final (non-call) reply: JSON, or text
        given = _tool_choice(call.get("tool_choice")) if tools else "none"
        choice = self._choice(messages, given)
        parallel = call.get("parallel_tool_calls", True) is not False
        if choice == "none":  # text (not starting like a call where the policy chose it), or the JSON answer
            constraint = answer or (TEXT_REPLY if given == "auto" else None)
        elif choice == "auto" and answer is not None:
            constraint = Constraint.union(tool_call_constraint(tools, "any", parallel), answer)
        else:
            constraint = tool_call_constraint(tools, choice, parallel)
        split = ReplySplitter(calls_only=choice not in ("auto", "none")) if tools else None
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
            if split is not None:
                part, calls = split.feed(text)
                if part or calls:
                    yield AIMessageChunk(content=part, tool_call_chunks=calls)
            elif delta:
                yield AIMessageChunk(content=delta)
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
        part, calls, broken = split.finish(text) if split is not None else ("", [], None)
        if broken is not None or (answer is not None and not (split and split.count) and not _closes(text)):
            what = "structured (JSON) reply" if broken is None else f"tool call {broken['name'] or ''}".strip()
            why = f"max_new_tokens={opts.max_new_tokens}" if finish == "length" else "a stop string"
            warnings.warn(f"the {what} was cut by {why} before it closed: ...{text[-60:]!r}", stacklevel=2)
        usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        if finish == "stop" and broken is None and split is not None and split.count:
            finish = "tool_calls"
        meta = {"model_name": self.model_name, "finish_reason": finish}
        yield AIMessageChunk(
            content=part,
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata=meta,
            tool_call_chunks=[*calls, *([broken] if broken else [])],
            chunk_position="last",
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for message in self._decode(messages, stop, **kwargs):
            chunk = ChatGenerationChunk(message=message)
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
        result = generate_from_stream(ChatGenerationChunk(message=m) for m in self._decode(messages, stop, **kwargs))
        msg = result.generations[0].message
        if isinstance(msg, AIMessage) and msg.invalid_tool_calls:  # a chunk cannot carry the reason; invoke can
            why = CUT_CALL.format(msg.response_metadata.get("finish_reason"))
            msg.invalid_tool_calls = [{**c, "error": why} for c in msg.invalid_tool_calls]
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


def _closes(text: str) -> bool:
    """Whether ``text`` is one whole JSON value (a structured reply that was not cut)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def as_chat_model(model: LocalLatentModel, **options: Any) -> LatentChatModel:
    """``model`` as a langchain-core chat model; ``options`` are :class:`DecodeOptions` fields (or ``max_tokens``)."""
    return LatentChatModel(engine=model, options=decode_options(DecodeOptions().as_dict(), options))
