"""Handle references: the small JSON-native value graph state holds instead of a LatentHandle.

Why: LangGraph's savers (``InMemorySaver``, ``SqliteSaver``, ``PostgresSaver``...), its
functional API, its server and Studio all store state with the stock serializer,
which knows plain data, not tensors. A :class:`HandleRef` is a ``TypedDict`` of
str/int/list fields only (content digest, chunk keys, shapes, fingerprint, segment
table, a one-line summary), so any saver stores it, in strict msgpack mode too, and
the server shows it as JSON. The tensors live once in a
:class:`~latent_graph.persist.blobs.BlobStore` as the content-addressed safetensors
chunks of :mod:`latent_graph.persist.chunks` (a segment shared by successive handles
is one blob).

:class:`HandleStore` writes handles (``save(handle) -> ref``) and resolves references
(``load(ref, model) -> handle``), keeping the hottest handles in memory so a latent
chain never re-reads what it just wrote, and a checkpoint repeating one reference n
times costs one load. ``load`` checks the reference (keys, shapes against the model:
layers, KV heads, head_dim, context) before reading any chunk, then every chunk's
sha256 against its key. :class:`LiveHandleStore` (``HandleStore.in_memory()``) keeps the handle
objects themselves, for one-shot runs that keep nothing.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from typing_extensions import NotRequired, TypedDict

from latent_graph.engine import LatentHandle
from latent_graph.errors import BlobMissingError, HandleFormatError, HandleRefError, ModelMismatchError
from latent_graph.persist.blobs import MemoryBlobStore, BlobStore, FolderBlobStore, check_key, default_blob_folder
from latent_graph.persist.chunks import handle_from_chunks, handle_to_chunks, manifest_chunk_keys
from latent_graph.persist.handle_format import chunk_key

__all__ = ["REF_VERSION", "HandleRef", "HandleStore", "LiveHandleStore", "default_handle_store", "is_ref", "placed",
           "ref_keys", "reference"]

REF_VERSION = 1
"""Value of a reference's ``latent_graph_ref`` field (its format version; the field marks a dict as a reference)."""


class HandleRef(TypedDict):
    """A latent handle by reference: plain JSON, resolved by :meth:`HandleStore.load`."""

    latent_graph_ref: int
    """Reference format version (:data:`REF_VERSION`)."""
    digest: str
    """sha256 of the handle's manifest blob: the content address of the whole handle."""
    chunks: list[str]
    """Blob keys of the segment chunks (and tail) the manifest names, in order."""
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
    writer: NotRequired[str]
    """In ``branches``: the LangGraph task that wrote it (two tasks writing one key collide even with equal content)."""


def is_ref(value: Any) -> bool:
    """Whether ``value`` is a handle reference (a dict with a ``latent_graph_ref`` field)."""
    return isinstance(value, dict) and "latent_graph_ref" in value


def ref_keys(ref: Any) -> list[str]:
    """Blob keys a reference keeps alive: its manifest, then its chunks (for garbage collection)."""
    if not is_ref(ref):
        return []
    return [str(ref.get("digest")), *[str(k) for k in ref.get("chunks") or []]]


def _int(ref: dict[str, Any], field: str) -> int:
    value = ref.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HandleRefError(f"handle reference field {field!r} must be an int >= 0, got {value!r}")
    return value


