"""What batching did in a benchmark run: padding of batches cut in order vs by length, prefix-cache savings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latent_graph.bench.tasks import Example
from latent_graph.buckets import arrival_batches, length_buckets, padding_share, token_lengths


def prefix_delta(
    start: dict[str, Any] | None, prefixes: Any, records: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """What the model's shared-prefix cache did during this run (counters now minus at the start).

    ``saved_share``: of the first agents' (fresh) prefill tokens; ``saved_share_all``: of every
    prompt token the run's records count (all agents; warm-up excluded).
    """
    if start is None:
        return None
    now = prefixes.stats.as_dict()
    d = {k: now[k] - start[k] for k in ("prompt_tokens", "reused_tokens", "computed_prefix_tokens", "hits", "misses")}
    saved = d["reused_tokens"] - d["computed_prefix_tokens"]
    every = sum(float(r.get("prompt_tokens") or 0) for r in records)
    d["saved_share"] = round(saved / d["prompt_tokens"], 4) if d["prompt_tokens"] else 0.0
    d["saved_share_all"] = round(min(1.0, saved / every), 4) if every else 0.0
    return d


def padding_report(model: Any, examples: Sequence[Example], batch_size: int) -> dict[str, Any]:
    """Question-token lengths and the padding share of batches cut in order vs bucketed by length."""
    qs = [e.question for e in examples]
    tok = getattr(model, "tokenizer", None)
    lengths = token_lengths(tok, qs) if tok is not None else [len(q) for q in qs]
    return {
        "lengths": lengths,
        "padding_share_arrival": round(padding_share(lengths, arrival_batches(len(qs), batch_size)), 4),
        "padding_share_bucketed": round(padding_share(lengths, length_buckets(lengths, batch_size)), 4),
    }


def cut_batches(
    items: Sequence[tuple[int, Example]], size: int, lengths: Sequence[int] | None
) -> list[tuple[tuple[int, Example], ...]]:
    """Batches of ``size``: cut after sorting by question length (``lengths``), or in order (None)."""
    cuts = (
        arrival_batches(len(items), size) if lengths is None else length_buckets([lengths[i] for i, _ in items], size)
    )
    return [tuple(items[j] for j in cut) for cut in cuts]
