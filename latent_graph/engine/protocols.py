"""The seams of the engine, declared: what a node needs from its model, what decoding needs, the callbacks.

Nodes, the decoding loop and the LangChain faces type against these Protocols,
not against :class:`~latent_graph.engine.LocalLatentModel` (which satisfies all of
them). Callbacks going *up* a layer (a latent step reaching a node, a token reaching
a stream) are :class:`StepCallback` / :class:`TokenCallback`: the caller hands them
down, the engine calls them, and never imports the layer above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from latent_graph.engine.decode.constrain import Constraint
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.load.fingerprint import ModelFingerprint
from latent_graph.engine.options import DEFAULT_MEMORY, DecodeOptions
from latent_graph.engine.results import Decoded, StepInfo, TokenChunk


class StepCallback(Protocol):
    """Called after each latent step (``think(on_step=...)``)."""

    def __call__(self, info: StepInfo, /) -> None: ...


class TokenCallback(Protocol):
    """Called with every generated token (``decode(on_token=...)``)."""

    def __call__(self, chunk: TokenChunk, /) -> None: ...


@runtime_checkable
class LatentModel(Protocol):
    """What an agent node needs from its model: think in latent space, decode text, read tool turns, look inside
    thoughts."""

    name: str
    """Readable model name (traces, errors)."""
    fingerprint: ModelFingerprint
    """Identity of the weights; a handle is only read by the model whose fingerprint it carries."""

    @property
    def max_context(self) -> int:
        """Context window in positions."""
        ...

    # fmt: off
    # The seam reads as a table: each method's signature on as few lines as it takes.
    def think(self, handle: LatentHandle | None, prompt: str | Sequence[str], steps: int = 0, *, agent: str = "agent",
              system: str | None = None, memory: str = DEFAULT_MEMORY,
              on_step: StepCallback | None = None) -> LatentHandle:
        """Prefill ``prompt`` on top of ``handle``, then take ``steps`` latent steps; returns a new handle."""
        ...

    def decode(self, handle: LatentHandle | None, prompt: str | Sequence[str], *,
               on_token: TokenCallback | None = None, **kwargs: Any) -> Decoded:
        """Generate text on top of ``handle`` (agent, system, memory and the DecodeOptions fields as keywords)."""
        ...

    def think_after_tools(self, handle: LatentHandle, results: Sequence[Sequence[str]], steps: int = 0, *,
                          agent: str = "agent", on_step: StepCallback | None = None) -> LatentHandle:
        """Feed each row's tool turn (``results[b]``: its result texts, empty = none) after the decoded call in
        ``handle``, then take ``steps`` latent steps; returns a new handle."""
        ...

    def decode_after_tools(self, handle: LatentHandle, results: Sequence[Sequence[str]],
                           options: DecodeOptions | None = None, *, agent: str = "agent",
                           constraint: Constraint | Sequence[Constraint | None] | None = None) -> Decoded:
        """Feed each row's tool turn, then decode in the new assistant turn (e.g. the next tool call)."""
        ...
    # fmt: on

    def nearest_tokens(self, embedding: torch.Tensor, k: int = 1) -> list[list[tuple[str, float]]]:
        """The ``k`` input tokens nearest each realigned vector (B, H)."""
        ...

    def logit_lens(self, hidden: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` vocabulary tokens of hidden states (B, H)."""
        ...


class DecodingModel(Protocol):
    """What the decoding loop (:func:`latent_graph.engine.decode.loop.generate`) reads of its model."""

    hf_model: Any
    """The transformers causal LM (its lm_head, ``get_output_embeddings()``)."""
    tokenizer: Any
    """Decodes generated ids into text."""
    decoder: Any
    """The base model's forward (no lm_head) fed each generated token."""
    layer: int
    """Hidden layer fed back (-1 = the final norm output)."""
    eos_ids: Any
    """Token ids that end a row's answer (a set)."""
    batch_rows: int | None
    """Most rows decoding at once (None: all); the next row enters the slot of one that ended."""

    @property
    def device(self) -> torch.device: ...

    @property
    def max_context(self) -> int: ...


__all__ = ["DecodingModel", "LatentModel", "StepCallback", "TokenCallback"]
