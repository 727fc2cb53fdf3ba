"""Shared prompt prefixes computed once (:class:`SharedPrefixes`): a byte-bounded LRU of prefilled token prefixes.

The first agent of every run sees the same system prompt and role preamble in
front of each question (per role and layout). :class:`SharedPrefixes` finds such
prefixes by itself — the longest common token prefix of the rows of a batch,
or of a row with a recent prompt — prefills each one once (batch 1) and keeps
its per-layer K/V. A later fresh prefill that starts with a stored prefix
expands those K/V to its rows and feeds only the rest of each row on top, so
the prefix costs nothing more: not per row, not per batch, not per request.

Equality: the stored K/V *are* the prefix's prefill (one forward of the prefix
tokens alone), so a hit returns bit-for-bit what recomputing that prefix gives,
and the handle after the rest equals the handle built on a miss bit for bit.
Rows are laid out as ``[prefix | left-padded rest]`` (the same positions a
handle holding the prefix would give them).

Only prefills on top of no handle use it (later agents attend to a cache the
prefix does not cover).

Off by default on a :class:`~latent_graph.engine.model.LocalLatentModel`
(``SharedPrefixes(0)``): feeding ``[prefix][rest]`` in two forwards instead of one
changes the result in the last float bits (other matmul and softmax
blocking), so a greedy near-tie could flip. ``model.prefixes = SharedPrefixes()``
turns it on; the benchmark runner and the serving worker do.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from latent_graph.engine.forward.feed import feed
from latent_graph.engine.forward.work import from_cache
from latent_graph.engine.handle import LatentHandle

DEFAULT_PREFIX_BYTES = 256 << 20
"""Default byte budget of one model's shared prefixes (the default model's K/V take ~46 KB per token)."""

MIN_PREFIX = 16
"""Shortest prefix (tokens) worth storing."""


@dataclass
class PrefixStats:
    """Counters of one cache (tokens summed over rows)."""

    prompt_tokens: int = 0  # real tokens of every fresh prefill that went through the cache
    reused_tokens: int = 0  # of those, tokens served from a stored prefix instead of being computed
    computed_prefix_tokens: int = 0  # tokens of prefixes prefilled to be stored
    hits: int = 0
    misses: int = 0

    @property
    def saved_share(self) -> float:
        """Share of the fresh-prefill tokens that were not computed (reused minus what storing them cost)."""
        net = self.reused_tokens - self.computed_prefix_tokens
        return net / self.prompt_tokens if self.prompt_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "reused_tokens": self.reused_tokens,
            "computed_prefix_tokens": self.computed_prefix_tokens,
            "hits": self.hits,
            "misses": self.misses,
            "saved_share": round(self.saved_share, 4),
        }


def enable_prefixes(model: Any, max_bytes: int = DEFAULT_PREFIX_BYTES) -> SharedPrefixes:
    """Turn ``model``'s shared prefixes on (kept if already on); returns it."""
    cache = getattr(model, "prefixes", None)
    if cache is None or cache.max_bytes <= 0:
        cache = SharedPrefixes(max_bytes)
        model.prefixes = cache
    return cache


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class SharedPrefixes:
    """Prefilled token prefixes of one model, least recently used evicted first beyond ``max_bytes``.

    Args:
        max_bytes: Byte budget of the stored K/V (0 disables the cache).
        min_prefix: Shortest prefix stored.
        recent: How many recent prompts a single-row prefill is compared with to find a prefix.
    """

    def __init__(self, max_bytes: int = DEFAULT_PREFIX_BYTES, min_prefix: int = MIN_PREFIX, recent: int = 16) -> None:
        self.max_bytes = int(max_bytes)
        self.min_prefix = int(min_prefix)
        self._entries: OrderedDict[tuple[int, ...], tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]] = (
            OrderedDict()
        )
        self._recent: deque[tuple[int, ...]] = deque(maxlen=recent)
        self.nbytes = 0
        self.stats = PrefixStats()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()
        self.nbytes = 0

    # ---------------------------------------------------------------- lookup
    def _choose(self, rows: list[list[int]]) -> tuple[tuple[int, ...] | None, int]:
        """(stored key, 0) of the longest stored prefix of every row, else (None, length of a new one or 0)."""
        limit = min(len(r) for r in rows) - 1  # every row keeps >= 1 token to feed (its last hidden state)
        best: tuple[int, ...] | None = None
        for key in self._entries:
            if len(key) <= limit and (best is None or len(key) > len(best)):
                if all(r[: len(key)] == list(key) for r in rows):
                    best = key
        common = min(_common_prefix(rows[0], r) for r in rows) if len(rows) > 1 else 0
        if len(rows) == 1 or common < self.min_prefix:
            common = max([common, *(_common_prefix(rows[0], r) for r in self._recent)])
        common = min(common, limit)
        if best is not None and len(best) >= common - self.min_prefix:
            return best, 0
        return None, common if common >= self.min_prefix else 0

    # ----------------------------------------------------------------- split
    def split(self, model: Any, rows: list[list[int]]) -> tuple[LatentHandle | None, list[list[int]], int]:
        """Split the token rows of a fresh prefill into (prefix handle, the rest of each row, prefix length).

        Without a usable prefix: ``(None, rows, 0)`` unchanged.
        """
        if self.max_bytes <= 0:
            return None, rows, 0
        self.stats.prompt_tokens += sum(len(r) for r in rows)
        key, new = self._choose(rows)
        for r in rows:
            self._recent.append(tuple(r))
        if key is None and new == 0:
            return None, rows, 0
        if key is None:
            key = tuple(rows[0][:new])
            self._store(key, *self._prefill(model, key))
            self.stats.misses += 1
            self.stats.computed_prefix_tokens += len(key)
        else:
            self._entries.move_to_end(key)
            self.stats.hits += 1
        p = len(key)
        self.stats.reused_tokens += p * len(rows)
        keys, values = self._entries[key]
        return self._handle(model, keys, values, len(rows)), [r[p:] for r in rows], p

    # --------------------------------------------------------------- storage
    def _prefill(self, model: Any, key: tuple[int, ...]) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """The prefix's K/V (1, H_kv, p, D) per layer: one forward of its tokens alone, through the engine's feed."""
        keys, values = from_cache(feed(model, None, [list(key)], agent="prefix").work.cache)
        return tuple(k.clone() for k in keys), tuple(v.clone() for v in values)

    def _store(self, key: tuple[int, ...], keys: tuple[torch.Tensor, ...], values: tuple[torch.Tensor, ...]) -> None:
        size = sum(t.numel() * t.element_size() for t in (*keys, *values))
        self._entries[key] = (keys, values)
        self.nbytes += size
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            _, (k_old, v_old) = self._entries.popitem(last=False)
            self.nbytes -= sum(t.numel() * t.element_size() for t in (*k_old, *v_old))

    @staticmethod
    def _handle(
        model: Any, keys: tuple[torch.Tensor, ...], values: tuple[torch.Tensor, ...], batch: int
    ) -> LatentHandle:
        """A segment-less handle of the prefix broadcast to ``batch`` rows (views; the engine copies them)."""
        p = keys[0].shape[2]
        dev = model.device
        return LatentHandle(
            keys=tuple(k.expand(batch, -1, -1, -1) for k in keys),
            values=tuple(v.expand(batch, -1, -1, -1) for v in values),
            attention_mask=torch.ones((batch, p), dtype=torch.long, device=dev),
            position_ids=torch.arange(p, device=dev).expand(batch, p),
            segments=(),
            latents=(),
            fingerprint=model.fingerprint,
        )
