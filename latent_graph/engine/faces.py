"""What every engine derives from its own ``decode_iter``: ``decode``, ``decode_stream``, the logit lens and the
nearest tokens. One base for the engines (:class:`~latent_graph.engine.model.LocalLatentModel`,
:class:`~latent_graph.engine.llamacpp.model.LlamaCppLatentModel`), so each writes only what differs: how input
reaches its cache and how one step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.options import split_decode_kwargs
from latent_graph.engine.protocols import TokenCallback
from latent_graph.engine.realign.lens import logit_lens, nearest_tokens
from latent_graph.engine.results import Decoded, TokenChunk

__all__ = ["EngineFaces"]


class EngineFaces:
    """The decode faces of an engine, built on the engine's ``decode_iter`` (which yields :class:`TokenChunk` while
    ``stream`` is set, then one :class:`Decoded`)."""

    decode_iter: Callable[..., Iterator[TokenChunk | Decoded]]
    """``decode_iter(handle, prompt, options, *, stream, **call)``: each engine's own (declared here, written there)."""

    def decode(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        *,
        on_token: TokenCallback | None = None,
        **kwargs: Any,
    ) -> Decoded:
        """Generate text on top of ``handle`` (the judger path).

        ``kwargs``: ``agent`` (default "judger"), ``system``, ``memory`` (as in ``think``), ``constraint``,
        ``messages``/``tools`` (as in ``decode_iter``) and the :class:`DecodeOptions` fields (max_new_tokens,
        temperature, top_p, seed); unknown names raise :class:`~latent_graph.errors.InvalidArgumentError`. Greedy
        when ``temperature == 0``; ``seed`` makes sampling reproducible. ``on_token`` receives every generated token.
        """
        opts, call = split_decode_kwargs(kwargs)
        for item in self.decode_iter(handle, prompt, opts, stream=on_token is not None, **call):
            if isinstance(item, Decoded):
                return item
            if on_token is not None:
                on_token(item)
        raise AssertionError("decode_iter ends with a Decoded")

    def decode_stream(
        self, handle: LatentHandle | None, prompt: str | Sequence[str], **kwargs: Any
    ) -> Iterator[TokenChunk]:
        """Like :meth:`decode` (same keyword arguments) but yields :class:`TokenChunk` as they are generated."""
        opts, call = split_decode_kwargs(kwargs)
        yield from (c for c in self.decode_iter(handle, prompt, opts, **call) if isinstance(c, TokenChunk))

    def logit_lens(self, hidden: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k vocabulary tokens (with probabilities) of hidden states (B, H) through the output matrix."""
        return logit_lens(self, hidden, k)

    def nearest_tokens(self, embedding: torch.Tensor, k: int = 1) -> list[list[tuple[str, float]]]:
        """Input-embedding rows nearest (cosine) to realigned vectors (B, H)."""
        return nearest_tokens(self, embedding, k)
