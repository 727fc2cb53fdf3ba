"""Which cache columns cross a compressed latent edge: :class:`KVPolicy`, its settings and their checks.

A compressed edge keeps only the best-scored columns of a handle (scores: :mod:`.scores`, selection:
:mod:`.selection`). Selection is per row of the batch:

- ``keep`` (``scope="chain"``, default): the ``n`` real columns the sender wrote (``[start, T)``)
  add ``ceil(keep * n)`` to the row's total, and that total is chosen by score over *every* real
  column of the row, the earlier senders' kept ones included: a sender whose columns score high
  (a fact told to it alone) takes more than ``keep`` of its own, at the price of the row's weakest
  earlier columns; one with nothing new takes less. Each edge carries as many columns per row as a
  sender-by-sender selection would, so the bytes of an edge still shrink with ``keep``.
  ``scope="sender"``: exactly ``ceil(keep * n)`` of the sender's own ``n`` columns stay and the
  columns before ``start`` are never touched. Either way at least ``min(floor, n)`` are added per
  sender (``floor=0``: off) and protected columns are counted inside (kept even if they alone exceed it);
- **protected**: the first ``sink`` real columns of the row (the attention sink), its last
  ``recent`` real columns, the first/last ``boundary`` real columns of every prompt/text
  segment (off by default), latent segments with ``latent=True`` (off by default), and with
  ``scope="sender"`` every column before ``start``;
- ``budget``: then, while a row holds more than ``budget`` real columns, drop its
  lowest-scored unprotected column; if that is not enough, protected template columns go
  too, oldest first (latent segments, the sink and the last columns stay).

Kept columns keep their positions (nothing is re-rotated) and new tokens continue after
the highest kept position. Every segment keeps its place in the segment table, left-padded
per row like any segment; ``Segment.dropped`` counts the real columns it lost (all rows).
``keep=1`` and no budget return the very same handle.
"""

from __future__ import annotations

from dataclasses import dataclass

from latent_graph.errors import InvalidArgumentError

SCORES: tuple[str, ...] = ("knorm", "attention")
SCOPES: tuple[str, ...] = ("sender", "chain")
CALIBRATED_HEADS: dict[str, tuple[tuple[int, int], ...]] = {"SmolLM2-135M-Instruct": ((15, 0), (21, 2))}
"""``(layer, kv head)`` pairs whose key norms score columns for ``"knorm"`` when ``KVPolicy.heads`` is None, by
model name (the fingerprint's, hub prefix dropped). Chosen without training by ``benchmarks/kv_recall.py`` on the
relay6 validation split (the selection and its measurement: docs/results/engine_notes.md). Any other model: the
mean over the last third of the layers."""


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
            if not pairs or any(
                len(p) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in p) for p in pairs
            ):
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
