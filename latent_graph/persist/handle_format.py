"""What every stored handle shares: safetensors bytes, the handle header and its checks.

Why: a :class:`~latent_graph.engine.handle.LatentHandle` is a KV cache plus a segment
table, and has to survive process restarts (LangGraph checkpoints) without
pickle, which executes code on load. Everything here is safetensors (raw
tensor bytes + a JSON header) and plain JSON, so loading untrusted bytes can at
worst raise :class:`~latent_graph.errors.HandleFormatError`.

A handle is stored as the content-addressed chunks of :mod:`latent_graph.persist.chunks`
(one per segment, keyed by the sha256 of its bytes, plus a JSON manifest): the engine grows
a cache by concatenation, so successive handles of a run share all their old chunks. This
module gives them their byte helpers, the header (segment table, fingerprint, counters) and
:func:`assemble_handle`, which checks every tensor against the header
(:mod:`latent_graph.persist.validate`) before a handle is built. Nothing here imports LangGraph.
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

from latent_graph.engine import SEGMENT_KINDS, LatentHandle, ModelFingerprint, Segment
from latent_graph.errors import HandleFormatError
from latent_graph.persist.validate import Parts, check_parts

__all__ = ["CHUNK_FORMAT", "FORMAT_VERSION", "MANIFEST_FORMAT", "assemble_handle", "chunk_key", "handle_header"]

CHUNK_FORMAT = "latent_graph.handle.chunk"
MANIFEST_FORMAT = "latent_graph.handle.manifest"
FORMAT_VERSION = 1
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
