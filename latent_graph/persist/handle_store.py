"""The handle store whose references outlive a process: tensors written once to a blob store, signed references.

:class:`HandleStore` writes handles (``save(handle, namespace) -> ref``) and resolves references
(``load(ref, model, namespace=...) -> handle``) over one :class:`~latent_graph.persist.blobs.BlobStore`,
keeping the hottest handles in memory so a latent chain never re-reads what it just wrote,
and a checkpoint repeating one reference n times costs one load. ``load`` checks the
reference (:func:`~latent_graph.persist.refs.check_ref`: keys, fingerprint, shapes against
the model's cache and context), then its signature and namespace
(:meth:`~latent_graph.persist.sealing.Sealer.verify`), before the hot cache or any blob is read,
then every blob against its keyed address. Runs that keep nothing use
:class:`~latent_graph.persist.refs.LiveHandleStore` instead (:meth:`HandleStore.in_memory`).
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

from latent_graph.engine import LatentHandle
from latent_graph.errors import BlobMissingError, HandleFormatError, HandleRefError
from latent_graph.persist.blobs import BlobStore
from latent_graph.persist.chunks import handle_from_chunks, handle_to_chunks, manifest_chunk_keys
from latent_graph.persist.folder_blobs import FolderBlobStore, default_blob_folder
from latent_graph.persist.keys import KeyRing, default_keyring
from latent_graph.persist.refs import HandleRef, HotHandles, LiveHandleStore, check_ref, placed, reference
from latent_graph.persist.sealing import Sealer, namespace_of

__all__ = ["ENV_ENCRYPT", "ENV_NAMESPACE", "HandleStore", "default_handle_store"]

ENV_ENCRYPT = "LATENT_GRAPH_ENCRYPT_BLOBS"
"""``1`` seals the default store's blobs (AES-GCM): the ``encrypt`` setting of :func:`default_handle_store`."""
ENV_NAMESPACE = "LATENT_GRAPH_NAMESPACE"
"""``thread`` gives each thread its own namespace in the default store: its ``per_thread`` setting."""

_REPAIR = (
    "re-run from a checkpoint before the node that wrote it "
    "(graph.get_state_history / invoke(None, that config)) or restore the blob store"
)


