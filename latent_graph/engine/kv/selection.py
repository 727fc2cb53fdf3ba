"""Compressed latent edges: the columns a :class:`~.policy.KVPolicy` keeps, and the handle holding only them.

:func:`compress` scores a handle's columns (:mod:`.scores`), :func:`select` picks the kept ones per
row (the rules are in :mod:`.policy`'s docstring) and :func:`apply_selection` builds the smaller
handle, segment by segment.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from latent_graph.engine.handle import LatentHandle, Segment
from latent_graph.engine.kv.policy import KVPolicy
from latent_graph.engine.kv.scores import (
    accumulate,
    calibrated_heads,
    chunked,
    closed,
    column_scores,
    key_norm_scores,
    pooled,
)


def _protected(handle: LatentHandle, policy: KVPolicy, start: int) -> torch.Tensor:
    """(B, T) bool: columns every selection keeps (see module docstring); padding is never protected."""
    real = handle.attention_mask.bool()  # (B, T)
    prot = torch.zeros_like(real)
    prot[:, :start] = policy.scope == "sender"
    b = policy.boundary
    for s in handle.segments:
        if s.kind == "latent":
            prot[:, s.start : s.end] |= policy.latent
            continue
        if b:
            rank = real[:, s.start : s.end].long().cumsum(dim=1)  # (B, L) 1-based rank of real columns
            n = rank[:, -1:] if s.length else rank
            prot[:, s.start : s.end] |= (rank <= b) | (rank > n - b)
    rank = real.long().cumsum(dim=1)  # (B, T) rank from the start
    prot |= rank <= policy.sink
    rank = real.long().flip(1).cumsum(dim=1).flip(1)  # (B, T) rank from the end
    prot |= rank <= policy.recent
    return prot & real


def _span_scores(handle: LatentHandle, scores: torch.Tensor, policy: KVPolicy, start: int) -> torch.Tensor:
    """Scores of the real columns in ``[start, T)``, max-pooled over ``pool`` neighbours; -inf elsewhere: (B, T)."""
    span = handle.attention_mask.bool().clone()
    span[:, :start] = False
    s = scores.float().masked_fill(~span, float("-inf"))
    s = pooled(s, policy.pool).masked_fill(~span, float("-inf"))
    s = closed(s, policy.close).masked_fill(~span, float("-inf"))
    return chunked(handle, s, span, policy)


def select(handle: LatentHandle, scores: torch.Tensor, policy: KVPolicy, start: int = 0) -> torch.Tensor:
    """(B, T) bool: the columns kept under ``policy`` given per-column ``scores`` (B, T).

    ``keep``: per row, the ``n`` real columns in ``[start, T)`` add ``max(ceil(keep * n), min(floor, n))`` to
    the row's kept columns: chosen among all its real columns (``scope="chain"``) or among those ``n`` alone
    (``"sender"``; earlier columns untouched); protected ones counted first (kept even if they alone exceed
    it), then the best-scored (after pooling and closing).
    """
    real = handle.attention_mask.bool()
    prot = _protected(handle, policy, start)
    keep = prot.clone()
    pooled = _span_scores(handle, scores, policy, start if policy.scope == "sender" else 0)
    for r in range(handle.batch_size):
        span = real[r].clone()
        span[:start] = False
        n = int(span.sum())
        want = max(math.ceil(policy.keep * n), min(policy.floor, n))
        if policy.scope == "chain":  # the earlier senders' kept columns compete for the same total
            want += int(real[r, :start].sum())
            span = real[r].clone()
        want -= int((prot[r] & span).sum())
        free = (span & ~prot[r]).nonzero().flatten()
        if want > 0 and len(free):
            best = pooled[r, free].topk(min(want, len(free))).indices
            keep[r, free[best]] = True
        if policy.budget is not None:
            over = int(keep[r].sum()) - policy.budget
            cand = (keep[r] & ~prot[r]).nonzero().flatten()
            if over > 0 and len(cand):
                worst = scores[r, cand].topk(min(over, len(cand)), largest=False).indices
                keep[r, cand[worst]] = False
            over = int(keep[r].sum()) - policy.budget
            if over > 0:  # still over: protected template columns go too, oldest first (latent, sink, recent stay)
                keep[r, _evictable(handle, keep, policy, r)[:over]] = False
    return keep


def _evictable(handle: LatentHandle, keep: torch.Tensor, policy: KVPolicy, r: int) -> torch.Tensor:
    """Kept columns of row ``r`` a budget may still evict, oldest first: not latent, not sink, not recent."""
    ok = keep[r].clone()
    for s in handle.segments:
        if s.kind == "latent":
            ok[s.start : s.end] = False
    real = keep[r].nonzero().flatten()
    ok[real[: max(1, policy.sink)]] = False  # the attention sink
    ok[real[-policy.recent :] if policy.recent else real[:0]] = False
    return ok.nonzero().flatten()


def apply_selection(handle: LatentHandle, keep: torch.Tensor) -> LatentHandle:
    """The handle holding only the ``keep`` (B, T) columns, segment by segment, left-padded per row."""
    if bool(keep.eq(handle.attention_mask.bool()).all()):
        return handle
    b = handle.batch_size
    cols: list[torch.Tensor] = []  # per segment: (B, L') source column index, -1 = padding
    segments: list[Segment] = []
    at = 0
    real = handle.attention_mask.bool()
    for s in handle.segments:
        rows = [keep[r, s.start : s.end].nonzero().flatten() + s.start for r in range(b)]
        width = max(len(x) for x in rows)
        idx = torch.full((b, width), -1, dtype=torch.long, device=handle.device)
        for r, x in enumerate(rows):
            if len(x):
                idx[r, width - len(x) :] = x
        dropped = int(real[:, s.start : s.end].sum()) - int(keep[:, s.start : s.end].sum())
        if width or s.kind == "latent":
            cols.append(idx)
            segments.append(Segment(s.agent, s.kind, at, at + width, s.dropped + dropped))
            at += width
    idx = torch.cat(cols, dim=1) if cols else torch.zeros((b, 0), dtype=torch.long, device=handle.device)  # (B, T')
    pad = idx < 0
    src = idx.clamp_min(0)

    def take(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B, H, T', D), padding zeroed
        i = src.to(x.device)[:, None, :, None].expand(x.shape[0], x.shape[1], src.shape[1], x.shape[3])
        return x.gather(2, i).masked_fill(pad.to(x.device)[:, None, :, None], 0)

    return replace(
        handle,
        keys=tuple(take(k) for k in handle.keys),
        values=tuple(take(v) for v in handle.values),
        attention_mask=handle.attention_mask.gather(1, src).masked_fill(pad, 0),
        position_ids=handle.position_ids.gather(1, src).masked_fill(pad, 0),
        segments=tuple(segments),
    )


def compress(
    model: Any, handle: LatentHandle | None, policy: KVPolicy, start: int = 0, record: list[torch.Tensor] | None = None
) -> LatentHandle | None:
    """``handle`` with only the columns ``policy`` keeps (columns before ``start`` are exempt from ``keep``).

    ``record``: attention weights recorded while the handle was built (:func:`observing`);
    without them the columns are scored by probe steps (:func:`column_scores`).
    """
    if handle is None or not policy.active or handle.seq_len == 0:
        return handle
    if policy.budget is None and start >= handle.seq_len:
        return handle
    if policy.score == "knorm":
        scores = key_norm_scores(handle, policy.heads or calibrated_heads(handle))
    else:
        recorded = accumulate(record, handle) if record else None
        scores = recorded if recorded is not None else column_scores(model, handle, policy.probes)
    scores = pooled(scores, policy.pool)
    return apply_selection(handle, select(handle, scores, policy, start))


def kept_total(handle: LatentHandle) -> tuple[int, int]:
    """(real columns kept, real columns before any drop), summed over rows."""
    kept = int(handle.attention_mask.sum())
    return kept, kept + sum(s.dropped for s in handle.segments)
