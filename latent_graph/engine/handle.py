"""LatentHandle: the immutable working state one agent passes to the next.

A handle is a KV cache plus everything needed to extend it correctly:

- ``keys[l]``, ``values[l]``: per-layer cache tensors, ``(B, H_kv, T, D)``;
- ``attention_mask``: ``(B, T)``, 1 for real columns, 0 for padding. Every agent
  segment is left-padded on its own, so padding can sit in the middle of a row;
- ``position_ids``: ``(B, T)``, the position each column was encoded at. New
  tokens continue at ``max(position) + 1`` per row, so dropping columns (memory
  policies) never shifts RoPE positions under keys that were already rotated;
- ``segments``: which agent wrote which column span, and how (prompt, latent, text, tool: a tool turn);
- ``latents``: the realigned thought embeddings, one ``(B, n, H)`` per latent segment,
  and ``hiddens`` the hidden states they were realigned from (same shapes);
- ``fingerprint``: the model that built it; other models refuse it.

Handles are never mutated: every operation returns a new handle, and the engine
builds a fresh cache object from these tensors before each forward (transformers'
``DynamicCache`` grows in place; the tensors held here do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from latent_graph.engine.load.fingerprint import ModelFingerprint
from latent_graph.engine.options import MemoryPolicy, check_memory
from latent_graph.errors import InvalidArgumentError

SegmentKind = Literal["prompt", "latent", "text", "tool"]
SEGMENT_KINDS: tuple[str, ...] = ("prompt", "latent", "text", "tool")
"""How a segment was written: an agent's prompt, its latent steps, decoded text, or a tool turn (tool results)."""


