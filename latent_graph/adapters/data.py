"""(instruction, target) pairs from JSONL: the supervision adapters are trained on.

One JSON object per line with string fields ``instruction`` and ``target``; an
optional ``split`` ("train" / "heldout") and any extra fields (kept in
:attr:`Pair.extra`, e.g. ``fact`` / ``question`` of relay rows). Rows without a
``split`` get one from :func:`split_of`. Every problem is a
:class:`PairsFormatError` naming the file and line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from latent_graph.adapters.errors import PairsFormatError
from latent_graph.jsonl import iter_objects

SPLITS: tuple[str, ...] = ("train", "heldout")


@dataclass(frozen=True)
class Pair:
    """One supervision pair: the sender's prompt and the text the receiver should continue with."""

    instruction: str
    target: str
    split: str = "train"
    extra: dict[str, Any] = field(default_factory=dict)


def split_of(instruction: str) -> str:
    """``heldout`` when the first byte of sha256(instruction) is divisible by 5 (~20 %), else ``train``."""
    return "heldout" if hashlib.sha256(instruction.encode()).digest()[0] % 5 == 0 else "train"


def default_pairs_path() -> Path:
    """The shipped, project-generated set (see ``scripts/make_adapter_pairs.py``)."""
    return Path(str(resources.files("latent_graph") / "data" / "adapter_pairs.jsonl"))


def load_pairs(path: str | Path | None = None, split: str | None = None, limit: int | None = None) -> list[Pair]:
    """Read pairs from a JSONL file (default: the shipped set).

    Args:
        path: JSONL file; None = :func:`default_pairs_path`.
        split: Keep only "train" or "heldout" rows; None keeps all.
        limit: Keep at most this many (after split filtering, in file order).

    Raises:
        PairsFormatError: missing file, bad JSON, missing/empty fields, unknown split, no rows.
    """
    path = Path(path) if path is not None else default_pairs_path()
    if split is not None and split not in SPLITS:
        raise PairsFormatError(f"unknown split {split!r}; choose one of {SPLITS}")
    if not path.is_file():
        raise PairsFormatError(f"pairs file not found: {path}")
    pairs: list[Pair] = []
    for lineno, row in iter_objects(path, PairsFormatError):
        pair = _parse(row, path, lineno)
        if split is None or pair.split == split:
            pairs.append(pair)
    if not pairs:
        raise PairsFormatError(f"{path}: no pairs" + (f" in split {split!r}" if split else ""))
    return pairs[:limit] if limit is not None else pairs


def _parse(row: dict[str, Any], path: Path, lineno: int) -> Pair:
    where = f"{path}:{lineno}"
    for key in ("instruction", "target"):
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise PairsFormatError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    split = row.get("split") or split_of(row["instruction"])
    if split not in SPLITS:
        raise PairsFormatError(f"{where}: unknown split {split!r}; choose one of {SPLITS}")
    extra = {k: v for k, v in row.items() if k not in ("instruction", "target", "split")}
    return Pair(row["instruction"], row["target"], split, extra)