def model_shape(model: Any) -> tuple[int, int, int, int] | None:
    """(layers, KV heads, head_dim, max context) of a local engine, None when unknown."""
    hf = getattr(model, "hf_model", None)
    cfg = getattr(hf, "config", None)
    if cfg is None:
        return None
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None)
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or (cfg.hidden_size // heads if heads else None)
    if not (layers and kv and head_dim):
        return None
    return int(layers), int(kv), int(head_dim), int(getattr(model, "max_context", 0) or 0)


def reference(handle: LatentHandle, digest: str, chunks: list[str]) -> HandleRef:
    """The reference naming ``handle`` by ``digest`` (its tensors in the blobs ``chunks``)."""
    k = handle.keys[0] if handle.keys else None
    return HandleRef(
        latent_graph_ref=REF_VERSION, digest=digest, chunks=chunks, model=handle.fingerprint.name,
        fingerprint=handle.fingerprint.digest, batch=handle.batch_size, columns=handle.seq_len,
        layers=handle.num_layers, kv_heads=int(k.shape[1]) if k is not None else 0,
        head_dim=int(k.shape[3]) if k is not None else 0, dtype=str(handle.dtype).replace("torch.", ""),
        nbytes=handle.nbytes, segments=[[s.agent, s.kind, s.start, s.end] for s in handle.segments],
        summary=_describe(handle),
    )


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
    return (f"{h.fingerprint.name}: batch {h.batch_size}, {h.seq_len} columns, agents [{agents}], "
            f"{h.latent_steps} latent steps, {h.nbytes:,} bytes")


class HandleStore:
    """Saves handles as references and resolves references, over one :class:`BlobStore`.

    Args:
        blobs: Where chunks live; a path means a :class:`FolderBlobStore` there; None the
            default folder under the project cache dir.
        hot: Handles kept in memory (most recently saved or loaded first).
        hot_bytes: At most this many bytes of them (the newest one is kept whatever its size): a
            long conversation's handles grow with it, and 16 of them would not fit in memory.
    """

    def __init__(self, blobs: BlobStore | str | Path | None = None, *, hot: int = 16, hot_bytes: int = 1 << 30) -> None:
        self.blobs: BlobStore = blobs if isinstance(blobs, BlobStore) else FolderBlobStore(blobs)
        self.hot = int(hot)
        self.hot_bytes = int(hot_bytes)
        self.held = 0  # bytes of the handles kept in memory
        self._cache: OrderedDict[str, LatentHandle] = OrderedDict()
        self._refs: weakref.WeakKeyDictionary[LatentHandle, HandleRef] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.loads = 0  # handles read from the blob store (cache misses)
        self.saves = 0  # handles written to the blob store

    def __repr__(self) -> str:
        return f"HandleStore({self.blobs!r})"

    @classmethod
    def in_memory(cls, max_bytes: int = 1 << 30) -> HandleStore:
        """A store that writes and serializes nothing (:class:`LiveHandleStore`: the handles themselves, at most
        ``max_bytes``, oldest dropped first), for runs with no checkpointer whose references live one invocation."""
        return LiveHandleStore(max_bytes)

    # ------------------------------------------------------------- writing
    def save(self, handle: LatentHandle) -> HandleRef:
        """Store ``handle``'s chunks (each at most once) and return its reference."""
        if not isinstance(handle, LatentHandle):
            raise HandleRefError(f"HandleStore.save needs a LatentHandle, got {type(handle).__name__}")
        with self._lock:
            known = self._refs.get(handle)
        if known is not None and known["digest"] in self.blobs:  # saved before (and not collected since)
            return dict(known)  # type: ignore[return-value]
        split = handle_to_chunks(handle)
        manifest = split.manifest.encode("utf-8")
        digest = chunk_key(manifest)
        for key, data in [*split.chunks.items(), (digest, manifest)]:
            self.blobs.put(key, data)  # present blobs only get their age refreshed (GC spares fresh blobs)
        ref = reference(handle, digest, list(split.chunks))
        with self._lock:
            self.saves += 1
            self._refs[handle] = ref
            self._remember(digest, handle)
        return dict(ref)  # type: ignore[return-value]

    def _remember(self, digest: str, handle: LatentHandle) -> None:
        """Keep ``handle`` in memory as the newest; drop the oldest beyond ``hot`` handles or ``hot_bytes``."""
        if digest not in self._cache:
            self.held += handle.nbytes
        self._cache[digest] = handle
        self._cache.move_to_end(digest)
        while len(self._cache) > self.hot or (self.held > self.hot_bytes and len(self._cache) > 1):
            self.held -= self._cache.popitem(last=False)[1].nbytes

    # ------------------------------------------------------------- reading
    def check(self, ref: Any, model: Any = None) -> str:
        """Validate a reference's fields (and its shapes against ``model``) without reading blobs; its digest."""
        if not is_ref(ref):
            raise HandleRefError(f"expected a handle reference (a dict with 'latent_graph_ref'), got {type(ref).__name__}")
        if ref.get("latent_graph_ref") != REF_VERSION:
            raise HandleRefError(f"handle reference version {ref.get('latent_graph_ref')!r}; this latent_graph reads "
                                 f"version {REF_VERSION}")
        digest = check_key(ref.get("digest"))
        chunks = ref.get("chunks")
        if not isinstance(chunks, list):
            raise HandleRefError("handle reference field 'chunks' must be a list of blob keys")
        for key in chunks:
            check_key(key)
        layers, kv, head_dim, columns = (_int(ref, f) for f in ("layers", "kv_heads", "head_dim", "columns"))
        fp = getattr(model, "fingerprint", None)
        if fp is not None and ref.get("fingerprint") != fp.digest:
            raise ModelMismatchError(str(fp), f"{ref.get('model')!r} (fingerprint {ref.get('fingerprint')})",
                                     "latent handle reference")
        shape = model_shape(model)
        if shape is not None:
            want = shape[:3]
            if layers and (layers, kv, head_dim) != want:
                raise HandleRefError(f"handle reference has layers/KV heads/head_dim {(layers, kv, head_dim)}, "
                                     f"model {getattr(model, 'name', '?')!r} has {want}")
            if shape[3] and columns > shape[3]:
                raise HandleRefError(f"handle reference has {columns} columns, more than the context of "
                                     f"{getattr(model, 'name', '?')!r} ({shape[3]})")
        return digest

    def load(self, ref: Any, model: Any = None, device: Any = None) -> LatentHandle:
        """The handle behind ``ref`` (a LatentHandle passes through, checked against ``model`` only by its user).

        Raises:
            HandleRefError: A malformed reference, or one that does not fit ``model``.
            BlobMissingError: A blob is missing or corrupt (re-run the node that wrote it,
                or time-travel to a checkpoint before it: the thread stays usable).
            ModelMismatchError: The reference was built by another model.
        """
        if isinstance(ref, LatentHandle):
            return ref
        digest = self.check(ref, model)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
        if hit is None:
            hit = self._read(ref, digest)
            with self._lock:
                self.loads += 1
                self._refs[hit] = {**ref}  # type: ignore[assignment]
                self._remember(digest, hit)
        return placed(hit, model, device)

    def _get_checked(self, key: str, repair: str) -> bytes | None:
        """A chunk's bytes; a corrupt one is deleted (a re-run writes it again) and named."""
        data = self.blobs.get(key)
        if data is not None and chunk_key(data) != key:
            self.blobs.delete([key])
            raise BlobMissingError(f"handle chunk {key[:16]}... was corrupt in {self.blobs!r} (deleted); {repair}")
        return data

    def _read(self, ref: dict[str, Any], digest: str) -> LatentHandle:
        repair = ("re-run from a checkpoint before the node that wrote it "
                  "(graph.get_state_history / invoke(None, that config)) or restore the blob store")
        try:
            manifest = self.blobs.get(digest)
            if manifest is None:
                raise BlobMissingError(f"handle manifest {digest[:16]}... is missing from {self.blobs!r}; {repair}")
            if chunk_key(manifest) != digest:
                self.blobs.delete([digest])
                raise BlobMissingError(f"handle manifest {digest[:16]}... was corrupt in {self.blobs!r} (deleted); {repair}")
            if manifest_chunk_keys(manifest) != list(ref["chunks"]):
                raise HandleRefError(f"handle reference {digest[:16]}... lists other chunks than its manifest")
            handle = handle_from_chunks(manifest, lambda key: self._get_checked(key, repair))
        except (BlobMissingError, HandleRefError):
            raise
        except HandleFormatError as exc:
            raise BlobMissingError(f"{exc}; {repair}") from exc
        if handle.seq_len != ref["columns"] or handle.num_layers != ref["layers"] or handle.batch_size != ref.get("batch"):
            raise HandleRefError(f"handle reference {digest[:16]}... disagrees with its blobs (shape)")
        return handle


class LiveHandleStore(HandleStore):
    """A :class:`HandleStore` holding the handle objects themselves: nothing is serialized, hashed or written.

    For runs whose references live one invocation in one process (no checkpointer: the CLI's
    ``run``). ``save`` names a handle by a random 64-hex ``digest`` (``chunks`` is empty) and keeps
    it, at most ``max_bytes`` of handles (the oldest dropped first); ``load`` gives the same object
    back, placed on the model's devices. A reference it no longer holds, or one of another store,
    raises :class:`BlobMissingError`. Wherever state outlives the run (a checkpointer, a server),
    use a blob-backed :class:`HandleStore`.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        super().__init__(MemoryBlobStore(max_bytes=0), hot=1 << 62, hot_bytes=max_bytes)

    def __repr__(self) -> str:
        return f"LiveHandleStore({len(self._cache)} handles, {self.held:,} bytes)"

    def save(self, handle: LatentHandle) -> HandleRef:
        if not isinstance(handle, LatentHandle):
            raise HandleRefError(f"HandleStore.save needs a LatentHandle, got {type(handle).__name__}")
        with self._lock:
            ref = self._refs.get(handle)
            if ref is None or ref["digest"] not in self._cache:
                ref = self._refs[handle] = reference(handle, hashlib.sha256(uuid.uuid4().bytes).hexdigest(), [])
                self.saves += 1
            self._remember(ref["digest"], handle)
        return dict(ref)  # type: ignore[return-value]

    def load(self, ref: Any, model: Any = None, device: Any = None) -> LatentHandle:
        if isinstance(ref, LatentHandle):
            return ref
        with self._lock:
            digest = ref.get("digest") if is_ref(ref) else None
            hit = self._cache.get(digest) if isinstance(digest, str) else None
        if hit is None:  # not held (dropped, or another store's): checked and named by the blob path
            return super().load(ref, model, device)
        return placed(hit, model, device)

    def clear(self) -> None:
        """Drop every handle held (their references then raise :class:`BlobMissingError`): the end of a run."""
        with self._lock:
            self._cache.clear()
            self.held = 0


_DEFAULTS: dict[str, HandleStore] = {}
_DEFAULT_LOCK = threading.Lock()


def default_handle_store() -> HandleStore:
    """The process's :class:`HandleStore` on the default folder (one per cache dir, so nodes share its hot cache)."""
    root = str(default_blob_folder())
    with _DEFAULT_LOCK:
        if root not in _DEFAULTS:
            _DEFAULTS[root] = HandleStore(FolderBlobStore(root))
        return _DEFAULTS[root]
