"""The handle store whose references outlive a process: tensors written once to a blob store.

:class:`HandleStore` writes handles (``save(handle) -> ref``) and resolves references
(``load(ref, model) -> handle``) over one :class:`~latent_graph.persist.blobs.BlobStore`,
keeping the hottest handles in memory so a latent chain never re-reads what it just wrote,
and a checkpoint repeating one reference n times costs one load. ``load`` checks the
reference (:func:`~latent_graph.persist.refs.check_ref`: keys, fingerprint, shapes against
the model's cache and context) before reading any blob, then every blob's sha256 against its
key. Runs that keep nothing use :class:`~latent_graph.persist.refs.LiveHandleStore` instead
(:meth:`HandleStore.in_memory`).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, cast

from latent_graph.engine import LatentHandle
from latent_graph.errors import BlobMissingError, HandleFormatError, HandleRefError
from latent_graph.persist.blobs import BlobStore, FolderBlobStore, default_blob_folder
from latent_graph.persist.chunks import handle_from_chunks, handle_to_chunks, manifest_chunk_keys
from latent_graph.persist.handle_format import chunk_key
from latent_graph.persist.refs import HandleRef, HotHandles, LiveHandleStore, check_ref, placed, reference

__all__ = ["HandleStore", "default_handle_store"]

_REPAIR = (
    "re-run from a checkpoint before the node that wrote it "
    "(graph.get_state_history / invoke(None, that config)) or restore the blob store"
)


class HandleStore:
    """Saves handles as references and resolves references, over one :class:`BlobStore`.

    Args:
        blobs: Where chunks live; a path means a :class:`FolderBlobStore` there; None the
            default folder under the project cache dir.
        hot: Handles kept in memory (most recently saved or loaded first), in :attr:`hot`.
        hot_bytes: At most this many bytes of them (the newest one is kept whatever its size): a
            long conversation's handles grow with it, and 16 of them would not fit in memory.
    """

    def __init__(self, blobs: BlobStore | str | Path | None = None, *, hot: int = 16, hot_bytes: int = 1 << 30) -> None:
        self.blobs: BlobStore = blobs if isinstance(blobs, BlobStore) else FolderBlobStore(blobs)
        self.hot = HotHandles(hot, hot_bytes)
        self._refs: weakref.WeakKeyDictionary[LatentHandle, HandleRef] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.loads = 0  # handles read from the blob store (cache misses)
        self.saves = 0  # handles written to the blob store

    def __repr__(self) -> str:
        return f"HandleStore({self.blobs!r})"

    @classmethod
    def in_memory(cls, max_bytes: int = 1 << 30) -> LiveHandleStore:
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
        self.hot.keep(digest, handle)
        return dict(ref)  # type: ignore[return-value]

    # ------------------------------------------------------------- reading
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
        digest = check_ref(ref, model)
        hit = self.hot.get(digest)
        if hit is None:
            hit = self._read(ref, digest)
            with self._lock:
                self.loads += 1
                self._refs[hit] = cast(HandleRef, dict(ref))
            self.hot.keep(digest, hit)
        return placed(hit, model, device)

    def _get_checked(self, key: str) -> bytes | None:
        """A blob's bytes (manifest or chunk); a corrupt one is deleted (a re-run writes it again) and named."""
        data = self.blobs.get(key)
        if data is not None and chunk_key(data) != key:
            self.blobs.delete([key])
            raise BlobMissingError(f"handle blob {key[:16]}... was corrupt in {self.blobs!r} (deleted); {_REPAIR}")
        return data

    def _read(self, ref: dict[str, Any], digest: str) -> LatentHandle:
        try:
            manifest = self._get_checked(digest)
            if manifest is None:
                raise BlobMissingError(f"handle manifest {digest[:16]}... is missing from {self.blobs!r}; {_REPAIR}")
            if manifest_chunk_keys(manifest) != list(ref["chunks"]):
                raise HandleRefError(f"handle reference {digest[:16]}... lists other chunks than its manifest")
            handle = handle_from_chunks(manifest, self._get_checked)
        except (BlobMissingError, HandleRefError):
            raise
        except HandleFormatError as exc:
            raise BlobMissingError(f"{exc}; {_REPAIR}") from exc
        if (
            handle.seq_len != ref["columns"]
            or handle.num_layers != ref["layers"]
            or handle.batch_size != ref.get("batch")
        ):
            raise HandleRefError(f"handle reference {digest[:16]}... disagrees with its blobs (shape)")
        return handle


_DEFAULTS: dict[str, HandleStore] = {}
_DEFAULT_LOCK = threading.Lock()


def default_handle_store() -> HandleStore:
    """The process's :class:`HandleStore` on the default folder (one per cache dir, so nodes share its hot cache)."""
    root = str(default_blob_folder())
    with _DEFAULT_LOCK:
        if root not in _DEFAULTS:
            _DEFAULTS[root] = HandleStore(FolderBlobStore(root))
        return _DEFAULTS[root]
