"""A forward of a batch larger than the model's ``batch_rows``: row slices of at most that many, one after another.

Each slice writes its K/V into the call's shared :class:`~latent_graph.engine.forward.kvbuffer.BufferCache`
(or, on a fresh cache, into its own, stacked afterwards), so the result is laid out as if the batch had run at
once. A slice skips the leading input columns that are padding in every one of its rows (left padding of a
longer row in another slice): their K/V are zero and masked, as padding is, and they cost no compute.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.engine.forward.kvbuffer import BufferCache


def _from(cache: BufferCache) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return [layer.keys for layer in cache.buffers], [layer.values for layer in cache.buffers]  # type: ignore[misc]


def forward_slices(
    base_model: Any, cache: BufferCache, width: int, new_mask: torch.Tensor, hidden_layer: int, **kw: Any
) -> tuple[BufferCache, torch.Tensor]:
    """Run ``base_model`` on rows ``0:width``, ``width:2*width``... of ``kw``'s tensors; returns the cache holding
    every row and the (B, n, H) hidden states of layer ``hidden_layer`` (zeros where a slice skipped padding)."""
    batch, n = new_mask.shape
    start_len = cache.get_seq_length() if cache.buffers else 0
    hidden: list[torch.Tensor] = []
    fresh: list[tuple[int, BufferCache]] = []
    for start in range(0, batch, width):
        stop = min(start + width, batch)
        real = new_mask[start:stop].any(dim=0)
        skip = min(int(real.long().argmax()) if bool(real.any()) else n - 1, n - 1)
        if cache.buffers:  # slices write into the shared buffers
            part = cache.window(start, stop, n, skip)
        else:  # a fresh cache: each slice fills its own, stacked after the last one
            part = BufferCache((), (), cache.capacity)
        # the shared cache holds the skipped columns (zeros): its mask keeps them; a fresh slice's cache has none
        keep_mask = bool(cache.buffers)
        args = {
            k: v if v is None else v[start:stop] if k == "attention_mask" and keep_mask else v[start:stop, skip:]
            for k, v in kw.items()
        }
        out = base_model(**args, cache=part, use_cache=True, output_hidden_states=hidden_layer != -1)
        h = out.last_hidden_state if hidden_layer == -1 else out.hidden_states[hidden_layer]
        h = h[:, -(n - skip) :]
        if skip:
            h = torch.cat([h.new_zeros((h.shape[0], skip, h.shape[2])), h], dim=1)
        hidden.append(h)
        fresh.append((skip, out.cache))
    if cache.buffers:
        cache.set_filled(start_len + n)
    else:  # stack the slices' caches, each left-padded with the zero columns it skipped
        keys: list[list[torch.Tensor]] = []
        values: list[list[torch.Tensor]] = []
        for skip, part in fresh:
            ks, vs = _from(part)
            if skip:
                ks = [torch.cat([k.new_zeros((*k.shape[:2], skip, k.shape[3])), k], dim=2) for k in ks]
                vs = [torch.cat([v.new_zeros((*v.shape[:2], skip, v.shape[3])), v], dim=2) for v in vs]
            keys.append(ks)
            values.append(vs)
        stacked_k = tuple(torch.cat(x, dim=0) for x in zip(*keys))
        stacked_v = tuple(torch.cat(x, dim=0) for x in zip(*values))
        cache = BufferCache(stacked_k, stacked_v, cache.capacity)
    return cache, torch.cat(hidden, dim=0)
