"""Garbage collection of handle chunks, and pruning of old checkpoints.

Why: chunks are shared between checkpoints, so LangGraph's ``delete_thread``
removes the checkpoint rows but every chunk stays (30 threads -> 360 chunks,
all kept). :func:`collect_chunks` deletes the chunks no remaining checkpoint or
pending write refers to: the reference set is every manifest key found in the
stored payloads (read as plain msgpack, nothing rebuilt) plus the chunk keys
those manifests list. :func:`prune` keeps the newest checkpoints of each thread.
The savers of :mod:`latent_graph.persist.savers` collect after every
``delete_thread``. Run both while no graph is writing to the saver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ormsgpack
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph.errors import HandleFormatError, InvalidArgumentError
from latent_graph.persist.chunks import manifest_chunk_keys
from latent_graph.persist.serializer import MANIFEST_KEY, TYPE_TAG

__all__ = ["collect_chunks", "prune"]


def _pairs(entry: Any) -> Iterator[tuple[str, bytes]]:
    """``(type, bytes)`` payloads inside a stored entry (nested tuples)."""
    if isinstance(entry, tuple):
        if len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], (bytes, bytearray)):
            yield entry[0], bytes(entry[1])
        else:
            for x in entry:
                yield from _pairs(x)


def _payloads(saver: Any) -> Iterator[tuple[str, bytes]]:
    if isinstance(saver, InMemorySaver):
        for namespaces in list(saver.storage.values()):
            for checkpoints in list(namespaces.values()):
                for entry in list(checkpoints.values()):
                    yield from _pairs(entry)
        for entry in list(saver.blobs.values()):
            yield from _pairs(entry)
        for writes in list(saver.writes.values()):
            for entry in list(writes.values()):
                yield from _pairs(entry)
    elif isinstance(saver, SqliteSaver):
        with saver.cursor(transaction=False) as cur:
            rows = cur.execute("SELECT type, checkpoint FROM checkpoints").fetchall()
            rows += cur.execute("SELECT type, value FROM writes").fetchall()
        for type_, data in rows:
            if data is not None:
                yield str(type_), bytes(data)
    else:
        raise InvalidArgumentError(f"chunk collection supports InMemorySaver and SqliteSaver, not {type(saver).__name__}")


def _manifests(obj: Any, found: set[str]) -> None:
    if isinstance(obj, dict):
        key = obj.get(MANIFEST_KEY) if len(obj) == 1 else None
        if isinstance(key, str):
            found.add(key)
        for v in obj.values():
            _manifests(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _manifests(v, found)


def _unpack(data: bytes) -> Any:
    def hook(code: int, inner: bytes) -> Any:  # records (Send, dataclasses...) opened as data, nothing rebuilt
        try:
            return ormsgpack.unpackb(inner, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
        except (ValueError, TypeError):
            return None

    return ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)


def referenced_chunks(saver: Any) -> set[str]:
    """Keys of every chunk (manifests included) the saver's stored payloads still need."""
    store = saver.serde.chunk_store
    manifests: set[str] = set()
    for type_, data in _payloads(saver):
        if type_ == TYPE_TAG:
            _manifests(_unpack(data), manifests)
    needed = set(manifests)
    for key in manifests:
        raw = store.get(key)
        if raw is None:
            continue
        try:
            needed.update(manifest_chunk_keys(raw))
        except HandleFormatError:
            continue  # a damaged manifest keeps nothing alive; loading it fails on its own
    return needed


def collect_chunks(saver: Any) -> int:
    """Delete chunks no stored checkpoint or write refers to; returns the bytes freed."""
    serde = saver.serde
    store = getattr(serde, "chunk_store", None)
    if store is None:
        return 0
    lock = getattr(saver, "lock", None) if isinstance(saver, SqliteSaver) else None
    if lock is not None:
        lock.acquire()
    try:
        before = store.nbytes
        garbage = sorted(set(store.keys()) - referenced_chunks(saver))
        if garbage:
            store.delete(garbage)
            serde.forget(set(garbage))
        return before - store.nbytes
    finally:
        if lock is not None:
            lock.release()


def prune(saver: Any, keep_last: int = 1) -> int:
    """Keep the newest ``keep_last`` checkpoints of every thread (and namespace); returns bytes of chunks freed.

    Older checkpoints and their pending writes are deleted (their history is no
    longer reachable), then unreferenced chunks are collected.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise InvalidArgumentError(f"keep_last must be an int >= 1, got {keep_last!r}")
    if isinstance(saver, InMemorySaver):
        _prune_memory(saver, keep_last)
    elif isinstance(saver, SqliteSaver):
        _prune_sqlite(saver, keep_last)
    else:
        raise InvalidArgumentError(f"prune supports InMemorySaver and SqliteSaver, not {type(saver).__name__}")
    return collect_chunks(saver)


def _prune_memory(saver: InMemorySaver, keep_last: int) -> None:
    live: set[tuple[str, str, str, Any]] = set()
    for thread, namespaces in saver.storage.items():
        for ns, checkpoints in namespaces.items():
            for cid in sorted(checkpoints)[:-keep_last]:  # ids are time-ordered (uuid6)
                del checkpoints[cid]
                saver.writes.pop((thread, ns, cid), None)
            for entry in checkpoints.values():
                ckpt = saver.serde.loads_typed(entry[0])
                live.update((thread, ns, ch, v) for ch, v in ckpt.get("channel_versions", {}).items())
    for key in [k for k in saver.blobs if k not in live]:
        del saver.blobs[key]


def _prune_sqlite(saver: SqliteSaver, keep_last: int) -> None:
    keep = """SELECT checkpoint_id FROM checkpoints AS k WHERE k.thread_id = {t}.thread_id
              AND k.checkpoint_ns = {t}.checkpoint_ns ORDER BY checkpoint_id DESC LIMIT ?"""
    with saver.cursor() as cur:
        cur.execute(f"DELETE FROM writes WHERE checkpoint_id NOT IN ({keep.format(t='writes')})", (keep_last,))
        cur.execute(f"DELETE FROM checkpoints WHERE checkpoint_id NOT IN ({keep.format(t='checkpoints')})", (keep_last,))
