"""Byte formats for latent handles: one safetensors blob, or content-addressed chunks.

Why: a :class:`~latent_graph.handle.LatentHandle` is a KV cache plus a segment
table, and has to survive process restarts (LangGraph checkpoints) without
pickle, which executes code on load. Everything here is safetensors (raw
tensor bytes + a JSON header) and plain JSON, so loading untrusted bytes can at
worst raise :class:`~latent_graph.errors.HandleFormatError`.

Two formats:

- :func:`handle_to_bytes` / :func:`handle_from_bytes`: the whole handle as one
  safetensors blob. Exact round trip (bitwise tensors, every dtype incl. bf16);
  a sha256 over the tensor bytes in the header catches corruption.
- :func:`handle_to_chunks` / :func:`handle_from_chunks`: one chunk per segment
  (that segment's K/V columns for every layer, its mask/position columns and,
  for latent segments, its thought embeddings and hidden states) plus a small
  "tail" chunk (``last_hidden``), each keyed by the sha256 of its bytes, and a
  JSON manifest holding the chunk keys and everything else. The engine grows a
  cache by concatenation, so the columns of a segment are bitwise identical in
  every later handle: successive handles of a run share all their old chunks,
  and a chunk store keeps each prefix once instead of once per superstep.

This module is the engine layer: it does not import LangGraph (see
:mod:`latent_graph.checkpoint` for the checkpointer glue).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from latent_graph.errors import HandleFormatError
from latent_graph.fingerprint import ModelFingerprint
from latent_graph.handle import LatentHandle, Segment

__all__ = [
    "CHUNK_FORMAT",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "HandleChunks",
    "chunk_key",
    "handle_from_bytes",
    "handle_from_chunks",
    "handle_to_bytes",
    "handle_from_store",
    "handle_to_chunks",
    "handle_to_store",
    "manifest_chunk_keys",
]

FORMAT = "latent_graph.handle"
CHUNK_FORMAT = "latent_graph.handle.chunk"
MANIFEST_FORMAT = "latent_graph.handle.manifest"
FORMAT_VERSION = 1
_KINDS = ("prompt", "latent", "text")
_META_KEY = "latent_graph"

Tensors = dict[str, torch.Tensor]


# ---------------------------------------------------------------- helpers
def chunk_key(data: bytes) -> str:
    """Content address of a chunk: the hex sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def _canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _save(tensors: Tensors, info: dict[str, Any]) -> bytes:
    """safetensors bytes; tensors are moved to CPU and un-aliased first.

    ``info`` goes into the header as one canonical-JSON metadata entry: safetensors
    writes several metadata entries in hash-map order, which would make equal
    chunks differ in bytes (and so in content address).

    safetensors refuses tensors that share storage (e.g. latents equal to hiddens
    under the identity realigner, or views of one buffer), so any tensor whose
    storage was already seen is cloned.
    """
    seen: set[int] = set()
    ready: Tensors = {}
    for name, t in tensors.items():
        t = _cpu(t)
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel() > 0:
            t = t.clone()
        seen.add(ptr)
        ready[name] = t
    return _st_save(ready, metadata={_META_KEY: _canonical(info)})


