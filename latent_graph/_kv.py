"""Convert between a handle's per-layer K/V tensors and a transformers ``DynamicCache``.

The cache object grows in place during ``forward``; handles must not. So each
engine call builds a fresh ``DynamicCache`` from the handle's tensors (its first
update concatenates into new storage) and reads new tensors back at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache

if TYPE_CHECKING:
    from latent_graph.handle import LatentHandle


def to_cache(handle: LatentHandle | None) -> DynamicCache:
    """A new DynamicCache holding (copies of) the handle's K/V; empty for None."""
    if handle is None or handle.seq_len == 0:
        return DynamicCache()
    return DynamicCache(ddp_cache_data=list(zip(handle.keys, handle.values)))


def _layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(cache, "layers"):  # transformers >= 4.56
        return [(layer.keys, layer.values) for layer in cache.layers if getattr(layer, "keys", None) is not None]
    return list(zip(cache.key_cache, cache.value_cache))


def from_cache(cache: Any) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Per-layer keys and values, each (B, H_kv, T, D)."""
    layers = _layers(cache)
    return tuple(k for k, _ in layers), tuple(v for _, v in layers)


def cache_len(cache: Any) -> int:
    layers = _layers(cache)
    return int(layers[0][0].shape[-2]) if layers else 0
