"""A handle row's K/V <-> one llama.cpp sequence's exported state (``llama_state_seq_get_data`` / ``set_data``).

Handles of this engine hold their cache as tensors like any other handle (``(B, H_kv, T, D)`` per layer, fp16 as
llama.cpp keeps it), so memory policies, compressed edges, branch merges and persistence work on them unchanged.
A call loads each row's real columns into its sequence and reads back what it appended. The state format
(llama.cpp's unified KV cache, one stream) is::

    u32 magic | i32 seq | u32 n_stream (1) | u32 cells | cells x (i32 pos, u32 n_seq (1), i32 seq) | u32 v_trans | u32 n_layer
    | n_layer x (i32 k_type, u64 row bytes, cells x row)                            # keys, one row per cell
    | not v_trans: n_layer x (i32 v_type, u64 row bytes, cells x row)               # values, like keys
    | v_trans:     n_layer x (i32 v_type, u32 elem bytes, u32 row elems, row elems x cells)  # values transposed

Each cell row is the layer's ``n_head_kv * head_dim`` values, head-major (llama.cpp's K is RoPE-rotated with its
own pair order, so K of this engine means nothing to the transformers one: fingerprints keep them apart).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from latent_graph.errors import HandleFormatError

F16 = 1
"""ggml's type id of fp16, the only KV cache type this engine reads and writes."""
MAGIC = 0xAF143CD8
"""llama.cpp's sequence-state magic number."""


@dataclass(frozen=True)
class KVLayout:
    """How the context stores K/V: sizes, and whether V is transposed (no flash attention)."""

    n_layer: int
    n_head_kv: int
    head_dim: int
    v_trans: bool = True

    @property
    def row(self) -> int:
        return self.n_head_kv * self.head_dim


def row_state(
    keys: tuple[torch.Tensor, ...],
    values: tuple[torch.Tensor, ...],
    cols: torch.Tensor,
    positions: torch.Tensor,
    b: int,
    layout: KVLayout,
) -> np.ndarray:
    """Row ``b``'s columns ``cols`` (its real ones) as a sequence state llama.cpp can import."""
    n = int(cols.shape[0])
    parts = [struct.pack("<IiII", MAGIC, b, 1, n)]
    meta = np.zeros((n, 3), dtype=np.int32)
    meta[:, 0] = positions.to(torch.int32).numpy()
    meta[:, 1] = 1
    parts.append(meta.tobytes())
    parts.append(struct.pack("<II", int(layout.v_trans), layout.n_layer))
    row_bytes = layout.row * 2

    def cells(t: torch.Tensor) -> np.ndarray:  # (H_kv, T, D) -> (n, H_kv * D) fp16
        return t[:, cols].to(torch.float16).transpose(0, 1).reshape(n, layout.row).numpy()

    for k in keys:
        parts += [struct.pack("<iQ", F16, row_bytes), cells(k[b]).tobytes()]
    for v in values:
        if layout.v_trans:
            parts += [struct.pack("<iII", F16, 2, layout.row), np.ascontiguousarray(cells(v[b]).T).tobytes()]
        else:
            parts += [struct.pack("<iQ", F16, row_bytes), cells(v[b]).tobytes()]
    return np.frombuffer(b"".join(parts), dtype=np.uint8)


def parse_state(data: np.ndarray, layout: KVLayout) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """(positions (n,), keys per layer (n, row) fp16, values per layer (n, row) fp16) of one exported sequence."""
    buf = memoryview(np.ascontiguousarray(data, dtype=np.uint8).tobytes())
    off = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal off
        vals = struct.unpack_from(fmt, buf, off)
        off += struct.calcsize(fmt)
        return vals

    def array(count: int) -> np.ndarray:
        nonlocal off
        out = np.frombuffer(buf, dtype=np.float16, count=count, offset=off)
        off += count * 2
        return out

    try:
        magic, _, n_stream, n = take("<IiII")
        if magic != MAGIC:
            raise HandleFormatError(f"not a llama.cpp sequence state (magic {magic:#x})")
        if n_stream != 1:
            raise HandleFormatError(f"llama.cpp state with {n_stream} KV streams (the engine uses one, unified)")
        if n == 0:
            empty = np.zeros((0, layout.row), dtype=np.float16)
            return np.zeros(0, dtype=np.int64), [empty] * layout.n_layer, [empty] * layout.n_layer
        meta = np.frombuffer(buf, dtype=np.int32, count=3 * n, offset=off).reshape(n, 3)
        off += 12 * n
        if not bool((meta[:, 1] == 1).all()):
            raise HandleFormatError("llama.cpp state cells shared by several sequences")
        v_trans, n_layer = take("<II")
        if n_layer != layout.n_layer or bool(v_trans) != layout.v_trans:
            raise HandleFormatError(f"llama.cpp state of {n_layer} layers (v_trans {v_trans}), expected {layout}")
        keys: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for _ in range(n_layer):
            k_type, row_bytes = take("<iQ")
            if k_type != F16 or row_bytes != layout.row * 2:
                raise HandleFormatError(f"llama.cpp K cache of type {k_type} / {row_bytes} bytes a row (want fp16)")
            keys.append(array(n * layout.row).reshape(n, layout.row))
        for _ in range(n_layer):
            if v_trans:
                v_type, size, row = take("<iII")
                ok = v_type == F16 and size == 2 and row == layout.row
                if ok:
                    values.append(array(n * layout.row).reshape(layout.row, n).T)
            else:
                v_type, row_bytes = take("<iQ")
                ok = v_type == F16 and row_bytes == layout.row * 2
                if ok:
                    values.append(array(n * layout.row).reshape(n, layout.row))
            if not ok:
                raise HandleFormatError(f"llama.cpp V cache of type {v_type} (want fp16, {layout.row} a row)")
    except struct.error as exc:
        raise HandleFormatError(f"truncated llama.cpp sequence state ({len(buf)} bytes): {exc}") from exc
    if off != len(buf):
        raise HandleFormatError(f"llama.cpp sequence state has {len(buf) - off} unread bytes (unknown layout)")
    return meta[:, 0].astype(np.int64), keys, values


def to_heads(rows: np.ndarray, layout: KVLayout) -> torch.Tensor:
    """(n, H_kv * D) cell rows -> (H_kv, n, D), the handle's layout."""
    n = rows.shape[0]
    return torch.from_numpy(np.ascontiguousarray(rows)).view(n, layout.n_head_kv, layout.head_dim).transpose(0, 1)
