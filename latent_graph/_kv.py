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


def to_cache_tensors(keys: tuple[torch.Tensor, ...], values: tuple[torch.Tensor, ...]) -> DynamicCache:
    """A DynamicCache over the given per-layer tensors."""
    return DynamicCache(ddp_cache_data=list(zip(keys, values)))


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


def take_rows(cache: Any, idx: torch.Tensor) -> DynamicCache:
    """A new cache holding only batch rows ``idx`` (used to drop finished rows while decoding)."""
    keys, values = from_cache(cache)
    return DynamicCache(ddp_cache_data=[(k.index_select(0, idx), v.index_select(0, idx)) for k, v in zip(keys, values)])


def stack_rows(
    rows: list[tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]],
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """Stack single-row (keys, values, mask, positions) of different lengths into one batch.

    Shorter rows are right-padded with masked columns (zeros in K/V, mask 0), which later
    columns ignore like any other padding.
    """
    t_max = max(int(m.shape[1]) for _, _, m, _ in rows)

    def pad(x: torch.Tensor, dim: int) -> torch.Tensor:
        missing = t_max - x.shape[dim]
        if missing == 0:
            return x
        shape = list(x.shape)
        shape[dim] = missing
        return torch.cat([x, x.new_zeros(shape)], dim=dim)

    n_layers = len(rows[0][0])
    keys = tuple(torch.cat([pad(r[0][i], 2) for r in rows], dim=0) for i in range(n_layers))
    values = tuple(torch.cat([pad(r[1][i], 2) for r in rows], dim=0) for i in range(n_layers))
    mask = torch.cat([pad(r[2], 1) for r in rows], dim=0)
    pos = torch.cat([pad(r[3], 1) for r in rows], dim=0)
    return keys, values, mask, pos