@dataclass(frozen=True)
class Segment:
    """A span of cache columns ``[start, end)`` written by one agent."""

    agent: str
    kind: SegmentKind
    start: int
    end: int
    dropped: int = 0  # real columns (all rows) a compressed edge or cache budget dropped from it

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class LatentHandle:
    """Immutable KV cache + segment table + fingerprint. See module docstring."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    attention_mask: torch.Tensor  # (B, T) int64
    position_ids: torch.Tensor  # (B, T) int64
    segments: tuple[Segment, ...]
    latents: tuple[torch.Tensor, ...]  # one (B, n, H) per latent segment: realigned inputs fed
    fingerprint: ModelFingerprint
    hiddens: tuple[torch.Tensor, ...] = ()  # one (B, n, H) per latent segment: hidden states before realign
    last_hidden: torch.Tensor | None = None  # (B, H) hidden state after the last column
    prompt_tokens: int = 0  # real prompt tokens fed, summed over rows
    latent_steps: int = 0  # latent steps taken (per row)
    generated_tokens: int = 0  # text tokens generated, summed over rows
    meta: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ shape
    @property
    def batch_size(self) -> int:
        return int(self.attention_mask.shape[0])

    @property
    def seq_len(self) -> int:
        """Number of cache columns T (padding included)."""
        return int(self.attention_mask.shape[1])

    @property
    def num_layers(self) -> int:
        return len(self.keys)

    @property
    def device(self) -> torch.device:
        return self.attention_mask.device

    @property
    def layer_devices(self) -> tuple[torch.device, ...]:
        """Device of each layer's K/V (they differ for a model sharded across devices)."""
        return tuple(k.device for k in self.keys)

    @property
    def dtype(self) -> torch.dtype:
        return self.keys[0].dtype if self.keys else torch.float32

    def next_positions(self) -> torch.Tensor:
        """Position the next token of each row takes: ``(B,)``."""
        masked = torch.where(self.attention_mask.bool(), self.position_ids, -1)  # (B, T)
        if masked.shape[1] == 0:
            return torch.zeros(self.batch_size, dtype=torch.long, device=self.device)
        return masked.max(dim=1).values + 1

    @property
    def nbytes(self) -> int:
        tensors = [*self.keys, *self.values, self.attention_mask, self.position_ids, *self.latents, *self.hiddens]
        if self.last_hidden is not None:
            tensors.append(self.last_hidden)
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def kv_nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    # ------------------------------------------------------------- describe
    def summary(self) -> str:
        """A readable multi-line description: model, shape, bytes, segment table."""
        lines = [
            f"LatentHandle from {self.fingerprint}",
            f"  batch={self.batch_size} columns={self.seq_len} layers={self.num_layers} "
            f"dtype={str(self.dtype).replace('torch.', '')} device={self.device} "
            f"bytes={self.nbytes:,}",
            f"  prompt_tokens={self.prompt_tokens} latent_steps={self.latent_steps} "
            f"generated_tokens={self.generated_tokens}",
            "  segments:",
        ]
        for i, s in enumerate(self.segments):
            real = int(self.attention_mask[:, s.start : s.end].sum())
            gone = f", {s.dropped} dropped" if s.dropped else ""
            lines.append(
                f"    [{i}] {s.agent:<12} {s.kind:<6} cols {s.start}:{s.end} ({real} real over {self.batch_size} rows{gone})"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        agents = ",".join(dict.fromkeys(s.agent for s in self.segments))
        return (
            f"LatentHandle(model={self.fingerprint.name!r}, batch={self.batch_size}, "
            f"columns={self.seq_len}, agents=[{agents}], bytes={self.nbytes})"
        )

    # ------------------------------------------------------------ transform
    def to(
        self,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        layer_devices: Sequence[torch.device | str] | None = None,
    ) -> LatentHandle:
        """Copy to another device and/or float dtype (masks stay int64).

        ``layer_devices`` puts each layer's K/V on its own device (a model sharded with
        ``device_map``: pass ``model.layer_devices``); everything else goes to ``device``.
        """
        if layer_devices is not None and len(layer_devices) != self.num_layers:
            raise InvalidArgumentError(f"{len(layer_devices)} layer devices for a handle of {self.num_layers} layers")
        per_layer = list(layer_devices) if layer_devices is not None else [device] * self.num_layers

        def mv(t: torch.Tensor, dev: torch.device | str | None = device) -> torch.Tensor:
            return t.to(device=dev, dtype=dtype) if dtype is not None else t.to(device=dev)

        return replace(
            self,
            keys=tuple(mv(k, d) for k, d in zip(self.keys, per_layer)),
            values=tuple(mv(v, d) for v, d in zip(self.values, per_layer)),
            attention_mask=self.attention_mask.to(device),
            position_ids=self.position_ids.to(device),
            latents=tuple(mv(x) for x in self.latents),
            hiddens=tuple(mv(x) for x in self.hiddens),
            last_hidden=None if self.last_hidden is None else mv(self.last_hidden),
        )

    def latent_segments(self) -> list[tuple[Segment, torch.Tensor]]:
        """Pairs of (latent segment, its thought embeddings (B, n, H))."""
        segs = [s for s in self.segments if s.kind == "latent"]
        return list(zip(segs, self.latents))

    def select_columns(self, keep: list[Segment]) -> LatentHandle:
        """A new handle holding only the given segments (in order), positions unchanged."""
        if not keep:
            idx = torch.zeros(0, dtype=torch.long, device=self.device)
        else:
            idx = torch.cat([torch.arange(s.start, s.end, device=self.device) for s in keep])
        new_segments, start = [], 0
        for s in keep:
            new_segments.append(Segment(s.agent, s.kind, start, start + s.length, s.dropped))
            start += s.length
        kept_ids = {id(s) for s in keep}
        lat_segs = [s for s in self.segments if s.kind == "latent"]
        latents = tuple(x for s, x in zip(lat_segs, self.latents) if id(s) in kept_ids)
        hiddens = tuple(x for s, x in zip(lat_segs, self.hiddens) if id(s) in kept_ids)
        return replace(
            self,
            keys=tuple(k.index_select(2, idx) for k in self.keys),
            values=tuple(v.index_select(2, idx) for v in self.values),
            attention_mask=self.attention_mask.index_select(1, idx),
            position_ids=self.position_ids.index_select(1, idx),
            segments=tuple(new_segments),
            latents=latents,
            hiddens=hiddens,
        )

    def with_memory(self, policy: MemoryPolicy | str) -> LatentHandle:
        """Apply a memory policy as seen by the next reader.

        Args:
            policy: ``"all"`` keeps everything; ``"last"`` keeps only the segments
                of the agent that wrote last; ``"latent"`` keeps only latent segments.
                Positions of kept columns are unchanged and new tokens continue
                after the highest kept position, so RoPE stays consistent.
        """
        if check_memory(policy) == "all":
            return self
        if policy == "last":
            if not self.segments:
                return self
            last_agent = self.segments[-1].agent
            keep: list[Segment] = []
            for s in reversed(self.segments):
                if s.agent != last_agent:
                    break
                keep.insert(0, s)
            return self.select_columns(keep)
        return self.select_columns([s for s in self.segments if s.kind == "latent"])