def _load(data: bytes, what: str) -> tuple[Tensors, dict[str, Any]]:
    """Parse safetensors bytes (tensors on CPU); return them with the ``info`` of :func:`_save`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise HandleFormatError(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        tensors = _st_load(data)
        metadata = _read_info(data)
    except HandleFormatError:
        raise
    except Exception as exc:  # safetensors raises its own error type; any failure is corruption
        raise HandleFormatError(f"{what} is corrupt or truncated ({len(data)} bytes): {exc}") from exc
    return tensors, metadata


def _read_info(data: bytes) -> dict[str, Any]:
    """The ``info`` stored by :func:`_save` in a safetensors header (length-prefixed JSON)."""
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    info = json.loads(meta.get(_META_KEY, "null")) if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        raise HandleFormatError(f"safetensors data without latent_graph metadata (keys: {sorted(meta or {})})")
    return info


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes of the tensors, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = _cpu(tensors[name])
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def _check_format(meta: Mapping[str, Any], fmt: str, what: str) -> None:
    got = meta.get("format")
    if got != fmt:
        raise HandleFormatError(f"{what}: not a {fmt!r} payload (format field is {got!r})")
    version = meta.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise HandleFormatError(
            f"{what}: unsupported {fmt} version {version!r}; this latent_graph reads version {FORMAT_VERSION}"
        )


# ------------------------------------------------------------ the header
def _header(h: LatentHandle) -> dict[str, Any]:
    """Everything but the tensors, as JSON-able data."""
    return {
        "num_layers": h.num_layers,
        "segments": [[s.agent, s.kind, s.start, s.end] for s in h.segments],
        "fingerprint": asdict(h.fingerprint),
        "prompt_tokens": h.prompt_tokens,
        "latent_steps": h.latent_steps,
        "generated_tokens": h.generated_tokens,
        "meta": dict(h.meta),
        "n_latents": len(h.latents),
        "n_hiddens": len(h.hiddens),
        "has_last_hidden": h.last_hidden is not None,
    }


def _int(header: Mapping[str, Any], key: str) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HandleFormatError(f"handle header field {key!r} must be an int >= 0, got {value!r}")
    return value


def _segments(raw: Any) -> tuple[Segment, ...]:
    if not isinstance(raw, list):
        raise HandleFormatError("handle header field 'segments' must be a list")
    out = []
    for item in raw:
        ok = isinstance(item, list) and len(item) == 4 and isinstance(item[0], str) and item[1] in _KINDS
        ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in item[2:])
        if not ok or not 0 <= item[2] <= item[3]:
            raise HandleFormatError(f"malformed segment entry {item!r}")
        out.append(Segment(item[0], item[1], item[2], item[3]))
    return tuple(out)


def _fingerprint(raw: Any) -> ModelFingerprint:
    try:
        return ModelFingerprint(**raw)
    except Exception as exc:
        raise HandleFormatError(f"malformed model fingerprint in handle header: {exc}") from exc


def _meta(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise HandleFormatError("handle header field 'meta' must map str to str")
    return dict(raw)


@dataclass
class _Parts:
    """Tensors of a handle before validation."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    latents: list[torch.Tensor]
    hiddens: list[torch.Tensor]
    last_hidden: torch.Tensor | None


def _check_shapes(p: _Parts, segments: tuple[Segment, ...], n_layers: int) -> None:
    mask, pos = p.attention_mask, p.position_ids
    if mask.dim() != 2 or pos.shape != mask.shape:
        raise HandleFormatError(f"attention_mask {tuple(mask.shape)} / position_ids {tuple(pos.shape)} must be equal (B, T)")
    b, t = mask.shape
    if len(p.keys) != n_layers or len(p.values) != n_layers:
        raise HandleFormatError(f"expected {n_layers} layers of keys/values, got {len(p.keys)}/{len(p.values)}")
    for x in (*p.keys, *p.values):
        if x.dim() != 4 or x.shape[0] != b:
            raise HandleFormatError(f"K/V tensor of shape {tuple(x.shape)} does not fit (B={b}, H, T, D)")
    for s in segments:
        if s.end > t:
            raise HandleFormatError(f"segment {s} runs past the {t} cache columns")
    for x in (*p.latents, *p.hiddens):
        if x.dim() != 3 or x.shape[0] != b:
            raise HandleFormatError(f"latent tensor of shape {tuple(x.shape)} does not fit (B={b}, n, H)")
    if p.last_hidden is not None and (p.last_hidden.dim() != 2 or p.last_hidden.shape[0] != b):
        raise HandleFormatError(f"last_hidden of shape {tuple(p.last_hidden.shape)} does not fit (B={b}, H)")


