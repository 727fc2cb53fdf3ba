"""Compressed latent edges: only the best-scored cache columns of a handle cross an edge.

Training-free scores, two of them (``KVPolicy.score``):

- ``"knorm"`` (default): columns whose keys have a *low* L2 norm score high (keys of low norm
  draw attention: Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for KV
  Cache Compression"). Free: it reads the cache only. Which keys: ``KVPolicy.heads``
  ``(layer, kv head)`` pairs, each z-scored over the row's real columns and summed; when None,
  the model's :data:`CALIBRATED_HEADS` (SmolLM2-135M: layer 15 head 0 + layer 21 head 2), else
  the mean over all kv heads of the last third of the layers. On the relay6 *validation*
  split the calibrated pair keeps every value token of the fact (all of "ZEPHYR-92") in the
  20% budget for 47 of 48 senders; the late-third mean for 13, attention scores for <= 6
  (``benchmarks/kv_recall.py``).
- ``"attention"`` (SnapKV / H2O style): the attention the sender's own last ``window`` prompt
  positions and each of its latent steps pay to a column (sink column left out, most
  attentive head, summed over layers), recorded while the sender thinks (:func:`observing`;
  no extra pass). A handle with no such record (a cache budget on a handle read later) is
  scored by ``probes`` probe steps: its last hidden state realigned and fed back as in
  :meth:`think`, on a scratch copy of the cache that is thrown away. On SmolLM2-135M it
  favours the question and template tokens right before the window, not the fact.

Scores may be max-pooled over ``pool`` neighbouring columns (SnapKV's kernel; padding and
columns outside the span never spread a score) and closed over ``close`` columns (max-pool then
min-pool: a gap narrower than ``close`` between two higher-scored columns is raised to the lower of
them, a lone peak is not widened). Selection is per row of the batch:

- ``keep`` (``scope="chain"``, default): the ``n`` real columns the sender wrote (``[start, T)``)
  add ``ceil(keep * n)`` to the row's total, and that total is chosen by score over *every* real
  column of the row, the earlier senders' kept ones included (their scores are the same z-scored
  key norms of the same row): a sender whose columns score high (a fact told to it alone) takes
  more than ``keep`` of its own, at the price of the row's weakest earlier columns; one with
  nothing new takes less. Each edge carries as many columns per row as a sender-by-sender
  selection would (``ceil(keep * n)`` per sender, summed), so the bytes of an edge still shrink
  with ``keep``. ``scope="sender"``: exactly ``ceil(keep * n)`` of the sender's own ``n`` columns
  stay and the columns before ``start`` are never touched. Either way at least
  ``min(floor, n)`` are added per sender (``floor=0``: off) and protected columns are counted
  inside (kept even if they alone exceed it);
- **protected**: the first ``sink`` real columns of the row (the attention sink), its last
  ``recent`` real columns, the first/last ``boundary`` real columns of every prompt/text
  segment (off by default), latent segments with ``latent=True`` (off by default: thoughts
  carry nothing measurable on the default model), and with ``scope="sender"`` every column
  before ``start``;
- ``budget``: then, while a row holds more than ``budget`` real columns, drop its
  lowest-scored unprotected column; if that is not enough, protected template columns go
  too, oldest first (latent segments, the sink and the last columns stay).

Kept columns keep their positions (nothing is re-rotated) and new tokens continue after
the highest kept position. Every segment keeps its place in the segment table, left-padded
per row like any segment; ``Segment.dropped`` counts the real columns it lost (all rows).
``keep=1`` and no budget return the very same handle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from latent_graph.engine import attention_probe
from latent_graph.engine.cache import Work
from latent_graph.engine.handle import LatentHandle, Segment
from latent_graph.errors import InvalidArgumentError


SCORES: tuple[str, ...] = ("knorm", "attention")
SCOPES: tuple[str, ...] = ("sender", "chain")
CALIBRATED_HEADS: dict[str, tuple[tuple[int, int], ...]] = {"SmolLM2-135M-Instruct": ((15, 0), (21, 2))}
"""``(layer, kv head)`` pairs whose key norms score columns for ``"knorm"`` when ``KVPolicy.heads`` is None, by
model name (the fingerprint's, hub prefix dropped). Chosen without training by ``benchmarks/kv_recall.py`` on the
relay6 validation split (checked on train; never on test): the heads whose low-norm keys best hold a fact's
value tokens in the top 20% of a sender's columns. Any other model: the mean over the last third of the layers."""


@dataclass(frozen=True)
class KVPolicy:
    """Which columns of a handle cross an edge.

    Attributes:
        keep: Fraction in (0, 1] of the sender's droppable real columns kept (1 = all).
        budget: At most this many real columns per row in the whole handle (None = no cap).
        window: Last prompt positions of the sender whose attention scores the columns.
        pool: Max-pooling width over neighbouring columns' scores (1 = off).
        probes: Probe steps that score a handle thought without a record.
        score: ``"knorm"`` (low key norm, default) or ``"attention"`` (see the module docstring).
        boundary: Real columns kept at each end of every prompt/text segment (0 = none).
        sink: First real columns of each row always kept (the attention sink).
        recent: Last real columns of each row always kept (>= 1: the next agent continues after them).
        latent: Keep latent segments whole (else they are scored like any column).
        heads: ``(layer, kv head)`` pairs whose key norms score the columns (``"knorm"``), each
            z-scored over the row's real columns and summed; None = mean over the last third of the layers.
        floor: At least ``min(floor, n)`` columns per sender of ``n`` (0 = off).
        scope: ``"chain"`` (the row's total chosen over every sender's columns, default) or ``"sender"``
            (only the sender's own columns, the earlier ones untouched); see the module docstring.
        close: Closing width over the scores (1 = off; 3 fills one- and two-column gaps).
        chunk: Columns scored and kept as one unit (ChunkKV style; 1 = off): each segment's real columns
            of a row, in runs of ``chunk``, all take the ``chunk_score`` of their run.
        chunk_score: ``"mean"`` or ``"max"`` of the run's scores.
    """

    keep: float = 1.0
    budget: int | None = None
    window: int = 16
    pool: int = 1
    probes: int = 4
    boundary: int = 0
    sink: int = 1
    recent: int = 1
    latent: bool = False
    score: str = "knorm"
    heads: tuple[tuple[int, int], ...] | None = None
    floor: int = 0
    scope: str = "chain"
    close: int = 1
    chunk: int = 1
    chunk_score: str = "mean"

    def __post_init__(self) -> None:
        check_kv(self.keep, self.budget)
        if self.score not in SCORES:
            raise InvalidArgumentError(f"KVPolicy.score must be one of {SCORES}, got {self.score!r}")
        if self.heads is not None:
            pairs = tuple(tuple(p) for p in self.heads)
            if not pairs or any(len(p) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in p)
                                for p in pairs):
                raise InvalidArgumentError(f"KVPolicy.heads must be (layer, kv head) int pairs, got {self.heads!r}")
            object.__setattr__(self, "heads", pairs)
        if self.scope not in SCOPES:
            raise InvalidArgumentError(f"KVPolicy.scope must be one of {SCOPES}, got {self.scope!r}")
        if not isinstance(self.latent, bool):
            raise InvalidArgumentError(f"KVPolicy.latent must be a bool, got {self.latent!r}")
        if self.chunk_score not in ("mean", "max"):
            raise InvalidArgumentError(f"KVPolicy.chunk_score must be 'mean' or 'max', got {self.chunk_score!r}")
        for name in ("window", "pool", "probes", "boundary", "sink", "recent", "floor", "close", "chunk"):
            v, low = getattr(self, name), int(name in ("window", "pool", "probes", "recent", "close", "chunk"))
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InvalidArgumentError(f"KVPolicy.{name} must be an int >= {low}, got {v!r}")

    @property
    def active(self) -> bool:
        return self.keep < 1.0 or self.budget is not None


