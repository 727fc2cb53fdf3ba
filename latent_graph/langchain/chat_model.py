"""LatentChatModel: a :class:`~latent_graph.engine.LocalLatentModel` as a langchain-core ``BaseChatModel``.

For users who want the local model wherever LangChain expects a chat model (text
agents, ``prompt | model`` chains). It decodes through the engine's public
:meth:`~latent_graph.engine.LocalLatentModel.decode_iter` from scratch (no latent
handle: graph nodes call the engine directly and read handles themselves).

LangChain's contract: ``stop`` (from ``bind(stop=...)`` or the call) cuts the text
before the first stop string and ends generation there; call options
``max_tokens`` (alias of ``max_new_tokens``), ``temperature``, ``top_p`` and ``seed``
apply per call, any other option is refused by name; ``usage_metadata`` is on the
invoke message and on the last stream chunk. There is no tool calling
(``bind_tools`` says so); ``with_structured_output`` prompts for JSON matching the
schema and validates it, with retries (:mod:`latent_graph.langchain.structured`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, model_validator

from latent_graph.engine import DecodeOptions, Decoded, LocalLatentModel
from latent_graph.engine.chat_format import format_prompt
from latent_graph.errors import InvalidArgumentError

ALIASES = {"max_tokens": "max_new_tokens"}
"""LangChain's common option names mapped to :class:`DecodeOptions` fields."""


def decode_options(base: dict[str, Any], options: dict[str, Any]) -> DecodeOptions:
    """``base`` updated by call ``options`` (aliases allowed); an unknown option is refused by name."""
    opts = dict(base)
    for key, value in options.items():
        name = ALIASES.get(key, key)
        if name not in DecodeOptions.names():
            known = sorted([*DecodeOptions.names(), *ALIASES])
            raise InvalidArgumentError(f"unknown chat-model option {key!r}; supported: {known} and stop")
        opts[name] = value
    return DecodeOptions(**opts)


def split_messages(messages: Sequence[BaseMessage]) -> tuple[str | None, str]:
    """(system text or None, user prompt) of a chat; earlier turns are flattened into the prompt."""
    system = "\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage)) or None
    turns = [m for m in messages if not isinstance(m, SystemMessage)]
    if not turns:
        return system, ""
    if len(turns) == 1:
        return system, str(turns[0].content)
    history = "\n".join(f"{m.type}: {m.content}" for m in turns[:-1])
    return system, f"{history}\n\n{turns[-1].content}"


def _cut(text: str, stop: Sequence[str]) -> int | None:
    """Index of the earliest stop string in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(hits) if hits else None


class LatentChatModel(BaseChatModel):
    """Chat model over a local latent engine (text in, text out).

    Decoding settings live in one :class:`DecodeOptions` (``options``); the
    constructor also takes them as keywords (``max_new_tokens`` or LangChain's
    ``max_tokens``, ``temperature``, ``top_p``, ``seed``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalLatentModel
    options: DecodeOptions = DecodeOptions()

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
        return data

    @property
    def _llm_type(self) -> str:
        return "latent-graph-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.engine.name, "fingerprint": self.engine.fingerprint.digest}

    def _chunks(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """Text chunks cut at the first stop string, then one empty chunk carrying ``usage_metadata``."""
        system, prompt = split_messages(messages)
        opts = decode_options(self.options.as_dict(), kwargs)
        text, n_out, n_in = "", 0, None
        gen = self.engine.decode_iter(None, prompt, opts, agent="chat", system=system)
        for item in gen:
            if isinstance(item, Decoded):
                n_in = item.prompt_tokens[0]
                break
            n_out += 1
            cut = _cut(text + item.text, stop or [])
            delta = item.text if cut is None else (text + item.text)[len(text) : cut]
            text += delta
            if delta:
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if cut is not None:
                gen.close()  # stop generating at the stop string
                break
        if n_in is None:  # stopped early: count the prompt as the engine formats it
            formatted = format_prompt(self.engine.tokenizer, prompt, system, True)
            n_in = len(self.engine.tokenizer(formatted, add_special_tokens=False)["input_ids"])
        usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))  # type: ignore[arg-type]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, stop, **kwargs):
            if run_manager is not None and chunk.text:
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

        return generate_from_stream(self._chunks(messages, stop, **kwargs))

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        """Not supported: a small local model has no tool-calling format here."""
        raise NotImplementedError(
            "LatentChatModel does not support tool calling (bind_tools); use with_structured_output(schema) "
            "for JSON answers, or give the tool-using agent an external chat model (TextAgentNode(model=...))"
        )

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        """JSON matching ``schema`` (pydantic model or JSON-schema dict): prompted, validated, retried.

        Args:
            schema: A pydantic ``BaseModel`` subclass or a JSON-schema dict (``type: object``).
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising.
            **kwargs: ``method`` ("json_schema"/"json_mode" only) and ``retries`` (default 2).
        """
        from latent_graph.langchain.structured import structured_runnable

        return structured_runnable(self, schema, include_raw=include_raw, **kwargs)


def as_chat_model(model: LocalLatentModel, **options: Any) -> LatentChatModel:
    """``model`` as a langchain-core chat model; ``options`` are :class:`DecodeOptions` fields (or ``max_tokens``)."""
    return LatentChatModel(engine=model, options=decode_options(DecodeOptions().as_dict(), options))
