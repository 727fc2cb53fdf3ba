"""The KV cache under an engine call: handle <-> cache objects, positions, and the positioned forward.

The cache object grows in place during ``forward``; handles must not. So each
engine call copies the handle's tensors once into a fresh
:class:`~latent_graph.engine.forward.kvbuffer.BufferCache` (preallocated for the columns
the call will add, written in place, no per-token concatenation), appends
columns through :class:`Work` and freezes the result into a new handle at the end.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from latent_graph.engine.forward.kvbuffer import BufferCache
from latent_graph.engine.forward.slices import forward_slices
from latent_graph.engine.handle import LatentHandle, Segment, SegmentKind


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


Row = tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]
"""One batch row: per-layer keys and values (1, H_kv, T, D), its mask and positions (1, T)."""


def stack_rows(rows: list[Row]) -> Row:
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


def positions_after(next_pos: torch.Tensor, new_mask: torch.Tensor) -> torch.Tensor:
    """Positions (B, n) of n new columns: real tokens continue after each row's last one, pads reuse it.

    This is the one place the position rule lives; every forward on top of a handle uses it.
    """
    return next_pos[:, None] + (new_mask.cumsum(dim=1) - 1).clamp_min(0)  # (B, n)


class Work:
    """Mutable scratch state of one engine call on top of a handle; frozen into a new handle at the end.

    The handle it starts from is never touched: its tensors are copied once into a
    :class:`BufferCache` with ``capacity`` free columns reserved for what this call appends.
    """

    def __init__(
        self,
        base: LatentHandle | None,
        batch: int,
        device: torch.device,
        fingerprint: Any,
        capacity: int = 0,
        rows: int | None = None,
    ):
        if base is not None and base.seq_len > 0:
            self.cache = BufferCache(base.keys, base.values, capacity)
        else:
            self.cache = BufferCache((), (), capacity)
        if base is None:
            self.mask = torch.zeros((batch, 0), dtype=torch.long, device=device)  # (B, T)
            self.pos = torch.zeros((batch, 0), dtype=torch.long, device=device)  # (B, T)
        else:
            self.mask, self.pos = base.attention_mask, base.position_ids
        self.base = base
        self.segments: list[Segment] = list(base.segments) if base else []
        self.latents: list[torch.Tensor] = list(base.latents) if base else []
        self.hiddens: list[torch.Tensor] = list(base.hiddens) if base else []
        self.fingerprint = fingerprint
        self.next_pos = base.next_positions() if base else torch.zeros(batch, dtype=torch.long, device=device)  # (B,)
        self.dense = bool(self.mask.all())
        self._ones: dict[int, torch.Tensor] = {}  # no padding column yet: the model may skip its 2D mask
        self.prompt_tokens = self.latent_steps = self.generated_tokens = 0
        self.meta: dict[str, str] = dict(base.meta) if base else {}
        self.rows = rows  # most batch rows one forward runs (more run in slices of this many); None: all

    def ones(self, rows: int) -> torch.Tensor:
        """The shared (rows, 1) all-ones column mask of single steps (made once per batch size)."""
        col = self._ones.get(rows)
        if col is None:
            col = self._ones[rows] = torch.ones((rows, 1), dtype=torch.long, device=self.next_pos.device)
        return col

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def add_segment(self, agent: str, kind: SegmentKind, n: int) -> None:
        """Record that the last ``n`` columns were written by ``agent``."""
        if n > 0:
            self.segments.append(Segment(agent, kind, self.length - n, self.length))

    def forward(
        self,
        base_model: Any,
        new_mask: torch.Tensor,
        layer: int = -1,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Append n columns through ``base_model`` (no lm_head); returns layer ``layer``'s hidden states (B, n, H)."""
        n = new_mask.shape[1]
        added: int | torch.Tensor  # columns each row gains: 1 for a step, else (B,)
        if n == 1 and new_mask is self.ones(new_mask.shape[0]):  # a latent/decode step: one real column per row
            pos, added = self.next_pos[:, None], 1  # == positions_after(next_pos, ones)
        else:
            pos, added = positions_after(self.next_pos, new_mask), new_mask.sum(dim=1)  # (B, n), (B,)
            self.dense = self.dense and bool(new_mask.all())
        mask = torch.cat([self.mask, new_mask], dim=1)  # (B, T + n)
        # without padding the model's causal mask is the plain one (transformers then skips it too)
        kw = dict(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=None if self.dense else mask)
        if self.rows is not None and mask.shape[0] > self.rows:  # more rows than one forward runs
            self.cache, hidden = forward_slices(
                base_model, self.cache, self.rows, new_mask, layer, **kw, position_ids=pos
            )
        else:
            out = base_model(**kw, position_ids=pos, cache=self.cache, use_cache=True, output_hidden_states=layer != -1)
            self.cache = out.cache
            hidden = (out.last_hidden_state if layer == -1 else out.hidden_states[layer])[:, -n:]
        self.mask = mask
        self.pos = torch.cat([self.pos, pos], dim=1)
        self.next_pos = self.next_pos + added
        assert self.cache.get_seq_length() == self.length, "KV cache and mask are out of step"
        return hidden

    def logits(self, h: torch.Tensor, head: Any) -> torch.Tensor:
        """Next-token logits of hidden states ``h`` (B, H) through the model's output head (the decoding loop asks
        the call's state, so an engine that computes logits itself can hand its own)."""
        return head(h)

    def take_rows(self, idx: torch.Tensor) -> None:
        """Keep only batch rows ``idx`` (B',) of the cache, mask and positions."""
        self.cache.select_rows(idx)
        self.mask, self.pos, self.next_pos = self.mask[idx], self.pos[idx], self.next_pos[idx]

    def row(self, i: int, keep: int | None = None, resume: int = 0) -> Row:
        """Row ``i`` as single-row (keys, values, mask, positions), for :func:`stack_rows` (views of the cache).

        ``keep``/``resume``: only its first ``keep`` columns and those from ``resume`` on (a copy; the columns
        between hold padding the row got while entering a running batch, see :meth:`put_row`).
        """
        keys, values = from_cache(self.cache)

        def cut(x: torch.Tensor, dim: int) -> torch.Tensor:
            x = x[i : i + 1]
            if keep is None:
                return x
            return torch.cat([x.narrow(dim, 0, keep), x.narrow(dim, resume, x.shape[dim] - resume)], dim=dim)

        return (
            tuple(cut(k, 2) for k in keys),
            tuple(cut(v, 2) for v in values),
            cut(self.mask, 1),
            cut(self.pos, 1),
        )

    def put_row(self, slot: int, row: Row, next_pos: torch.Tensor) -> None:
        """Write ``row`` (from :meth:`row`) into batch row ``slot``, replacing it: the batch grows to the row's
        length with masked columns if it is longer, the row is right-padded with masked columns if shorter."""
        keys, values, mask, pos = row
        n = int(mask.shape[1])
        if n > self.length:
            extra = self.mask.new_zeros((self.mask.shape[0], n - self.length))
            self.cache.pad_to(n)
            self.mask, self.pos = torch.cat([self.mask, extra], dim=1), torch.cat([self.pos, extra], dim=1)
        self.cache.put_row(slot, keys, values)
        self.mask, self.pos, self.next_pos = (
            self.mask.clone(),
            self.pos.clone(),
            self.next_pos.clone(),
        )  # may be a handle's
        self.mask[slot], self.pos[slot] = 0, 0
        self.mask[slot, :n], self.pos[slot, :n] = mask[0], pos[0]
        self.next_pos[slot] = next_pos
        self.dense = False

    def set_rows(self, rows: list[Row]) -> None:
        """Replace the batch by ``rows`` (stacked, shorter ones right-padded with masked columns)."""
        keys, values, self.mask, self.pos = stack_rows(rows)
        self.dense = bool(self.mask.all())
        self.cache = BufferCache(keys, values)

    def freeze(self, last_hidden: torch.Tensor | None) -> LatentHandle:
        """The new immutable handle: base + everything this call appended."""
        keys, values = self.cache.frozen()
        b = self.base
        return LatentHandle(
            keys=keys,
            values=values,
            attention_mask=self.mask,
            position_ids=self.pos,
            segments=tuple(self.segments),
            latents=tuple(self.latents),
            hiddens=tuple(self.hiddens),
            fingerprint=self.fingerprint,
            last_hidden=last_hidden,
            prompt_tokens=(b.prompt_tokens if b else 0) + self.prompt_tokens,
            latent_steps=(b.latent_steps if b else 0) + self.latent_steps,
            generated_tokens=(b.generated_tokens if b else 0) + self.generated_tokens,
            meta=dict(self.meta),
        )