class HandleStore:
    """Saves handles as signed references and resolves references, over one :class:`BlobStore`.

    Args:
        blobs: Where chunks live; a path means a :class:`FolderBlobStore` there; None the
            default folder under the project cache dir.
        hot: Handles kept in memory (most recently saved or loaded first), in :attr:`hot`.
        hot_bytes: At most this many bytes of them (the newest one is kept whatever its size): a
            long conversation's handles grow with it, and 16 of them would not fit in memory.
        keys: The key ring that signs, addresses and seals (None: the deployment's,
            :func:`~latent_graph.persist.keys.default_keyring`).
        encrypt: Seal every blob written with AES-GCM (blobs are read whichever way they were written).
        per_thread: Each thread its own namespace (:meth:`namespace`), beside the authenticated user's.
    """

    def __init__(
        self,
        blobs: BlobStore | str | Path | None = None,
        *,
        hot: int = 16,
        hot_bytes: int = 1 << 30,
        keys: KeyRing | None = None,
        encrypt: bool = False,
        per_thread: bool = False,
    ) -> None:
        self.blobs: BlobStore = blobs if isinstance(blobs, BlobStore) else FolderBlobStore(blobs)
        self.hot = HotHandles(hot, hot_bytes)
        self.sealer = Sealer(keys if keys is not None else default_keyring(), encrypt)
        self.per_thread = bool(per_thread)
        self._refs: weakref.WeakKeyDictionary[LatentHandle, dict[str, HandleRef]] = weakref.WeakKeyDictionary()
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

    def namespace(self, config: Any = None) -> str:
        """The namespace a run with LangGraph ``config`` reads and writes handles in
        (:func:`~latent_graph.persist.sealing.namespace_of` under this store's ``per_thread``)."""
        return namespace_of(config, self.per_thread)

    # ------------------------------------------------------------- writing
    def save(self, handle: LatentHandle, namespace: str = "") -> HandleRef:
        """Store ``handle``'s chunks in ``namespace`` (each at most once) and return its signed reference."""
        if not isinstance(handle, LatentHandle):
            raise HandleRefError(f"HandleStore.save needs a LatentHandle, got {type(handle).__name__}")
        kid = self.sealer.keys.kid
        with self._lock:
            known = self._refs.get(handle, {}).get(namespace)
        # saved before and not collected since: refresh its blobs' age (GC spares them until this save's checkpoint
        # commits, as a fresh put would) instead of writing them again
        if known is not None and known["kid"] == kid and self.blobs.touch([*known["chunks"], known["digest"]]):
            return dict(known)  # type: ignore[return-value]
        address = self.sealer.address(kid, namespace)
        split = handle_to_chunks(handle, address)
        manifest = split.manifest.encode("utf-8")
        digest = address(manifest)
        for key, data in [*split.chunks.items(), (digest, manifest)]:
            # present blobs only get their age refreshed (GC spares fresh blobs)
            self.blobs.put(key, self.sealer.seal(kid, namespace, key, data))
        ref: HandleRef = self.sealer.sign(dict(reference(handle, digest, list(split.chunks))), namespace)  # type: ignore[assignment]
        with self._lock:
            self.saves += 1
            self._refs.setdefault(handle, {})[namespace] = ref
        self.hot.keep(digest, handle, tuple(split.chunks))
        return dict(ref)  # type: ignore[return-value]

    def share(self, ref: Any, to_namespace: str) -> HandleRef:
        """The handle behind ``ref`` (verified in its own namespace) saved into ``to_namespace``: the explicit act
        that lets another thread or user read it (its blobs are written anew under that namespace's addresses)."""
        namespace = ref.get("namespace", "") if isinstance(ref, dict) else ""
        return self.save(self.load(ref, namespace=str(namespace)), to_namespace)

    # ------------------------------------------------------------- reading
    def load(self, ref: Any, model: Any = None, device: Any = None, namespace: str = "") -> LatentHandle:
        """The handle behind ``ref`` in ``namespace`` (a LatentHandle passes through, checked by its user only).

        Raises:
            HandleRefError: A malformed reference, or one that does not fit ``model``.
            HandleSignatureError: Unsigned, edited or forged, or a sealed blob that does not open.
            HandleNamespaceError: The reference belongs to another namespace (same message whatever its blobs).
            BlobMissingError: A blob is missing or corrupt (re-run the node that wrote it,
                or time-travel to a checkpoint before it: the thread stays usable).
            ModelMismatchError: The reference was built by another model.
        """
        if isinstance(ref, LatentHandle):
            return ref
        digest = check_ref(ref, model)
        self.sealer.verify(ref, namespace)
        hit = self.hot.get(digest, tuple(ref["chunks"]))
        if hit is None:
            hit = self._read(ref, digest)
            with self._lock:
                self.loads += 1
                self._refs.setdefault(hit, {})[namespace] = {k: v for k, v in ref.items() if k != "writer"}  # type: ignore[assignment]
            self.hot.keep(digest, hit, tuple(ref["chunks"]))
        return placed(hit, model, device)

    def _getter(self, ref: dict[str, Any], address: Any) -> Any:
        """A blob's plain bytes (manifest or chunk), opened and checked; a corrupt one is deleted (a re-run writes it
        again) and named."""
        kid, namespace = ref["kid"], ref["namespace"]

        def get(key: str) -> bytes | None:
            data = self.blobs.get(key)
            if data is None:
                return None
            data = self.sealer.open(kid, namespace, key, data)
            if address(data) != key:
                self.blobs.delete([key])
                raise BlobMissingError(
                    f"handle blob {key[:16]}... was corrupt or altered in {self.blobs!r} (deleted); {_REPAIR}"
                )
            return data

        return get

    def _read(self, ref: dict[str, Any], digest: str) -> LatentHandle:
        address = self.sealer.address(ref["kid"], ref["namespace"])
        get = self._getter(ref, address)
        try:
            manifest = get(digest)
            if manifest is None:
                raise BlobMissingError(f"handle manifest {digest[:16]}... is missing from {self.blobs!r}; {_REPAIR}")
            if manifest_chunk_keys(manifest) != list(ref["chunks"]):
                raise HandleRefError(f"handle reference {digest[:16]}... lists other chunks than its manifest")
            handle = handle_from_chunks(manifest, get, address=address)
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
    """The process's :class:`HandleStore` on the default folder (one per cache dir, so nodes share its hot cache),
    under the deployment's key; ``$LATENT_GRAPH_ENCRYPT_BLOBS=1`` seals its blobs, ``$LATENT_GRAPH_NAMESPACE=thread``
    gives each thread its own namespace (read when it is first made)."""
    root = str(default_blob_folder())
    with _DEFAULT_LOCK:
        if root not in _DEFAULTS:
            _DEFAULTS[root] = HandleStore(
                FolderBlobStore(root),
                encrypt=os.environ.get(ENV_ENCRYPT, "") == "1",
                per_thread=os.environ.get(ENV_NAMESPACE, "") == "thread",
            )
        return _DEFAULTS[root]
