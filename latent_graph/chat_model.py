"""LatentChatModel: a :class:`LocalLatentModel` as a langchain-core ``BaseChatModel``.

Text edges and LangGraph's ``stream_mode="messages"`` only see chat models, so the
judger and text agents decode through this wrapper. It can also decode *on top of a
latent handle*: pass ``handle=`` (and for a batch, ``row_prompts=[...]``) as call kwargs.
For a batch, each streamed chunk carries ``response_metadata["row"]``; the final
message's ``response_metadata`` holds ``texts`` and ``new_tokens`` per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from latent_graph.model import Decoded, LocalLatentModel, TokenChunk

_DECODE_KEYS = ("max_new_tokens", "temperature", "top_p", "seed", "agent", "memory")


class LatentChatModel(BaseChatModel):
    """Chat model over a local latent engine; optional ``handle`` kwarg decodes on its cache."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalLatentModel
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

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
        opts = {k: getattr(self, k) for k in ("max_new_tokens", "temperature", "top_p", "seed")}
        opts.update({k: kwargs[k] for k in _DECODE_KEYS if k in kwargs})
        opts.setdefault("agent", "chat")
        opts.setdefault("memory", "all")
        prompts = kwargs.get("row_prompts") or prompt
        return self.engine._decode_iter(kwargs.get("handle"), prompts, system=system, **opts)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for item in self._iter(messages, **kwargs):
            if isinstance(item, TokenChunk):
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(content=item.text, response_metadata={"row": item.row})
                )
                if run_manager is not None:
                    run_manager.on_llm_new_token(item.text, chunk=chunk)
                yield chunk
            else:
                meta = _meta(item)
                yield ChatGenerationChunk(
                    message=AIMessageChunk(content="", response_metadata=meta, chunk_position="last"),
                )

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
        meta = _meta(result)
        message = AIMessage(content=result.texts[0], response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=message)])


def _meta(result: Decoded) -> dict[str, Any]:
    """JSON-friendly facts about a decode, attached to the final message."""
    h = result.handle
    return {
        "texts": result.texts,
        "new_tokens": result.new_tokens,
        "prompt_tokens": h.prompt_tokens,
        "kv_len": h.seq_len,
        "handle_bytes": h.nbytes,
    }
