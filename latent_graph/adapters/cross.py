"""Cross-model latent edges: hand one model's thoughts to another through an adapter.

A KV cache means nothing to a different model, so a cross-model edge carries
*vectors*: the sender's per-step hidden states (``handle.hiddens``) and its final
hidden state (``handle.last_hidden``), mapped by a cross-model
:class:`~latent_graph.adapters.trained_realigner.AdapterRealigner` into the receiver's
input-embedding space and prefilled there with ``dst_model.inject`` as a latent
segment. The receiver never sees the sender's prompt — only what the vectors carry.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.adapters.trained_realigner import AdapterRealigner
from latent_graph.engine import LatentHandle
from latent_graph.errors import AdapterError


def source_vectors(handle: LatentHandle, include_last: bool = True) -> torch.Tensor:
    """The sender's own latent hidden states (B, n, H_src), in order, then ``last_hidden``.

    Latent segments that were themselves injected from another model (all-zero
    ``hiddens``) are skipped.
    """
    parts = [x for x in handle.hiddens if bool(x.abs().sum() > 0)]  # each (B, n_i, H)
    if include_last and handle.last_hidden is not None:
        parts.append(handle.last_hidden[:, None])  # (B, 1, H)
    if not parts:
        raise AdapterError("source handle has no latent hidden states and no last_hidden to hand over")
    return torch.cat(parts, dim=1)  # (B, n, H_src)


def cross_handoff(
    src_model: Any,
    src_handle: LatentHandle,
    dst_model: Any,
    adapter: AdapterRealigner,
    dst_handle: LatentHandle | None = None,
    *,
    agent: str = "cross",
    steps: int = 0,
    include_last: bool = True,
) -> LatentHandle:
    """Map ``src_handle``'s latent hidden states into ``dst_model`` and inject them.

    Args:
        src_model: The sender's LocalLatentModel (the one that built ``src_handle``).
        src_handle: The sender's handle.
        dst_model: The receiver's LocalLatentModel.
        adapter: A cross-model adapter trained from ``src_model`` to ``dst_model``.
        dst_handle: The receiver's existing handle to extend, or None to start fresh.
        agent: Segment name of the injected thoughts on the receiver.
        steps: Latent steps the receiver takes right after the injection.
        include_last: Also hand over ``src_handle.last_hidden``.

    Returns:
        A new handle of ``dst_model``; ``decode`` / ``think`` can continue from it.

    Raises:
        ModelMismatchError: ``src_handle`` is not from ``src_model``, or the adapter
            was trained for other models.
    """
    if not isinstance(adapter, AdapterRealigner):
        raise AdapterError(f"cross_handoff needs an AdapterRealigner, got {type(adapter).__name__}")
    src_model.fingerprint.check(src_handle.fingerprint)
    adapter.check_pair(src_model.fingerprint, dst_model.fingerprint)
    vectors = source_vectors(src_handle, include_last)  # (B, n, H_src)
    embeds = adapter.map(vectors)  # (B, n, H_dst)
    return dst_model.inject(dst_handle, embeds.to(dst_model.dtype), agent=agent, steps=steps)
