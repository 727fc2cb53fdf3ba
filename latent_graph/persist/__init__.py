"""Persistence: graph state holds JSON handle references; tensors live in a blob store (safetensors, no pickle).

Any LangGraph saver stores the references unchanged (its own serializer); :func:`collect_blobs`
frees the blobs no checkpoint names any more, through the savers' public API. References are signed and
blobs addressed per namespace under the deployment's key (:mod:`~latent_graph.persist.keys`,
:mod:`~latent_graph.persist.sealing`; docs/security.md).
"""

from latent_graph.persist.blobs import BlobStore
from latent_graph.persist.chunks import HandleChunks, handle_from_chunks, handle_to_chunks, manifest_chunk_keys
from latent_graph.persist.folder_blobs import FolderBlobStore
from latent_graph.persist.gc import acollect_blobs, checkpoint_nbytes, collect_blobs, delete_thread, referenced_blobs
from latent_graph.persist.handle_format import chunk_key
from latent_graph.persist.handle_store import HandleStore, default_handle_store
from latent_graph.persist.keys import KeyRing, default_keyring
from latent_graph.persist.memory_blobs import MemoryBlobStore
from latent_graph.persist.refs import HandleRef, LiveHandleStore, is_ref
from latent_graph.persist.sealing import namespace_of
from latent_graph.persist.sql_blobs import SqliteBlobStore

__all__ = [
    "BlobStore",
    "FolderBlobStore",
    "HandleChunks",
    "HandleRef",
    "HandleStore",
    "KeyRing",
    "LiveHandleStore",
    "MemoryBlobStore",
    "SqliteBlobStore",
    "acollect_blobs",
    "checkpoint_nbytes",
    "chunk_key",
    "collect_blobs",
    "default_handle_store",
    "default_keyring",
    "delete_thread",
    "handle_from_chunks",
    "handle_to_chunks",
    "is_ref",
    "manifest_chunk_keys",
    "namespace_of",
    "referenced_blobs",
]
