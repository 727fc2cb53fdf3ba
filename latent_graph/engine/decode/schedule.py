"""Continuous batching, engine-agnostic: which row decodes in which slot, and when the next one enters.

A decode call of ``B`` rows runs at most ``width`` of them at once (the slots). A row leaves its slot when it
ends (its end-of-sequence token, or its token budget) and the next waiting row, in row order, takes the slot,
so the batch is never gated by its longest row while rows are waiting. The schedule keeps only the
bookkeeping (slots, waiting rows, tokens made against each row's budget); an engine moves the rows' caches
(the transformers loop: :func:`latent_graph.engine.decode.loop.generate`; a llama.cpp engine: its sequences).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence


class RowSchedule:
    """Slots of one decode call.

    Args:
        budgets: Most tokens each row may generate (a row with none ends without taking a slot).
        width: Most rows decoding at once (None: every row from the start).
    """

    def __init__(self, budgets: Sequence[int], width: int | None = None) -> None:
        self.budgets = [max(0, int(b)) for b in budgets]
        self.width = len(self.budgets) if width is None else max(1, int(width))
        self.made = [0] * len(self.budgets)
        self.waiting = deque(r for r, b in enumerate(self.budgets) if b > 0)
        self.slots: list[int] = []  # the row in each live slot, in slot order

    def start(self) -> list[int]:
        """Fill the first slots; returns their rows (slot order)."""
        while self.waiting and len(self.slots) < self.width:
            self.slots.append(self.waiting.popleft())
        return list(self.slots)

    def made_one(self, slot: int) -> bool:
        """Count a token of the row in ``slot``; True when that used up its budget (its last token)."""
        row = self.slots[slot]
        self.made[row] += 1
        return self.made[row] >= self.budgets[row]

    def free(self, slots: Sequence[int]) -> tuple[dict[int, int], list[int]]:
        """Rows in ``slots`` ended: give each slot to the next waiting row.

        Returns ``({slot: entering row}, slots left empty)``; empty slots are dropped at once, so later slot
        numbers shift down (the engine drops the same rows from its batch, in the same order).
        """
        entering: dict[int, int] = {}
        for s in sorted(slots):
            if self.waiting:
                entering[s] = self.slots[s] = self.waiting.popleft()
        empty = sorted(s for s in slots if s not in entering)
        self.slots = [r for s, r in enumerate(self.slots) if s not in empty]
        return entering, empty

    @property
    def done(self) -> bool:
        return not self.slots and not self.waiting


__all__ = ["RowSchedule"]
