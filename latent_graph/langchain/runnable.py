"""langchain-core ``Runnable`` face of a :class:`~latent_graph.engine.LocalLatentModel`.

``LatentRunnable(model).invoke`` takes a plain string or a string prompt value (-> decoded
text), chat messages or a chat prompt value (-> an ``AIMessage``, so ``prompt | LatentRunnable(model)``
works), or a request dict::

    {"prompt": str | list[str], "handle": LatentHandle | None,
     "mode": "think" | "decode", "steps": int, ...other think/decode kwargs}

and returns a new handle (think) or a :class:`~latent_graph.engine.Decoded` (decode).
It wraps the engine through its public API (the engine knows nothing of LangChain);
calls go through ``_call_with_config`` so callbacks, tags and run names propagate. ``stream`` yields the
text deltas of a string or chat input as they are generated. Messages become chat turns through
:mod:`latent_graph.langchain.face` (LangChain's input protocol, read by duck typing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.prompt_values import PromptValue, StringPromptValue
from langchain_core.runnables import Runnable, RunnableConfig

from latent_graph.engine import LocalLatentModel
from latent_graph.errors import InvalidArgumentError
from latent_graph.langchain.face import to_turns


class LatentRunnable(Runnable[Any, Any]):
    """``Runnable`` over ``think``/``decode`` of one engine.

    Args:
        model: The engine it drives.
    """

    def __init__(self, model: LocalLatentModel) -> None:
        if not isinstance(model, LocalLatentModel):
            raise InvalidArgumentError(f"LatentRunnable wraps a LocalLatentModel, got {type(model).__name__}")
        self.model = model

    def _run_request(self, request: Any) -> Any:
        if isinstance(request, StringPromptValue):
            request = request.to_string()
        if isinstance(request, str):
            return self.model.decode(None, request).text
        if isinstance(request, PromptValue):
            request = request.to_messages()
        if isinstance(request, BaseMessage):
            request = [request]
        if isinstance(request, list) and request and all(isinstance(m, BaseMessage) for m in request):
            d = self.model.decode(None, None, messages=[to_turns(request)])
            usage = {
                "input_tokens": d.prompt_tokens[0],
                "output_tokens": d.new_tokens[0],
                "total_tokens": d.prompt_tokens[0] + d.new_tokens[0],
            }
            return AIMessage(content=d.text, usage_metadata=usage)  # type: ignore[arg-type]
        if not isinstance(request, dict) or "prompt" not in request:
            raise InvalidArgumentError(
                "invoke() takes a prompt string, chat messages, a prompt value "
                f"or a dict with at least a 'prompt' key; got {type(request).__name__}"
            )
        req = dict(request)
        mode = req.pop("mode", "think")
        handle = req.pop("handle", None)
        prompt = req.pop("prompt")
        if mode == "think":
            return self.model.think(handle, prompt, **req)
        if mode == "decode":
            return self.model.decode(handle, prompt, **req)
        raise InvalidArgumentError(f"mode must be 'think' or 'decode', got {mode!r}")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._run_request, input, config, run_type="llm", **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """Text deltas of a string or chat input as generated (``kwargs``: decode options); other inputs yield
        their one :meth:`invoke` result."""
        if isinstance(input, StringPromptValue):
            input = input.to_string()
        if isinstance(input, PromptValue):
            input = input.to_messages()
        if isinstance(input, BaseMessage):
            input = [input]
        chat = isinstance(input, list) and bool(input) and all(isinstance(m, BaseMessage) for m in input)
        if not (isinstance(input, str) or chat):
            yield self.invoke(input, config)
            return
        prompt, extra = (None, {"messages": [to_turns(input)]}) if chat else (input, {})
        for chunk in self.model.decode_stream(None, prompt, **extra, **kwargs):
            if chunk.text:
                yield chunk.text