def _assemble(header: Mapping[str, Any], p: _Parts, device: torch.device | str | None) -> LatentHandle:
    """Validate header + tensors and build the handle (on ``device``, CPU by default)."""
    if not isinstance(header, Mapping):
        raise HandleFormatError("handle header must be a JSON object")
    segments = _segments(header.get("segments"))
    _check_shapes(p, segments, _int(header, "num_layers"))
    handle = LatentHandle(
        keys=tuple(p.keys),
        values=tuple(p.values),
        attention_mask=p.attention_mask,
        position_ids=p.position_ids,
        segments=segments,
        latents=tuple(p.latents),
        fingerprint=_fingerprint(header.get("fingerprint")),
        hiddens=tuple(p.hiddens),
        last_hidden=p.last_hidden,
        prompt_tokens=_int(header, "prompt_tokens"),
        latent_steps=_int(header, "latent_steps"),
        generated_tokens=_int(header, "generated_tokens"),
        meta=_meta(header.get("meta")),
    )
    return handle if device is None else handle.to(device)


def _take(tensors: Tensors, name: str, what: str) -> torch.Tensor:
    try:
        return tensors[name]
    except KeyError:
        raise HandleFormatError(f"{what} lacks tensor {name!r}") from None


# ------------------------------------------------------- one-blob format
def handle_to_bytes(handle: LatentHandle) -> bytes:
    """Serialize a whole handle to safetensors bytes (no pickle).

    Args:
        handle: Any handle, on any device and dtype.

    Returns:
        Self-describing bytes: tensors ``k.{l}``, ``v.{l}``, ``attention_mask``,
        ``position_ids``, ``latent.{i}``, ``hidden.{i}``, ``last_hidden``; the
        header metadata carries the format version, the segment table, the
        fingerprint, the counters, ``meta`` and a sha256 of the tensor bytes.
    """
    tensors: Tensors = {"attention_mask": handle.attention_mask, "position_ids": handle.position_ids}
    for i, (k, v) in enumerate(zip(handle.keys, handle.values)):
        tensors[f"k.{i}"], tensors[f"v.{i}"] = k, v
    tensors.update({f"latent.{i}": x for i, x in enumerate(handle.latents)})
    tensors.update({f"hidden.{i}": x for i, x in enumerate(handle.hiddens)})
    if handle.last_hidden is not None:
        tensors["last_hidden"] = handle.last_hidden
    info = {"format": FORMAT, "version": FORMAT_VERSION, "header": _header(handle), "sha256": _digest(tensors)}
    return _save(tensors, info)


def handle_from_bytes(data: bytes, device: torch.device | str | None = None) -> LatentHandle:
    """Inverse of :func:`handle_to_bytes`.

    Args:
        data: Bytes written by :func:`handle_to_bytes`.
        device: Where to put the tensors; CPU when None.

    Raises:
        HandleFormatError: The bytes are corrupt, truncated, of another format or
            of an unknown version.
    """
    what = "serialized latent handle"
    tensors, meta = _load(data, what)
    _check_format(meta, FORMAT, what)
    if meta.get("sha256") != _digest(tensors):
        raise HandleFormatError(f"{what}: tensor checksum mismatch (the data is corrupt)")
    header = meta.get("header")
    if not isinstance(header, dict):
        raise HandleFormatError(f"{what}: missing header")
    n_layers = _int(header, "num_layers")
    parts = _Parts(
        keys=[_take(tensors, f"k.{i}", what) for i in range(n_layers)],
        values=[_take(tensors, f"v.{i}", what) for i in range(n_layers)],
        attention_mask=_take(tensors, "attention_mask", what),
        position_ids=_take(tensors, "position_ids", what),
        latents=[_take(tensors, f"latent.{i}", what) for i in range(_int(header, "n_latents"))],
        hiddens=[_take(tensors, f"hidden.{i}", what) for i in range(_int(header, "n_hiddens"))],
        last_hidden=_take(tensors, "last_hidden", what) if header.get("has_last_hidden") else None,
    )
    return _assemble(header, parts, device)


def _json(text: Any, what: str) -> Any:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HandleFormatError(f"{what}: header is not UTF-8") from exc
    if not isinstance(text, str):
        raise HandleFormatError(f"{what}: missing JSON header")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HandleFormatError(f"{what}: header is not valid JSON ({exc})") from exc


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
    return _save(tensors, {"format": CHUNK_FORMAT, "version": FORMAT_VERSION})


