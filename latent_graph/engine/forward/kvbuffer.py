"""A KV cache that writes new columns into preallocated buffers instead of concatenating per token.

``DynamicCache`` grows by ``torch.cat`` at every forward: each decode or latent
step copies the whole cache of every layer once more. :class:`BufferCache` copies
the handle's prefix once into a buffer of ``prefix + capacity`` columns per layer
and writes each new column in place; attention reads a view of the filled part.
It only grows (doubling) if a call writes more columns than it reserved.

Handles stay immutable: the prefix is copied (never written), and the buffer is
handed over at freeze time only after the last write (sliced and compacted when
columns are left unused).
"""

from __future__ import annotations

from functools import partial
from typing import cast

import torch
from transformers.cache_utils import Cache, DynamicLayer


class BufferLayer(DynamicLayer):
    """One layer's K/V in a preallocated ``(B, H_kv, T_max, D)`` buffer; ``keys``/``values`` view the filled part."""

    def __init__(self, capacity: int, keys: torch.Tensor | None = None, values: torch.Tensor | None = None) -> None:
        super().__init__()
        self.capacity = max(0, int(capacity))  # free columns to reserve beyond what is written first
        self.filled = 0
        if keys is not None and values is not None:
            self._allocate(keys, values)

    def _allocate(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        n = keys.shape[-2]
        self.dtype, self.device = keys.dtype, keys.device
        self._k = keys.new_empty((*keys.shape[:2], n + self.capacity, keys.shape[-1]))
        self._v = values.new_empty((*values.shape[:2], n + self.capacity, values.shape[-1]))
        self._k[:, :, :n].copy_(keys)
        self._v[:, :, :n].copy_(values)
        self.is_initialized = True
        self._set_filled(n)

    def _set_filled(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.filled = n
        self.keys, self.values = keys, values = self._k[:, :, :n], self._v[:, :, :n]
        return keys, values

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self._allocate(key_states[:, :, :0], value_states[:, :, :0])

    def reserve(self, end: int) -> None:
        """Make room for ``end`` columns (doubling the buffer when it has fewer)."""
        if end > self._k.shape[2]:
            grow = max(end - self._k.shape[2], self._k.shape[2])
            self._k = torch.cat([self._k, self._k.new_empty((*self._k.shape[:2], grow, self._k.shape[-1]))], dim=2)
            self._v = torch.cat([self._v, self._v.new_empty((*self._v.shape[:2], grow, self._v.shape[-1]))], dim=2)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.filled, self.filled + key_states.shape[-2]
        self.reserve(end)
        self._k[:, :, start:end].copy_(key_states)
        self._v[:, :, start:end].copy_(value_states)
        return self._set_filled(end)

    def get_seq_length(self) -> int:
        return self.filled

    def frozen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled K/V as tensors no later write can reach: the buffer itself when full, else a compact copy."""
        if self.filled == self._k.shape[2]:
            return self._k, self._v
        keys, values = self.keys, self.values
        assert keys is not None and values is not None  # set with the buffer; only initialized layers are frozen
        return keys.contiguous(), values.contiguous()

    def select_rows(self, idx: torch.Tensor) -> None:
        """Keep batch rows ``idx`` (new buffers, same reserve)."""
        self._k, self._v = self._k.index_select(0, idx), self._v.index_select(0, idx)
        self._set_filled(self.filled)

    def window(self, start: int, stop: int, skip: int = 0) -> BufferLayer:
        """Rows ``start:stop`` as a layer writing into this buffer (a forward on a slice of the batch), after
        ``skip`` zero columns; the caller reserves the columns first and sets :attr:`filled` after."""
        view = BufferLayer(0)
        view.dtype, view.device, view.is_initialized = self.dtype, self.device, True
        view._k, view._v = self._k[start:stop], self._v[start:stop]
        view._k[:, :, self.filled : self.filled + skip].zero_()
        view._v[:, :, self.filled : self.filled + skip].zero_()
        view._set_filled(self.filled + skip)
        return view

    def pad_to(self, n: int) -> None:
        """Grow every row to ``n`` columns with zero K/V (columns its mask hides)."""
        if n > self.filled:
            self.reserve(n)
            self._k[:, :, self.filled : n].zero_()
            self._v[:, :, self.filled : n].zero_()
            self._set_filled(n)

    def put_row(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Overwrite row ``slot`` with one row's K/V (1, H_kv, L, D), ``L <= filled``; columns after it are zeroed."""
        n = keys.shape[2]
        self._k[slot, :, :n].copy_(keys[0])
        self._v[slot, :, :n].copy_(values[0])
        self._k[slot, :, n : self.filled].zero_()
        self._v[slot, :, n : self.filled].zero_()


class BufferCache(Cache):
    """A transformers ``Cache`` of :class:`BufferLayer`; seeded with copies of per-layer K/V (or empty)."""

    def __init__(
        self,
        keys: tuple[torch.Tensor, ...] = (),
        values: tuple[torch.Tensor, ...] = (),
        capacity: int = 0,
    ) -> None:
        self.capacity = capacity
        if keys:
            super().__init__(layers=[BufferLayer(capacity, k, v) for k, v in zip(keys, values)])
        else:
            super().__init__(layer_class_to_replicate=partial(BufferLayer, capacity))  # type: ignore[arg-type]

    @property
    def buffers(self) -> list[BufferLayer]:
        """``layers``, typed as what they are: every layer of this cache is a :class:`BufferLayer`."""
        return cast(list[BufferLayer], self.layers)

    def frozen(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Per-layer (keys, values) safe to hand to an immutable handle (see :meth:`BufferLayer.frozen`)."""
        pairs = [layer.frozen() for layer in self.buffers if layer.is_initialized]
        return tuple(k for k, _ in pairs), tuple(v for _, v in pairs)

    def select_rows(self, idx: torch.Tensor) -> None:
        for layer in self.buffers:
            if layer.is_initialized:
                layer.select_rows(idx)

    def window(self, start: int, stop: int, columns: int, skip: int = 0) -> BufferCache:
        """Rows ``start:stop`` as a cache writing into this one's buffers, with room for ``columns`` more, the
        first ``skip`` of them zero (a forward on a slice of the batch; :meth:`set_filled` after the last slice)."""
        for layer in self.buffers:
            layer.reserve(layer.filled + columns)
        return BufferCache._of([layer.window(start, stop, skip) for layer in self.buffers])

    def set_filled(self, n: int) -> None:
        """Every layer now holds ``n`` columns (written through :meth:`window` caches)."""
        for layer in self.buffers:
            layer._set_filled(n)

    def pad_to(self, n: int) -> None:
        for layer in self.buffers:
            layer.pad_to(n)

    def put_row(self, slot: int, keys: tuple[torch.Tensor, ...], values: tuple[torch.Tensor, ...]) -> None:
        """Overwrite batch row ``slot`` with one row's per-layer K/V (see :meth:`BufferLayer.put_row`)."""
        for layer, k, v in zip(self.buffers, keys, values):
            layer.put_row(slot, k, v)

    @classmethod
    def _of(cls, layers: list[BufferLayer]) -> BufferCache:
        cache = cls()
        cache.layers = list(layers)
        return cache
