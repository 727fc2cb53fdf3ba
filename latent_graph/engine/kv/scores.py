"""Training-free scores of cache columns (which ones a compressed edge keeps), and their smoothing.

Two scores (``KVPolicy.score``):

- ``"knorm"`` (default): columns whose keys have a *low* L2 norm score high (keys of low norm
  draw attention: Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for KV
  Cache Compression"). Free: it reads the cache only. Which keys: ``KVPolicy.heads``
  ``(layer, kv head)`` pairs, each z-scored over the row's real columns and summed; when None,
  the model's :data:`~.policy.CALIBRATED_HEADS`, else the mean over all kv heads of the last
  third of the layers.
- ``"attention"`` (SnapKV / H2O style): the attention the sender's own last ``window`` prompt
  positions and each of its latent steps pay to a column (sink column left out, most
  attentive head, summed over layers), recorded while the sender thinks (:func:`observing`;
  no extra pass). A handle with no such record (a cache budget on a handle read later) is
  scored by ``probes`` probe steps: its last hidden state realigned and fed back as in
  ``think``, on a scratch copy of the cache that is thrown away.

Scores may be max-pooled over ``pool`` neighbouring columns (SnapKV's kernel; padding and
columns outside the span never spread a score), closed over ``close`` columns (max-pool then
min-pool: a gap narrower than ``close`` between two higher-scored columns is raised to the lower of
them, a lone peak is not widened) and shared by runs of ``chunk`` columns (ChunkKV style).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from latent_graph.engine.forward.work import Work
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.kv import probe as attention_probe
from latent_graph.engine.kv.policy import CALIBRATED_HEADS, KVPolicy
from latent_graph.errors import InvalidArgumentError


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
    if heads is None or any(layer >= handle.num_layers or h >= handle.keys[layer].shape[1] for layer, h in heads):
        return None
    return heads


def key_norm_scores(handle: LatentHandle, heads: tuple[tuple[int, int], ...] | None = None) -> torch.Tensor:
    """Minus the L2 norm of each column's keys: (B, T). ``heads=None``: mean over kv heads and the last third
    of the layers; else the sum over the ``(layer, kv head)`` pairs of each one z-scored over the row's real columns."""
    if heads is None:
        late = handle.keys[-max(1, handle.num_layers // 3) :]
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


def pooled(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Max over ``width`` neighbouring columns: (B, T) -> (B, T)."""
    if width <= 1 or scores.shape[1] == 0:
        return scores
    return F.max_pool1d(scores[:, None], width, stride=1, padding=width // 2)[:, 0, : scores.shape[1]]


def chunked(handle: LatentHandle, scores: torch.Tensor, span: torch.Tensor, policy: KVPolicy) -> torch.Tensor:
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


def closed(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Morphological closing over ``width`` columns (max-pool, then min-pool): a gap narrower than ``width``
    between two higher-scored columns is raised to the lower of them; a lone peak is not widened. (B, T)."""
    if width <= 1 or scores.shape[1] == 0:
        return scores
    s = scores.masked_fill(scores.isinf(), -1e9)  # finite, so the min-pool never meets -inf
    pad = width // 2
    up = F.max_pool1d(s[:, None], width, stride=1, padding=pad)[:, :, : s.shape[1]]
    return -F.max_pool1d(-up, width, stride=1, padding=pad)[:, 0, : s.shape[1]]
