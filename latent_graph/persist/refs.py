"""Handle references: the small JSON-native value graph state holds instead of a LatentHandle.

Why: LangGraph's savers (``InMemorySaver``, ``SqliteSaver``, ``PostgresSaver``...), its
functional API, its server and Studio all store state with the stock serializer,
which knows plain data, not tensors. A :class:`HandleRef` is a ``TypedDict`` of
str/int/list fields only (content digest, chunk keys, shapes, fingerprint, segment
table, a one-line summary), so any saver stores it, in strict msgpack mode too, and
the server shows it as JSON.

This module is the reference format (:func:`reference`; :func:`checked`, the one check of a value's form
that both stores run before resolving it; :func:`check_ref`, a blob reference's keys and shapes), what both
handle stores share (:class:`HotHandles`, :func:`placed`) and the store of one-shot runs,
:class:`LiveHandleStore`, which keeps the handle objects themselves. The store whose
references outlive a process, :class:`~latent_graph.persist.handle_store.HandleStore`,
writes the tensors once to a :class:`~latent_graph.persist.blobs.BlobStore` as the
content-addressed safetensors chunks of :mod:`latent_graph.persist.chunks`.
"""

from __future__ import annotations

import re
import threading
import uuid
import weakref
from collections import OrderedDict
from typing import Any, cast

import torch
from typing_extensions import NotRequired, TypedDict

from latent_graph.engine import LatentHandle
from latent_graph.errors import BlobMissingError, HandleRefError, ModelMismatchError
from latent_graph.persist.blobs import check_key

__all__ = [
    "REF_VERSION",
    "HandleRef",
    "HotHandles",
    "LiveHandleStore",
    "check_ref",
    "checked",
    "is_ref",
    "placed",
    "ref_keys",
    "reference",
]

REF_VERSION = 1
"""Value of a reference's ``latent_graph_ref`` field (its format version; the field marks a dict as a reference)."""
_LIVE = re.compile(r"^[0-9a-f]{32}$")


class HandleRef(TypedDict):
    """A latent handle by reference: plain JSON, resolved by the handle store that wrote it."""

    latent_graph_ref: int
    """Reference format version (:data:`REF_VERSION`)."""
    digest: str
    """Keyed content address of the handle's manifest blob: the address of the whole handle ("" in a ``live`` reference,
    which names no blob)."""
    chunks: list[str]
    """Blob keys of the segment chunks (and tail) the manifest names, in order (empty in a ``live`` reference)."""
    model: str
    """Name of the model that built the handle."""
    fingerprint: str
    """That model's fingerprint digest."""
    batch: int
    """Rows (questions)."""
    columns: int
    """Cache columns T (padding included)."""
    layers: int
    """Cache layers."""
    kv_heads: int
    """KV heads per layer."""
    head_dim: int
    """Size of one head."""
    dtype: str
    """Cache dtype, e.g. "float32"."""
    nbytes: int
    """Bytes of the handle's tensors."""
    segments: list[list[Any]]
    """``[agent, kind, start, end]`` per segment."""
    summary: str
    """One readable line."""
    live: NotRequired[str]
    """Only in a reference of a :class:`LiveHandleStore`: the id of the handle object it holds in memory
    (32 hex chars, not a content address); such a reference resolves only in that store, while it holds it."""
    writer: NotRequired[str]
    """In ``branches``: the LangGraph task that wrote it (two tasks writing one key collide even with equal content)."""
    namespace: NotRequired[str]
    """In a blob reference: the namespace it and its blobs belong to (:func:`~latent_graph.persist.sealing.namespace_of`)."""
    kid: NotRequired[str]
    """In a blob reference: the id of the deployment key that signed it (:mod:`latent_graph.persist.keys`)."""
    sig: NotRequired[str]
    """In a blob reference: HMAC-SHA256 over every other field but ``writer`` (:mod:`latent_graph.persist.sealing`)."""


def is_ref(value: Any) -> bool:
    """Whether ``value`` is a handle reference (a dict with a ``latent_graph_ref`` field)."""
    return isinstance(value, dict) and "latent_graph_ref" in value


def ref_keys(ref: Any) -> list[str]:
    """Blob keys a reference keeps alive: its manifest, then its chunks (for garbage collection; none if live)."""
    if not is_ref(ref):
        return []
    return [str(k) for k in [ref.get("digest"), *(ref.get("chunks") or [])] if k]


_FIELDS: dict[str, type] = {
    "digest": str,
    "chunks": list,
    "model": str,
    "fingerprint": str,
    "batch": int,
    "columns": int,
    "layers": int,
    "kv_heads": int,
    "head_dim": int,
    "dtype": str,
    "nbytes": int,
    "segments": list,
    "summary": str,
}
_OPTIONAL: dict[str, type] = {"live": str, "writer": str, "namespace": str, "kid": str, "sig": str}
_EXPECTED = (
    "a handle reference is the dict a handle store wrote (latent_graph_ref, "
    + ", ".join(_FIELDS)
    + "), passed back unchanged, or a LatentHandle"
)


