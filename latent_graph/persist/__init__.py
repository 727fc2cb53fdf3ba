"""Persistence: handle byte formats (safetensors, no pickle), blob stores, handle references, LangGraph checkpointing."""

from latent_graph.persist.blobs import BlobStore, FolderBlobStore, MemoryBlobStore, SqliteBlobStore
from latent_graph.persist.chunks import (
    HandleChunks,
    handle_from_chunks,
    handle_from_store,
    handle_to_chunks,
    handle_to_store,
    manifest_chunk_keys,
)
from latent_graph.persist.collect import collect_chunks, prune
from latent_graph.persist.gc import collect_blobs, delete_thread, referenced_blobs
from latent_graph.persist.handle_format import chunk_key, handle_from_bytes, handle_to_bytes
from latent_graph.persist.refs import HandleRef, HandleStore, LiveHandleStore, default_handle_store, is_ref
from latent_graph.persist.savers import checkpoint_nbytes, latent_checkpointer, memory_checkpointer, sqlite_checkpointer
from latent_graph.persist.serializer import TYPE_TAG, LatentSerializer
from latent_graph.persist.stores import ChunkStore, InMemoryChunkStore, SqliteChunkStore

__all__ = [
    "BlobStore",
    "FolderBlobStore",
    "HandleRef",
    "HandleStore",
    "LiveHandleStore",
    "MemoryBlobStore",
    "SqliteBlobStore",
    "collect_blobs",
    "default_handle_store",
    "delete_thread",
    "referenced_blobs",
    "is_ref",
    "TYPE_TAG",
    "ChunkStore",
    "HandleChunks",
    "InMemoryChunkStore",
    "LatentSerializer",
    "SqliteChunkStore",
    "checkpoint_nbytes",
    "collect_chunks",
    "chunk_key",
    "handle_from_bytes",
    "handle_from_chunks",
    "handle_from_store",
    "handle_to_bytes",
    "handle_to_chunks",
    "handle_to_store",
    "manifest_chunk_keys",
    "latent_checkpointer",
    "memory_checkpointer",
    "prune",
    "sqlite_checkpointer",
]
