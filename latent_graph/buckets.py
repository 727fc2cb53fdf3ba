"""Length-bucketed batches: rows of similar prompt length batched together, and the padding they leave.

Every batch is left-padded to its longest row, so a batch mixing a 40-token and a
200-token question computes 160 padding columns for the short one in every layer
(and keeps them in the cache). Sorting rows by length before cutting batches
keeps those columns few. Used by the benchmark runner and the serving worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Token count of each text (plain tokenization, the part of a prompt that varies)."""
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def length_buckets(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices cut into batches of at most ``size`` after a stable sort by length (similar lengths together)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def arrival_batches(n: int, size: int) -> list[list[int]]:
    """Indices cut into batches of at most ``size`` in their given order (no bucketing)."""
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Padding columns / all columns when each batch is padded to its longest row."""
    total = pad = 0
    for b in batches:
        if not b:
            continue
        longest = max(lengths[i] for i in b)
        total += longest * len(b)
        pad += sum(longest - lengths[i] for i in b)
    return pad / total if total else 0.0


def split_by_waste(lengths: Sequence[int], max_share: float = 0.25, min_rows: int = 2) -> list[list[int]]:
    """One batch's rows, sorted by length, split in two (recursively) while its padding share exceeds ``max_share``.

    For a server that already coalesced a batch: rows stay together unless mixing them wastes
    more than ``max_share`` of the prefill on padding; no part gets fewer than ``min_rows`` rows.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])

    def cut(rows: list[int]) -> list[list[int]]:
        if len(rows) < 2 * min_rows or padding_share(lengths, [rows]) <= max_share:
            return [rows]
        best = min(
            range(min_rows, len(rows) - min_rows + 1), key=lambda k: padding_share(lengths, [rows[:k], rows[k:]])
        )
        return cut(rows[:best]) + cut(rows[best:])

    return cut(order) if order else []