def checked(ref: Any) -> HandleRef:
    """``ref`` if it is a well-formed handle reference (every field present, of its type); the one check every
    handle store runs on a value before resolving it.

    Raises:
        HandleRefError: Not a reference (a dict without ``latent_graph_ref``, a string, a number, a list...),
            another format version, a field missing or of the wrong type.
    """
    if not is_ref(ref):
        got = f"a dict with keys {sorted(map(str, ref))[:8]}" if isinstance(ref, dict) else type(ref).__name__
        raise HandleRefError(f"expected a handle reference, got {got} {str(ref)[:60]!r}; {_EXPECTED}")
    if type(ref["latent_graph_ref"]) is not int or ref["latent_graph_ref"] != REF_VERSION:  # not True, not 1.0
        raise HandleRefError(
            f"handle reference version {repr(ref['latent_graph_ref'])[:40]}; this latent_graph reads version "
            f"{REF_VERSION}"
        )
    for field, kind in [*_FIELDS.items(), *((f, k) for f, k in _OPTIONAL.items() if f in ref)]:
        if field not in ref:
            raise HandleRefError(f"handle reference has no field {field!r}; {_EXPECTED}")
        value = ref[field]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise HandleRefError(f"handle reference field {field!r} must be an int >= 0, got {repr(value)[:40]}")
        if not isinstance(value, kind):
            raise HandleRefError(
                f"handle reference field {field!r} must be a {kind.__name__}, got {type(value).__name__}"
            )
    if not all(isinstance(key, str) for key in ref["chunks"]):
        raise HandleRefError("handle reference field 'chunks' must be a list of blob keys (str)")
    if not all(isinstance(seg, list) and len(seg) == 4 for seg in ref["segments"]):
        raise HandleRefError("handle reference field 'segments' must hold [agent, kind, start, end] lists")
    return cast(HandleRef, ref)


def reference(
    handle: LatentHandle, digest: str = "", chunks: list[str] | None = None, *, live: str | None = None
) -> HandleRef:
    """The reference naming ``handle`` by ``digest`` (its tensors in the blobs ``chunks``), or by a ``live`` id."""
    k = handle.keys[0] if handle.keys else None
    ref = HandleRef(
        latent_graph_ref=REF_VERSION,
        digest=digest,
        chunks=list(chunks or []),
        model=handle.fingerprint.name,
        fingerprint=handle.fingerprint.digest,
        batch=handle.batch_size,
        columns=handle.seq_len,
        layers=handle.num_layers,
        kv_heads=int(k.shape[1]) if k is not None else 0,
        head_dim=int(k.shape[3]) if k is not None else 0,
        dtype=str(handle.dtype).replace("torch.", ""),
        nbytes=handle.nbytes,
        segments=[[s.agent, s.kind, s.start, s.end] for s in handle.segments],
        summary=_describe(handle),
    )
    if live is not None:
        ref["live"] = live
    return ref


def check_ref(ref: Any, model: Any = None) -> str:
    """Validate a blob reference's fields (and its shapes against ``model``'s cache) without reading a blob.

    Returns its digest. The model is asked for its cache shape (``model.fingerprint.kv_shape``) and its
    context (``model.max_context``); a model that does not say is not checked on them.

    Raises:
        HandleRefError: A malformed reference, or one that does not fit ``model``.
        BlobMissingError: A ``live`` reference (its handle is held in memory by a one-shot run, in no blob).
        ModelMismatchError: The reference was built by another model.
    """
    ref = checked(ref)
    if "live" in ref:
        raise BlobMissingError(
            f"handle reference {str(ref.get('live'))[:12]}... names a handle a one-shot run held in "
            "memory (LiveHandleStore), not a blob: no blob store has it; where state outlives "
            "the run, give the graph a blob-backed HandleStore"
        )
    digest = check_key(ref["digest"])
    for key in ref["chunks"]:
        check_key(key)
    layers, kv, head_dim, columns = ref["layers"], ref["kv_heads"], ref["head_dim"], ref["columns"]
    fp = getattr(model, "fingerprint", None)
    if fp is not None and ref["fingerprint"] != fp.digest:
        raise ModelMismatchError(
            str(fp), f"{ref['model']!r} (fingerprint {ref['fingerprint']})", "latent handle reference"
        )
    want = getattr(fp, "kv_shape", None)
    if want is not None and layers and (layers, kv, head_dim) != tuple(want):
        raise HandleRefError(
            f"handle reference has layers/KV heads/head_dim {(layers, kv, head_dim)}, "
            f"model {getattr(model, 'name', '?')!r} has {tuple(want)}"
        )
    context = int(getattr(model, "max_context", 0) or 0)
    if context and columns > context:
        raise HandleRefError(
            f"handle reference has {columns} columns, more than the context of "
            f"{getattr(model, 'name', '?')!r} ({context})"
        )
    return digest


