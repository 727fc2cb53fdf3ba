"""LatentChatModel: a :class:`~latent_graph.engine.LocalLatentModel` as a langchain-core ``BaseChatModel``.

For users who want the local model wherever LangChain expects a chat model (text
agents, ``prompt | model`` chains). It decodes through the engine's public
:meth:`~latent_graph.engine.LocalLatentModel.decode_iter` from scratch (no latent
handle: graph nodes call the engine directly and read handles themselves).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, model_validator

from latent_graph.engine import DecodeOptions, Decoded, LocalLatentModel, TokenChunk

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
        if "max_tokens" in data:
            data["max_new_tokens"] = data.pop("max_tokens")
        given = {k: data.pop(k) for k in DecodeOptions.names() if k in data}
        if given:
            base = data.get("options") or DecodeOptions()
            data["options"] = replace(base, **given)
        return data

    @property
    def _llm_type(self) -> str:
        return "latent-graph-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.engine.name, "fingerprint": self.engine.fingerprint.digest}

    def _split(self, messages: list[BaseMessage]) -> tuple[str | None, str]:
        system = "\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage)) or None
        turns = [m for m in messages if not isinstance(m, SystemMessage)]
        if not turns:
            return system, ""
        if len(turns) == 1:
            return system, str(turns[0].content)
        # Multi-turn history: flatten earlier turns into the final user prompt.
        history = "\n".join(f"{m.type}: {m.content}" for m in turns[:-1])
        return system, f"{history}\n\n{turns[-1].content}"

    def _iter(self, messages: list[BaseMessage], **kwargs: Any) -> Iterator[TokenChunk | Decoded]:
        system, prompt = self._split(messages)
        opts = replace(self.options, **{k: kwargs[k] for k in DecodeOptions.names() if k in kwargs})
        return self.engine.decode_iter(None, prompt, opts, agent="chat", system=system)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for item in self._iter(messages, **kwargs):
            if isinstance(item, TokenChunk):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=item.text))
                if run_manager is not None:
                    run_manager.on_llm_new_token(item.text, chunk=chunk)
                yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result = None
        for item in self._iter(messages, **kwargs):
            if isinstance(item, Decoded):
                result = item
        assert result is not None
        n_in, n_out = result.prompt_tokens[0], result.new_tokens[0]
        usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=result.texts[0], usage_metadata=usage))])


def as_chat_model(model: LocalLatentModel, **options: Any) -> LatentChatModel:
    """``model`` as a langchain-core chat model; ``options`` are :class:`DecodeOptions` fields."""
    return LatentChatModel(engine=model, **options)