def _tail_chunk(h: LatentHandle, attach: bool) -> bytes | None:
    tensors: Tensors = {}
    if h.last_hidden is not None:
        tensors["last_hidden"] = h.last_hidden
    if not attach:
        tensors.update({f"latent.{i}": x for i, x in enumerate(h.latents)})
        tensors.update({f"hidden.{i}": x for i, x in enumerate(h.hiddens)})
    if not tensors:
        return None
    return _save(tensors, {"format": CHUNK_FORMAT, "version": FORMAT_VERSION})


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


def handle_to_chunks(handle: LatentHandle) -> HandleChunks:
    """Split a handle into per-segment content-addressed chunks plus a manifest.

    Args:
        handle: Any handle.

    Returns:
        A :class:`HandleChunks`. Chunks of columns shared with an earlier handle
        of the same run have the same keys as that handle's chunks.
    """
    spans, attach = _spans(handle)
    chunks: dict[str, bytes] = {}
    columns = []
    for (start, end), latent in zip(spans, _latent_indices(handle, len(spans))):
        data = _column_chunk(handle, start, end, latent, attach)
        key = chunk_key(data)
        chunks[key] = data
        columns.append([key, start, end])
    tail = _tail_chunk(handle, attach)
    tail_key = None if tail is None else chunk_key(tail)
    if tail is not None:
        chunks[tail_key] = tail  # type: ignore[index]
    body = {"columns": columns, "tail": tail_key, "latents_in_columns": attach, "header": _header(handle)}
    return HandleChunks(_seal(body), chunks)


def _body_sha(body: Any) -> str:
    return hashlib.sha256(_canonical(body).encode()).hexdigest()[:32]


def _seal(body: dict[str, Any]) -> str:
    """Manifest JSON: format, version, the body and a checksum of its canonical form."""
    return _canonical({"format": MANIFEST_FORMAT, "version": FORMAT_VERSION, "sha256": _body_sha(body), "body": body})


def _unseal(manifest: str | bytes) -> dict[str, Any]:
    what = "latent handle manifest"
    outer = _json(manifest, what)
    if not isinstance(outer, dict):
        raise HandleFormatError(f"{what} must be a JSON object")
    _check_format(outer, MANIFEST_FORMAT, what)
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


def _verified(key: str, get_chunk: Callable[[str], bytes | None]) -> bytes:
    """The bytes stored under ``key``, checked against it (its sha256)."""
    if not isinstance(key, str):
        raise HandleFormatError(f"latent handle chunk key must be a string, got {type(key).__name__}")
    try:
        data = get_chunk(key)
    except KeyError:
        data = None
    if data is None:
        raise HandleFormatError(f"latent handle chunk {key[:16]}... is missing from the chunk store")
    data = bytes(data)
    if chunk_key(data) != key:
        raise HandleFormatError(f"latent handle chunk {key[:16]}... is corrupt (its sha256 does not match its key)")
    return data


def _fetch(key: str, get_chunk: Callable[[str], bytes | None]) -> Tensors:
    """Load one tensor chunk and verify it is the bytes its key names."""
    data = _verified(key, get_chunk)
    tensors, meta = _load(data, f"latent handle chunk {key[:16]}...")
    _check_format(meta, CHUNK_FORMAT, f"latent handle chunk {key[:16]}...")
    return tensors