def placed(handle: LatentHandle, model: Any = None, device: Any = None) -> LatentHandle:
    """``handle`` on ``device`` (default: ``model``'s input device and its layers' devices); itself when there."""
    layers = getattr(model, "layer_devices", None) if device is None else None
    device = device if device is not None else getattr(model, "device", None)
    if device is None:
        return handle
    if layers is not None and len(layers) == handle.num_layers and tuple(layers) != handle.layer_devices:
        return handle.to(device, layer_devices=layers)
    return handle if handle.device == torch.device(device) else handle.to(device)


def _describe(h: LatentHandle) -> str:
    agents = ",".join(dict.fromkeys(s.agent for s in h.segments))
    return (
        f"{h.fingerprint.name}: batch {h.batch_size}, {h.seq_len} columns, agents [{agents}], "
        f"{h.latent_steps} latent steps, {h.nbytes:,} bytes"
    )


class HotHandles:
    """Handle objects kept in memory by key, newest last, each with a tag; thread-safe.

    A :class:`~latent_graph.persist.handle_store.HandleStore` tags a handle with its manifest's chunk list, so a
    reference listing other chunks misses the hot copy (and is refused by the cold read). Beyond ``count`` handles or ``max_bytes`` bytes the oldest go (the newest stays whatever its
    size): a long conversation's handles grow with it. ``held`` is the bytes kept.
    """

    def __init__(self, count: int, max_bytes: int) -> None:
        self.count = int(count)
        self.max_bytes = int(max_bytes)
        self.held = 0
        self._items: OrderedDict[str, tuple[LatentHandle, Any]] = OrderedDict()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, tag: Any = None) -> LatentHandle | None:
        """The handle kept under ``key`` with ``tag`` (now the newest), or None."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[1] != tag:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def keep(self, key: str, handle: LatentHandle, tag: Any = None) -> None:
        """Keep ``handle`` under ``key`` with ``tag`` as the newest; drop the oldest beyond the bounds."""
        with self._lock:
            old = self._items.pop(key, None)
            self.held += handle.nbytes - (old[0].nbytes if old is not None else 0)
            self._items[key] = (handle, tag)
            while len(self._items) > self.count or (self.held > self.max_bytes and len(self._items) > 1):
                self.held -= self._items.popitem(last=False)[1][0].nbytes

    def clear(self) -> None:
        """Drop every handle kept."""
        with self._lock:
            self._items.clear()
            self.held = 0


class LiveHandleStore(HotHandles):
    """The handle store of one-shot runs: it holds the handle objects; nothing is serialized, hashed or written.

    For runs whose references live one invocation in one process (no checkpointer: the CLI's
    ``run``, the bench). ``save`` names a handle by a fresh id in the reference's ``live`` field
    (``digest`` is "" and ``chunks`` empty: no blob holds it) and keeps it, at most ``max_bytes``
    of handles, the oldest dropped first; ``load`` gives the same object back, placed on the
    model's devices. A reference it no longer holds raises :class:`BlobMissingError`, a blob
    reference :class:`HandleRefError`. Wherever state outlives the run (a checkpointer, a
    server), use a blob-backed :class:`~latent_graph.persist.handle_store.HandleStore`. Its references are not
    signed and it has one namespace: they never leave the process, and a live id is 128 random bits.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        super().__init__(count=1 << 62, max_bytes=max_bytes)
        self._refs: weakref.WeakKeyDictionary[LatentHandle, HandleRef] = weakref.WeakKeyDictionary()
        self.saves = 0  # handles newly named

    def __repr__(self) -> str:
        return f"LiveHandleStore({len(self)} handles, {self.held:,} bytes)"

    def namespace(self, config: Any = None) -> str:
        """The one namespace of this store ("")."""
        return ""

    def save(self, handle: LatentHandle, namespace: str = "") -> HandleRef:
        """Keep ``handle`` and return its live reference (the same one while it is held)."""
        if not isinstance(handle, LatentHandle):
            raise HandleRefError(f"LiveHandleStore.save needs a LatentHandle, got {type(handle).__name__}")
        with self._lock:
            ref = self._refs.get(handle)
            if ref is None or self.get(ref["live"]) is not handle:
                ref = self._refs[handle] = reference(handle, live=uuid.uuid4().hex)
                self.saves += 1
            self.keep(ref["live"], handle)
        return dict(ref)  # type: ignore[return-value]

    def load(self, ref: Any, model: Any = None, device: Any = None, namespace: str = "") -> LatentHandle:
        """The handle object behind a live reference (a LatentHandle passes through)."""
        if isinstance(ref, LatentHandle):
            return ref
        key = checked(ref).get("live")
        if not isinstance(key, str) or not _LIVE.match(key):
            raise HandleRefError(
                f"a LiveHandleStore resolves only its own references (a 'live' id of 32 hex chars), "
                f"got live={str(key)[:80]!r}; a blob reference needs the HandleStore over its blobs"
            )
        hit = self.get(key)
        if hit is None:
            raise BlobMissingError(
                f"live handle {key[:12]}... is missing from {self!r}: dropped beyond max_bytes, "
                "cleared at the end of its run, or held by another process"
            )
        return placed(hit, model, device)
