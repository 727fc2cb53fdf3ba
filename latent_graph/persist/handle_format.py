"""Byte format for latent handles: one safetensors blob (chunks: :mod:`latent_graph.persist.chunks`).

Why: a :class:`~latent_graph.engine.handle.LatentHandle` is a KV cache plus a segment
table, and has to survive process restarts (LangGraph checkpoints) without
pickle, which executes code on load. Everything here is safetensors (raw
tensor bytes + a JSON header) and plain JSON, so loading untrusted bytes can at
worst raise :class:`~latent_graph.errors.HandleFormatError`.

Two formats:

- :func:`handle_to_bytes` / :func:`handle_from_bytes`: the whole handle as one
  safetensors blob. Exact round trip (bitwise tensors, every dtype incl. bf16);
  a sha256 over the tensor bytes *and* the header (segment table, counters,
  fingerprint) catches corruption anywhere; every tensor is then checked against
  the header (:mod:`latent_graph.persist.validate`).
- :func:`handle_to_chunks` / :func:`handle_from_chunks`: one chunk per segment
  (that segment's K/V columns for every layer, its mask/position columns and,
  for latent segments, its thought embeddings and hidden states) plus a small
  "tail" chunk (``last_hidden``), each keyed by the sha256 of its bytes, and a
  JSON manifest holding the chunk keys and everything else. The engine grows a
  cache by concatenation, so the columns of a segment are bitwise identical in
  every later handle: successive handles of a run share all their old chunks,
  and a chunk store keeps each prefix once instead of once per superstep.

This module and :mod:`~latent_graph.persist.chunks` do not import LangGraph (see
:mod:`latent_graph.persist.serializer` for the checkpointer glue).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from latent_graph.errors import HandleFormatError
from latent_graph.engine import SEGMENT_KINDS, LatentHandle, ModelFingerprint, Segment
from latent_graph.persist.validate import Parts, check_parts

__all__ = ["BLOB_VERSION", "CHUNK_FORMAT", "FORMAT", "FORMAT_VERSION", "MANIFEST_FORMAT", "chunk_key", "handle_from_bytes", "handle_to_bytes"]

FORMAT = "latent_graph.handle"
CHUNK_FORMAT = "latent_graph.handle.chunk"
MANIFEST_FORMAT = "latent_graph.handle.manifest"
FORMAT_VERSION = 1
BLOB_VERSION = 2
"""Version of the one-blob format: 2 signs header + tensors; 1 (tensors only) is still read."""
_KINDS = SEGMENT_KINDS
_META_KEY = "latent_graph"

Tensors = dict[str, torch.Tensor]


# ---------------------------------------------------------------- helpers
def chunk_key(data: bytes) -> str:
    """Content address of a chunk: the hex sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def canonical_json(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def save_bytes(tensors: Tensors, info: dict[str, Any]) -> bytes:
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
    return _st_save(ready, metadata={_META_KEY: canonical_json(info)})


def load_bytes(data: bytes, what: str) -> tuple[Tensors, dict[str, Any]]:
    """Parse safetensors bytes (tensors on CPU); return them with the ``info`` of :func:`save_bytes`."""
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
    """The ``info`` stored by :func:`save_bytes` in a safetensors header (length-prefixed JSON)."""
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


def check_format(meta: Mapping[str, Any], fmt: str, what: str, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> int:
    got = meta.get("format")
    if got != fmt:
        raise HandleFormatError(f"{what}: not a {fmt!r} payload (format field is {got!r})")
    version = meta.get("version")
    if type(version) is not int or version not in versions:
        raise HandleFormatError(
            f"{what}: unsupported {fmt} version {version!r}; this latent_graph reads versions {list(versions)}"
        )
    return version


def _signed_digest(tensors: Mapping[str, torch.Tensor], header: Any) -> str:
    """sha256 over the tensors (:func:`_digest`) and the canonical JSON header (segments...)."""
    return hashlib.sha256(f"{_digest(tensors)}|{canonical_json(header)}".encode()).hexdigest()


# ------------------------------------------------------------ the header
def handle_header(h: LatentHandle) -> dict[str, Any]:
    """Everything but the tensors, as JSON-able data."""
    return {
        "num_layers": h.num_layers,
        "segments": [[s.agent, s.kind, s.start, s.end] + ([s.dropped] if s.dropped else []) for s in h.segments],
        "fingerprint": asdict(h.fingerprint),
        "prompt_tokens": h.prompt_tokens,
        "latent_steps": h.latent_steps,
        "generated_tokens": h.generated_tokens,
        "meta": dict(h.meta),
        "n_latents": len(h.latents),
        "n_hiddens": len(h.hiddens),
        "has_last_hidden": h.last_hidden is not None,
    }


def header_int(header: Mapping[str, Any], key: str) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HandleFormatError(f"handle header field {key!r} must be an int >= 0, got {value!r}")
    return value


def _segments(raw: Any) -> tuple[Segment, ...]:
    if not isinstance(raw, list):
        raise HandleFormatError("handle header field 'segments' must be a list")
    out = []
    for item in raw:
        ok = isinstance(item, list) and len(item) in (4, 5) and isinstance(item[0], str) and item[1] in _KINDS
        ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in item[2:])
        if not ok or not 0 <= item[2] <= item[3]:
            raise HandleFormatError(f"malformed segment entry {item!r}")
        if len(item) == 5 and item[4] < 0:
            raise HandleFormatError(f"malformed segment entry {item!r}")
        out.append(Segment(*item))  # the 5th entry (columns dropped by a compressed edge) is optional
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


def assemble_handle(header: Mapping[str, Any], p: Parts, device: torch.device | str | None) -> LatentHandle:
    """Validate header + tensors and build the handle (on ``device``, CPU by default)."""
    if not isinstance(header, Mapping):
        raise HandleFormatError("handle header must be a JSON object")
    segments = _segments(header.get("segments"))
    check_parts(p, segments, header_int(header, "num_layers"))
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
        prompt_tokens=header_int(header, "prompt_tokens"),
        latent_steps=header_int(header, "latent_steps"),
        generated_tokens=header_int(header, "generated_tokens"),
        meta=_meta(header.get("meta")),
    )
    return handle if device is None else handle.to(device)


