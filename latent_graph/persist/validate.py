"""Full consistency check of a handle's tensors against its header, before a handle is built.

Why: a checksum only says the bytes are the ones written; a re-signed or
hand-made payload can still hold a K/V layer of another length, an int64 layer,
segments with gaps or a latent block of the wrong width, which used to load
and then fail deep inside attention with raw errors (or decode silently). Every
rule below raises :class:`~latent_graph.errors.HandleFormatError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latent_graph.engine import Segment
from latent_graph.errors import HandleFormatError

__all__ = ["Parts", "check_parts"]


@dataclass
class Parts:
    """Tensors of a handle before validation."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    latents: list[torch.Tensor]
    hiddens: list[torch.Tensor]
    last_hidden: torch.Tensor | None


def _fail(msg: str) -> None:
    raise HandleFormatError(f"inconsistent latent handle: {msg}")


def _check_index(mask: torch.Tensor, pos: torch.Tensor) -> tuple[int, int]:
    if mask.dim() != 2 or pos.shape != mask.shape:
        _fail(f"attention_mask {tuple(mask.shape)} / position_ids {tuple(pos.shape)} must be equal (B, T)")
    if mask.dtype != torch.long or pos.dtype != torch.long:
        _fail(f"attention_mask/position_ids must be int64, got {mask.dtype}/{pos.dtype}")
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        _fail("attention_mask holds values other than 0 and 1")
    if pos.numel() and int(pos.min()) < 0:
        _fail("position_ids holds negative positions")
    return int(mask.shape[0]), int(mask.shape[1])


def _check_kv(p: Parts, n_layers: int, b: int, t: int) -> None:
    if len(p.keys) != n_layers or len(p.values) != n_layers:
        _fail(f"expected {n_layers} layers of keys/values, got {len(p.keys)}/{len(p.values)}")
    dtype = p.keys[0].dtype if p.keys else None
    for layer, (k, v) in enumerate(zip(p.keys, p.values)):
        for name, x in (("keys", k), ("values", v)):
            if x.dim() != 4 or x.shape[0] != b or x.shape[2] != t:
                _fail(f"{name}[{layer}] of shape {tuple(x.shape)} does not fit (B={b}, H, T={t}, D)")
            if x.dtype != dtype or not x.dtype.is_floating_point:
                _fail(f"{name}[{layer}] has dtype {x.dtype}; every layer must share one float dtype ({dtype})")
            if x.device != p.attention_mask.device:
                _fail(f"{name}[{layer}] is on {x.device}, the mask on {p.attention_mask.device}")
        if k.shape[:3] != v.shape[:3]:
            _fail(f"layer {layer}: keys {tuple(k.shape)} and values {tuple(v.shape)} disagree")


def _check_segments(segments: tuple[Segment, ...], t: int) -> list[Segment]:
    edge = 0
    for s in segments:
        if s.start != edge or s.end < s.start:
            _fail(f"segment {s} does not continue the previous one at column {edge}")
        edge = s.end
    if edge != t:
        _fail(f"segments cover {edge} columns but the cache has {t}")
    return [s for s in segments if s.kind == "latent"]


def _check_latents(p: Parts, latent_segs: list[Segment], b: int) -> None:
    if len(p.latents) != len(latent_segs):
        _fail(f"{len(p.latents)} latent blocks for {len(latent_segs)} latent segments")
    if p.hiddens and len(p.hiddens) != len(p.latents):
        _fail(f"{len(p.hiddens)} hidden-state blocks for {len(p.latents)} latent blocks")
    width = None
    for s, x in zip(latent_segs, p.latents):
        if x.dim() != 3 or x.shape[0] != b or x.shape[1] != s.length:
            _fail(f"latent block {tuple(x.shape)} does not fit segment {s} (B={b}, n={s.length}, H)")
    blocks = [*p.latents, *p.hiddens] + ([p.last_hidden] if p.last_hidden is not None else [])
    for i, x in enumerate(p.hiddens):
        if x.shape != p.latents[i].shape:
            _fail(f"hidden-state block {tuple(x.shape)} differs from its latent block {tuple(p.latents[i].shape)}")
    if p.last_hidden is not None and (p.last_hidden.dim() != 2 or p.last_hidden.shape[0] != b):
        _fail(f"last_hidden of shape {tuple(p.last_hidden.shape)} does not fit (B={b}, H)")
    for x in blocks:
        if not x.dtype.is_floating_point:
            _fail(f"latent/hidden tensor has non-float dtype {x.dtype}")
        if width is None:
            width = int(x.shape[-1])
        elif int(x.shape[-1]) != width:
            _fail(f"latent/hidden widths disagree ({width} vs {int(x.shape[-1])})")


def check_parts(p: Parts, segments: tuple[Segment, ...], n_layers: int) -> None:
    """Raise :class:`HandleFormatError` unless the tensors form a consistent handle.

    Checks: mask/positions (B, T) int64 with a 0/1 mask and positions >= 0; exactly
    ``n_layers`` K/V pairs, each (B, H, T, D), one float dtype, one device; segments
    contiguous from column 0 to T; one latent block (B, n, H) per latent segment of
    n columns, hidden states of the same shapes, one width H throughout.
    """
    b, t = _check_index(p.attention_mask, p.position_ids)
    _check_kv(p, n_layers, b, t)
    _check_latents(p, _check_segments(segments, t), b)
