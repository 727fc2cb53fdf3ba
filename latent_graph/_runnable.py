"""langchain-core ``Runnable`` face of :class:`~latent_graph.model.LocalLatentModel`.

``invoke`` takes either a plain string (→ decoded text) or a request dict::

    {"prompt": str | list[str], "handle": LatentHandle | None,
     "mode": "think" | "decode", "steps": int, ...other think/decode kwargs}

and returns a new handle (think) or a :class:`~latent_graph.model.Decoded` (decode).
Calls go through ``_call_with_config`` so callbacks, tags and run names propagate.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from latent_graph.errors import InvalidArgumentError


class LatentRunnable(Runnable[Any, Any]):
    """Mixin: implements ``invoke`` on top of ``think``/``decode``."""

    def _run_request(self, request: Any) -> Any:
        if isinstance(request, str):
            return self.decode(None, request).text  # type: ignore[attr-defined]
        if not isinstance(request, dict) or "prompt" not in request:
            raise InvalidArgumentError("invoke() takes a prompt string or a dict with at least a 'prompt' key")
        req = dict(request)
        mode = req.pop("mode", "think")
        handle = req.pop("handle", None)
        prompt = req.pop("prompt")
        if mode == "think":
            return self.think(handle, prompt, **req)  # type: ignore[attr-defined]
        if mode == "decode":
            return self.decode(handle, prompt, **req)  # type: ignore[attr-defined]
        raise InvalidArgumentError(f"mode must be 'think' or 'decode', got {mode!r}")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._run_request, input, config, run_type="llm", **kwargs)