def take_tensor(tensors: Tensors, name: str, what: str) -> torch.Tensor:
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
    header = handle_header(handle)
    info = {"format": FORMAT, "version": BLOB_VERSION, "header": header, "sha256": _signed_digest(tensors, header)}
    return save_bytes(tensors, info)


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
    tensors, meta = load_bytes(data, what)
    version = check_format(meta, FORMAT, what, versions=(1, BLOB_VERSION))
    header = meta.get("header")
    if not isinstance(header, dict):
        raise HandleFormatError(f"{what}: missing header")
    # version 1 signed the tensors only; version 2 signs the header (segments, counters...) too
    expected = _digest(tensors) if version == 1 else _signed_digest(tensors, header)
    if meta.get("sha256") != expected:
        raise HandleFormatError(f"{what}: checksum mismatch (the data is corrupt)")
    n_layers = header_int(header, "num_layers")
    parts = Parts(
        keys=[take_tensor(tensors, f"k.{i}", what) for i in range(n_layers)],
        values=[take_tensor(tensors, f"v.{i}", what) for i in range(n_layers)],
        attention_mask=take_tensor(tensors, "attention_mask", what),
        position_ids=take_tensor(tensors, "position_ids", what),
        latents=[take_tensor(tensors, f"latent.{i}", what) for i in range(header_int(header, "n_latents"))],
        hiddens=[take_tensor(tensors, f"hidden.{i}", what) for i in range(header_int(header, "n_hiddens"))],
        last_hidden=take_tensor(tensors, "last_hidden", what) if header.get("has_last_hidden") else None,
    )
    return assemble_handle(header, parts, device)


def parse_json(text: Any, what: str) -> Any:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HandleFormatError(f"{what}: header is not UTF-8") from exc
    if not isinstance(text, str):
        raise HandleFormatError(f"{what}: missing JSON header")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise HandleFormatError(f"{what}: header is not valid JSON ({type(exc).__name__})") from None