def check_kv(keep: object, budget: object = None, name: str = "kv_budget") -> None:
    """Named errors for a bad ``kv_keep`` fraction or a bad column budget."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.0 < float(keep) <= 1.0:
        raise InvalidArgumentError(f"kv_keep must be a fraction in (0, 1], got {keep!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise InvalidArgumentError(f"{name} must be a positive int (columns) or None, got {budget!r}")


@contextmanager
def observing(model: Any, policy: KVPolicy) -> Iterator[list[torch.Tensor]]:
    """Record the attention of every forward on this thread inside the block (for :func:`compress`'s ``record``)."""
    if not policy.active or policy.score != "attention" or not attention_probe.supports_probe(model.hf_model):
        yield []
        return
    attention_probe.route(model.hf_model)
    with attention_probe.recording(policy.window) as store:
        yield store


def accumulate(record: list[torch.Tensor], handle: LatentHandle) -> torch.Tensor | None:
    """Sum recorded weights (one (B, T_call) per layer per forward) over the handle's columns: (B, T)."""
    b, t = handle.batch_size, handle.seq_len
    rows = [w for w in record if w.shape[0] == b and w.shape[1] <= t]
    if not rows:
        return None
    scores = torch.zeros(b, t, device=handle.device)
    for w in rows:
        scores[:, : w.shape[1]] += w.to(scores.device)
    return scores


@torch.no_grad()
def column_scores(model: Any, handle: LatentHandle, probes: int = 4) -> torch.Tensor:
    """Attention ``probes`` probe steps pay to each column of ``handle``, summed over heads and layers: (B, T).

    Without a last hidden state (a merged handle) or a routable attention kernel, the score
    is recency (later columns score higher).
    """
    recency = handle.position_ids.float() / max(1, handle.seq_len)  # (B, T)
    if handle.last_hidden is None or not attention_probe.supports_probe(model.hf_model):
        return recency
    attention_probe.route(model.hf_model)
    work = Work(handle, handle.batch_size, model.device, model.fingerprint, probes)
    h = handle.last_hidden
    ones = work.ones(handle.batch_size)
    with attention_probe.recording(1) as store:
        for _ in range(probes):
            e = model.realigner(h.to(model.device))  # (B, H)
            h = work.forward(model.decoder, ones, model.layer, inputs_embeds=e[:, None].to(model.dtype))[:, -1]
    scores = accumulate(store, handle)
    return recency if scores is None else scores


def calibrated_heads(handle: LatentHandle) -> tuple[tuple[int, int], ...] | None:
    """The :data:`CALIBRATED_HEADS` of the model that built ``handle`` (None when it has none or they do not fit)."""
    heads = CALIBRATED_HEADS.get(handle.fingerprint.name.rsplit("/", 1)[-1])
    if heads is None or any(l >= handle.num_layers or h >= handle.keys[l].shape[1] for l, h in heads):
        return None
    return heads


def key_norm_scores(handle: LatentHandle, heads: tuple[tuple[int, int], ...] | None = None) -> torch.Tensor:
    """Minus the L2 norm of each column's keys: (B, T). ``heads=None``: mean over kv heads and the last third
    of the layers; else the sum over the ``(layer, kv head)`` pairs of each one z-scored over the row's real columns."""
    if heads is None:
        late = handle.keys[-max(1, handle.num_layers // 3):]
        norms = [k.float().norm(dim=-1).mean(dim=1).to(handle.device) for k in late]  # each (B, T)
        return -torch.stack(norms).mean(dim=0)
    real = handle.attention_mask.bool()  # (B, T)
    count = real.sum(dim=1, keepdim=True).clamp_min(1)  # (B, 1)
    out = torch.zeros(real.shape, device=handle.device)
    for layer, head in heads:
        if layer >= handle.num_layers or head >= handle.keys[layer].shape[1]:
            raise InvalidArgumentError(f"KVPolicy.heads: no kv head {head} in layer {layer} of this model")
        x = -handle.keys[layer][:, head].float().norm(dim=-1).to(handle.device) * real  # (B, T)
        mu = x.sum(dim=1, keepdim=True) / count
        sd = (((x - mu) * real) ** 2).sum(dim=1, keepdim=True).div(count).sqrt().clamp_min(1e-6)
        out += (x - mu) / sd
    return out


def _pooled(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Max over ``width`` neighbouring columns: (B, T) -> (B, T)."""
    if width <= 1 or scores.shape[1] == 0:
        return scores
    return F.max_pool1d(scores[:, None], width, stride=1, padding=width // 2)[:, 0, : scores.shape[1]]


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
    s = _pooled(s, policy.pool).masked_fill(~span, float("-inf"))
    s = _closed(s, policy.close).masked_fill(~span, float("-inf"))
    return _chunked(handle, s, span, policy)


def _chunked(handle: LatentHandle, scores: torch.Tensor, span: torch.Tensor, policy: KVPolicy) -> torch.Tensor:
    """Each segment's ``span`` columns of a row in runs of ``policy.chunk`` take their run's mean/max score: (B, T).
    Ties inside a run are broken by position (later first), so a budget that cuts a run keeps its tail."""
    if policy.chunk <= 1:
        return scores
    out = scores.clone()
    tie = torch.arange(policy.chunk, device=scores.device, dtype=scores.dtype) * 1e-6  # (chunk,)
    for r in range(scores.shape[0]):
        for s in handle.segments:
            cols = span[r, s.start : s.end].nonzero().flatten() + s.start
            for i in range(0, len(cols), policy.chunk):
                run = cols[i : i + policy.chunk]
                v = scores[r, run]
                out[r, run] = (v.mean() if policy.chunk_score == "mean" else v.max()) + tie[: len(run)]
    return out


def _closed(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Morphological closing over ``width`` columns (max-pool, then min-pool): a gap narrower than ``width``
    between two higher-scored columns is raised to the lower of them; a lone peak is not widened. (B, T)."""
    if width <= 1 or scores.shape[1] == 0:
        return scores
    s = scores.masked_fill(scores.isinf(), -1e9)  # finite, so the min-pool never meets -inf
    pad = width // 2
    up = F.max_pool1d(s[:, None], width, stride=1, padding=pad)[:, :, : s.shape[1]]
    return -F.max_pool1d(-up, width, stride=1, padding=pad)[:, 0, : s.shape[1]]


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
                idx[r, width - len(x):] = x
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


def compress(model: Any, handle: LatentHandle | None, policy: KVPolicy, start: int = 0,
             record: list[torch.Tensor] | None = None) -> LatentHandle | None:
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
        scores = accumulate(record, handle) if record else None
        if scores is None:
            scores = column_scores(model, handle, policy.probes)
    scores = _pooled(scores, policy.pool)
    return apply_selection(handle, select(handle, scores, policy, start))


def kept_total(handle: LatentHandle) -> tuple[int, int]:
    """(real columns kept, real columns before any drop), summed over rows."""
    kept = int(handle.attention_mask.sum())
    return kept, kept + sum(s.dropped for s in handle.segments)