def _cat(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


def handle_from_chunks(
    manifest: str | bytes,
    get_chunk: Callable[[str], bytes | None],
    device: torch.device | str | None = None,
) -> LatentHandle:
    """Reassemble a handle from its manifest and a chunk getter.

    Args:
        manifest: The ``manifest`` of a :class:`HandleChunks`.
        get_chunk: Returns a chunk's bytes by key (None or KeyError if absent).
        device: Where to put the tensors; CPU when None.

    Raises:
        HandleFormatError: Manifest corrupt or of an unknown version, a chunk
            missing or corrupt, or the pieces do not fit together.
    """
    body = _unseal(manifest)
    header = body.get("header")
    if not isinstance(header, dict):
        raise HandleFormatError("latent handle manifest: missing header")
    n_layers = _int(header, "num_layers")
    cols = [_col(c) for c in body["columns"]]
    if not cols:
        raise HandleFormatError("latent handle manifest lists no column chunks")
    loaded = [_fetch(key, get_chunk) for key, _, _ in cols]
    what = "latent handle chunk"
    parts = _Parts(
        keys=[_cat([_take(c, f"k.{i}", what) for c in loaded], 2) for i in range(n_layers)],
        values=[_cat([_take(c, f"v.{i}", what) for c in loaded], 2) for i in range(n_layers)],
        attention_mask=_cat([_take(c, "attention_mask", what) for c in loaded], 1),
        position_ids=_cat([_take(c, "position_ids", what) for c in loaded], 1),
        latents=[],
        hiddens=[],
        last_hidden=None,
    )
    tail = _fetch(str(body["tail"]), get_chunk) if body.get("tail") is not None else {}
    _fill_latents(parts, header, loaded, tail, bool(body.get("latents_in_columns")))
    if header.get("has_last_hidden"):
        parts.last_hidden = _take(tail, "last_hidden", "latent handle tail chunk")
    _check_columns(cols, parts)
    return _assemble(header, parts, device)


def _fill_latents(parts: _Parts, header: Mapping[str, Any], loaded: list[Tensors], tail: Tensors, in_cols: bool) -> None:
    n_lat, n_hid = _int(header, "n_latents"), _int(header, "n_hiddens")
    if in_cols:
        parts.latents = [c["latent"] for c in loaded if "latent" in c]
        parts.hiddens = [c["hidden"] for c in loaded if "hidden" in c]
    else:
        parts.latents = [_take(tail, f"latent.{i}", "latent handle tail chunk") for i in range(n_lat)]
        parts.hiddens = [_take(tail, f"hidden.{i}", "latent handle tail chunk") for i in range(n_hid)]
    if len(parts.latents) != n_lat or len(parts.hiddens) != n_hid:
        raise HandleFormatError(
            f"latent handle chunks hold {len(parts.latents)} latents / {len(parts.hiddens)} hiddens, "
            f"manifest says {n_lat} / {n_hid}"
        )


def _check_columns(cols: list[tuple[str, int, int]], parts: _Parts) -> None:
    """Chunk spans must tile the reassembled columns exactly."""
    pos = 0
    for _, start, end in cols:
        if start != pos or end < start:
            raise HandleFormatError(f"latent handle manifest column spans do not tile: {cols}")
        pos = end
    if pos != parts.attention_mask.shape[-1]:
        raise HandleFormatError(f"latent handle chunks hold {parts.attention_mask.shape[-1]} columns, manifest says {pos}")


# ------------------------------------------------------ chunk-store level
def handle_to_store(
    handle: LatentHandle,
    put_chunk: Callable[[str, bytes], None],
    has_chunk: Callable[[str], bool] | None = None,
) -> str:
    """Store a handle as chunks, its manifest included; return the manifest's key.

    The manifest is itself a content-addressed chunk, so a handle referenced
    many times (every superstep, every pending write) costs one 64-character
    key per reference, and its manifest is stored once.

    Args:
        handle: Any handle.
        put_chunk: Stores ``bytes`` under a key.
        has_chunk: Optional membership test; chunks already present are not put again.

    Returns:
        The key to pass to :func:`handle_from_store`.
    """
    split = handle_to_chunks(handle)
    manifest = split.manifest.encode("utf-8")
    items = [*split.chunks.items(), (chunk_key(manifest), manifest)]
    for key, data in items:
        if has_chunk is None or not has_chunk(key):
            put_chunk(key, data)
    return items[-1][0]


def handle_from_store(
    key: str,
    get_chunk: Callable[[str], bytes | None],
    device: torch.device | str | None = None,
) -> LatentHandle:
    """Inverse of :func:`handle_to_store`.

    Raises:
        HandleFormatError: A chunk (or the manifest) is missing or corrupt, or of
            an unknown version.
    """
    return handle_from_chunks(_verified(key, get_chunk), get_chunk, device=device)
