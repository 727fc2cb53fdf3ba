"""Content-addressed chunk format for latent handles: one chunk per segment, a small manifest.

Why: the engine grows a cache by concatenation, so the columns of a segment are
bitwise identical in every later handle. Storing each segment once as a chunk
keyed by the sha256 of its bytes keeps a growing run's checkpoints about the
size of its final handle (see :mod:`latent_graph.persist.handle_format` for the
shared header and validation rules). The manifest is itself a blob, keyed by its sha256:
the digest a :class:`~latent_graph.persist.refs.HandleRef` names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from latent_graph.engine import LatentHandle
from latent_graph.errors import HandleFormatError
from latent_graph.persist.handle_format import (
    CHUNK_FORMAT,
    FORMAT_VERSION,
    MANIFEST_FORMAT,
    Tensors,
    assemble_handle,
    canonical_json,
    check_format,
    chunk_key,
    handle_header,
    header_int,
    load_bytes,
    parse_json,
    save_bytes,
    take_tensor,
)
from latent_graph.persist.validate import Parts

__all__ = [
    "HandleChunks",
    "handle_from_chunks",
    "handle_to_chunks",
    "manifest_chunk_keys",
]


# --------------------------------------------------------- chunk format
@dataclass(frozen=True)
class HandleChunks:
    """A handle split into content-addressed chunks.

    Attributes:
        manifest: JSON text: format, version, chunk keys in column order, the
            tail chunk key, and the handle header (segments, fingerprint...).
            Small; store it wherever the handle reference lives.
        chunks: ``sha256 hex -> safetensors bytes``, in manifest order.
    """

    manifest: str
    chunks: dict[str, bytes]


def _spans(h: LatentHandle) -> tuple[list[tuple[int, int]], bool]:
    """Column spans to chunk by, and whether latents ride along with their segments.

    Segments normally tile ``[0, T)`` in order; then each segment is a chunk and
    the i-th latent segment's chunk holds ``latents[i]``/``hiddens[i]``. Anything
    else (gaps, overlaps, latent counts that do not match) falls back to a
    single column chunk with latents in the tail: still exact, just not shared.
    """
    segs, t = h.segments, h.seq_len
    tiles = bool(segs) and segs[0].start == 0 and segs[-1].end == t
    tiles = tiles and all(x.shape[2] == t for x in (*h.keys, *h.values))  # e.g. sliding-window layers
    tiles = tiles and all(a.end == b.start for a, b in zip(segs, segs[1:]))
    if not tiles:
        return [(0, t)], False
    n_lat = sum(s.kind == "latent" for s in segs)
    attach = len(h.latents) == n_lat and len(h.hiddens) in (0, n_lat)
    return [(s.start, s.end) for s in segs], attach


def _column_chunk(h: LatentHandle, start: int, end: int, latent: int | None, attach: bool) -> bytes:
    tensors: Tensors = {
        "attention_mask": h.attention_mask[:, start:end],
        "position_ids": h.position_ids[:, start:end],
    }
    for i, (k, v) in enumerate(zip(h.keys, h.values)):
        tensors[f"k.{i}"], tensors[f"v.{i}"] = k[:, :, start:end], v[:, :, start:end]
    if attach and latent is not None:
        tensors["latent"] = h.latents[latent]
        if h.hiddens:
            tensors["hidden"] = h.hiddens[latent]
    return save_bytes(tensors, {"format": CHUNK_FORMAT, "version": FORMAT_VERSION})


def _tail_chunk(h: LatentHandle, attach: bool) -> bytes | None:
    tensors: Tensors = {}
    if h.last_hidden is not None:
        tensors["last_hidden"] = h.last_hidden
    if not attach:
        tensors.update({f"latent.{i}": x for i, x in enumerate(h.latents)})
        tensors.update({f"hidden.{i}": x for i, x in enumerate(h.hiddens)})
    if not tensors:
        return None
    return save_bytes(tensors, {"format": CHUNK_FORMAT, "version": FORMAT_VERSION})


def _latent_indices(h: LatentHandle, n_spans: int) -> list[int | None]:
    """For each span: the index of its latent segment in ``h.latents``, else None.

    Only meaningful when spans are the segments (see :func:`_spans`).
    """
    if n_spans != len(h.segments):
        return [None] * n_spans
    out: list[int | None] = []
    j = 0
    for s in h.segments:
        out.append(j if s.kind == "latent" else None)
        j += s.kind == "latent"
    return out


def handle_to_chunks(handle: LatentHandle, address: Callable[[bytes], str] = chunk_key) -> HandleChunks:
    """Split a handle into per-segment content-addressed chunks plus a manifest.

    Args:
        handle: Any handle.
        address: A chunk's key from its bytes: sha256 (:func:`chunk_key`), or a namespace's keyed address
            (:meth:`~latent_graph.persist.sealing.Sealer.address`, what a :class:`HandleStore` uses).

    Returns:
        A :class:`HandleChunks`. Chunks of columns shared with an earlier handle
        of the same run have the same keys as that handle's chunks.
    """
    spans, attach = _spans(handle)
    chunks: dict[str, bytes] = {}
    columns = []
    for (start, end), latent in zip(spans, _latent_indices(handle, len(spans))):
        data = _column_chunk(handle, start, end, latent, attach)
        key = address(data)
        chunks[key] = data
        columns.append([key, start, end])
    tail = _tail_chunk(handle, attach)
    tail_key = None if tail is None else address(tail)
    if tail is not None:
        chunks[tail_key] = tail  # type: ignore[index]
    body = {"columns": columns, "tail": tail_key, "latents_in_columns": attach, "header": handle_header(handle)}
    return HandleChunks(_seal(body), chunks)


def _body_sha(body: Any) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32]


def _seal(body: dict[str, Any]) -> str:
    """Manifest JSON: format, version, the body and a checksum of its canonical form."""
    return canonical_json(
        {"format": MANIFEST_FORMAT, "version": FORMAT_VERSION, "sha256": _body_sha(body), "body": body}
    )


def _unseal(manifest: str | bytes) -> dict[str, Any]:
    what = "latent handle manifest"
    outer = parse_json(manifest, what)
    if not isinstance(outer, dict):
        raise HandleFormatError(f"{what} must be a JSON object")
    check_format(outer, MANIFEST_FORMAT, what)
    body = outer.get("body")
    if _body_sha(body) != outer.get("sha256"):
        raise HandleFormatError(f"{what}: checksum mismatch (the manifest is corrupt)")
    if not isinstance(body, dict) or not isinstance(body.get("columns"), list):
        raise HandleFormatError(f"{what}: malformed body")
    return body


def manifest_chunk_keys(manifest: str | bytes) -> list[str]:
    """Keys of every chunk a manifest refers to (columns in order, then the tail)."""
    body = _unseal(manifest)
    keys = [_col(c)[0] for c in body["columns"]]
    if body.get("tail") is not None:
        keys.append(str(body["tail"]))
    return keys


def _col(entry: Any) -> tuple[str, int, int]:
    ok = isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
    if not ok or not all(isinstance(x, int) and not isinstance(x, bool) for x in entry[1:]):
        raise HandleFormatError(f"malformed manifest column entry {entry!r}")
    return entry[0], entry[1], entry[2]


def _verified(key: str, get_chunk: Callable[[str], bytes | None], address: Callable[[bytes], str]) -> bytes:
    """The bytes stored under ``key``, checked against it (their address)."""
    if not isinstance(key, str):
        raise HandleFormatError(f"latent handle chunk key must be a string, got {type(key).__name__}")
    try:
        data = get_chunk(key)
    except KeyError:
        data = None
    if data is None:
        raise HandleFormatError(f"latent handle chunk {key[:16]}... is missing from its blob store")
    data = bytes(data)
    if address(data) != key:
        raise HandleFormatError(f"latent handle chunk {key[:16]}... is corrupt (its address does not match its key)")
    return data


def _fetch(key: str, get_chunk: Callable[[str], bytes | None], address: Callable[[bytes], str]) -> Tensors:
    """Load one tensor chunk and verify it is the bytes its key names."""
    data = _verified(key, get_chunk, address)
    tensors, meta = load_bytes(data, f"latent handle chunk {key[:16]}...")
    check_format(meta, CHUNK_FORMAT, f"latent handle chunk {key[:16]}...")
    return tensors


def _cat(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


def handle_from_chunks(
    manifest: str | bytes,
    get_chunk: Callable[[str], bytes | None],
    device: torch.device | str | None = None,
    address: Callable[[bytes], str] = chunk_key,
) -> LatentHandle:
    """Reassemble a handle from its manifest and a chunk getter.

    Args:
        manifest: The ``manifest`` of a :class:`HandleChunks`.
        get_chunk: Returns a chunk's bytes by key (None or KeyError if absent).
        device: Where to put the tensors; CPU when None.
        address: How the chunks were addressed (:func:`handle_to_chunks`); every chunk is checked against it.

    Raises:
        HandleFormatError: Manifest corrupt or of an unknown version, a chunk
            missing or corrupt, or the pieces do not fit together.
    """
    body = _unseal(manifest)
    header = body.get("header")
    if not isinstance(header, dict):
        raise HandleFormatError("latent handle manifest: missing header")
    n_layers = header_int(header, "num_layers")
    cols = [_col(c) for c in body["columns"]]
    if not cols:
        raise HandleFormatError("latent handle manifest lists no column chunks")
    loaded = [_fetch(key, get_chunk, address) for key, _, _ in cols]
    what = "latent handle chunk"
    parts = Parts(
        keys=[_cat([take_tensor(c, f"k.{i}", what) for c in loaded], 2) for i in range(n_layers)],
        values=[_cat([take_tensor(c, f"v.{i}", what) for c in loaded], 2) for i in range(n_layers)],
        attention_mask=_cat([take_tensor(c, "attention_mask", what) for c in loaded], 1),
        position_ids=_cat([take_tensor(c, "position_ids", what) for c in loaded], 1),
        latents=[],
        hiddens=[],
        last_hidden=None,
    )
    tail = _fetch(str(body["tail"]), get_chunk, address) if body.get("tail") is not None else {}
    _fill_latents(parts, header, loaded, tail, bool(body.get("latents_in_columns")))
    if header.get("has_last_hidden"):
        parts.last_hidden = take_tensor(tail, "last_hidden", "latent handle tail chunk")
    _check_columns(cols, parts)
    return assemble_handle(header, parts, device)


def _fill_latents(parts: Parts, header: Mapping[str, Any], loaded: list[Tensors], tail: Tensors, in_cols: bool) -> None:
    n_lat, n_hid = header_int(header, "n_latents"), header_int(header, "n_hiddens")
    if in_cols:
        parts.latents = [c["latent"] for c in loaded if "latent" in c]
        parts.hiddens = [c["hidden"] for c in loaded if "hidden" in c]
    else:
        parts.latents = [take_tensor(tail, f"latent.{i}", "latent handle tail chunk") for i in range(n_lat)]
        parts.hiddens = [take_tensor(tail, f"hidden.{i}", "latent handle tail chunk") for i in range(n_hid)]
    if len(parts.latents) != n_lat or len(parts.hiddens) != n_hid:
        raise HandleFormatError(
            f"latent handle chunks hold {len(parts.latents)} latents / {len(parts.hiddens)} hiddens, "
            f"manifest says {n_lat} / {n_hid}"
        )


def _check_columns(cols: list[tuple[str, int, int]], parts: Parts) -> None:
    """Chunk spans must tile the reassembled columns exactly."""
    pos = 0
    for _, start, end in cols:
        if start != pos or end < start:
            raise HandleFormatError(f"latent handle manifest column spans do not tile: {cols}")
        pos = end
    if pos != parts.attention_mask.shape[-1]:
        raise HandleFormatError(
            f"latent handle chunks hold {parts.attention_mask.shape[-1]} columns, manifest says {pos}"
        )
