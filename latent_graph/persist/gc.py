"""Garbage collection of handle blobs no checkpoint (or store item) refers to.

Why: graph state holds :class:`~latent_graph.persist.refs.HandleRef` references and the
blobs behind them are shared between checkpoints, threads and runs, so deleting a
thread (or pruning old checkpoints) with LangGraph's own saver API leaves its blobs
behind. :func:`collect_blobs` reads every stored checkpoint and pending write through
the saver's public ``list`` (any saver: InMemorySaver, SqliteSaver, PostgresSaver...;
:func:`acollect_blobs` reads async savers through ``alist``), and every item of the given
LangGraph stores, gathers the blob keys their references name, and deletes the other blobs.
Nothing here reads a saver's tables or attributes: only its public API.

Safe while other threads and processes write (mark and sweep with a write barrier): the
collection notes the time ``t0`` before it reads any checkpoint (the mark), and the sweep
deletes only unreferenced blobs last written at or before ``t0 - grace``. The barrier is the
``put`` every writer does before it commits a checkpoint naming a blob (a running graph's
nodes re-save, so refresh, every chunk of the handle they write), and ``grace`` is the lease
that ``put`` takes: a writer that commits within ``grace`` seconds of its ``put`` never loses
the blob. Either the mark read its checkpoint, or the checkpoint was committed after ``t0``,
so the ``put`` came after ``t0 - grace`` and the sweep spares it, however long the mark takes.
The time is checked by the blob store at the moment of deletion, in one step with it per key
(``BlobStore.delete(keys, before=t0 - grace)``: a conditional ``DELETE`` in SQL, the store's
lock in memory, the shard's lock file in a folder), so a blob refreshed after the scan
that found it unreferenced is kept, not lost. Times are ``time.time()`` of the writing and the
collecting processes: their clocks must agree to well within ``grace``.

A checkpoint written without a ``put`` (``update_state`` or a thread copy carrying a reference
verbatim) relies on its source checkpoint: keep the source until the copy is committed, or
re-save the handle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from latent_graph.errors import InvalidArgumentError
from latent_graph.persist.blobs import BlobStore
from latent_graph.persist.refs import is_ref, ref_keys

__all__ = ["acollect_blobs", "checkpoint_nbytes", "collect_blobs", "delete_thread", "referenced_blobs"]

DEFAULT_GRACE_S = 600.0
"""Blobs younger than this are kept whatever refers to them (a write in flight)."""


def _walk(value: Any, found: set[str]) -> None:
    if is_ref(value):
        found.update(ref_keys(value))
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v, found)
    elif hasattr(value, "arg") and hasattr(value, "node"):  # a Send packet
        _walk(value.arg, found)


def _store_items(store: Any) -> Iterable[Any]:
    for namespace in store.list_namespaces(limit=10**9):
        offset = 0
        while True:
            items = store.search(namespace, limit=1000, offset=offset)
            yield from (item.value for item in items if tuple(item.namespace) == tuple(namespace))
            if len(items) < 1000:
                break
            offset += len(items)


def _walk_tuple(tup: Any, found: set[str]) -> None:
    """Blob keys named by one ``CheckpointTuple``: its channel values and its pending writes."""
    _walk(tup.checkpoint.get("channel_values"), found)
    _walk([w[2] for w in tup.pending_writes or []], found)


_RETRIES = 100


def _threads(saver: Any) -> list[Any]:
    """What to list ``saver`` by: None (everything at once), or one config per thread of an ``InMemorySaver``.

    ``InMemorySaver.list(None)`` iterates its live dict of threads, which a concurrent writer's new
    thread changes under it (``RuntimeError: dictionary changed size during iteration``): its thread
    ids are snapshotted first (``list(dict)`` runs under the GIL in one step) and listed one by one.
    """
    if not isinstance(saver, InMemorySaver):
        return [None]
    return [{"configurable": {"thread_id": t}} for t in list(saver.storage)]


def _changed_under(exc: RuntimeError) -> bool:
    return "changed size during iteration" in str(exc)


def _mark(saver: Any, found: set[str]) -> None:
    """Add the keys every checkpoint of ``saver`` names to ``found`` (a listing a writer disturbs is read again:
    ``found`` only grows, so a partial first read is harmless)."""
    for config in _threads(saver):
        if config is not None and config["configurable"]["thread_id"] not in saver.storage:
            continue  # deleted since the snapshot (listing it would put an empty thread back)
        for attempt in range(_RETRIES):
            try:
                for tup in saver.list(config):
                    _walk_tuple(tup, found)
                break
            except RuntimeError as exc:  # a new namespace in that thread, written meanwhile
                if not _changed_under(exc) or attempt == _RETRIES - 1:
                    raise


async def _amark(saver: Any, found: set[str]) -> None:
    """:func:`_mark` through ``alist``."""
    for config in _threads(saver):
        if config is not None and config["configurable"]["thread_id"] not in saver.storage:
            continue
        for attempt in range(_RETRIES):
            try:
                async for tup in saver.alist(config):
                    _walk_tuple(tup, found)
                break
            except RuntimeError as exc:
                if not _changed_under(exc) or attempt == _RETRIES - 1:
                    raise


def referenced_blobs(savers: Iterable[Any] = (), stores: Iterable[Any] = ()) -> set[str]:
    """Blob keys the references in every checkpoint/pending write of ``savers`` and item of ``stores`` name.

    Savers are read with their sync ``list`` (an async saver: :func:`acollect_blobs`).
    """
    found: set[str] = set()
    for saver in savers:
        _mark(saver, found)
    for store in stores:
        for value in _store_items(store):
            _walk(value, found)
    return found


def _blob_store(blobs: Any, grace: Any) -> BlobStore:
    """The blob store of ``blobs`` (a BlobStore or HandleStore), checked with ``grace`` before the mark."""
    store = getattr(blobs, "blobs", blobs)
    if not isinstance(store, BlobStore):
        raise InvalidArgumentError(f"collect_blobs needs a BlobStore or HandleStore, got {type(blobs).__name__}")
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace < float("inf"):
        raise InvalidArgumentError(f"grace must be seconds >= 0, got {grace!r}")
    return store


def _sweep(store: BlobStore, live: set[str], before: float) -> int:
    """Delete the blobs of ``store`` outside ``live`` last written at or before ``before``; how many.

    The store checks the time when it deletes (not here beforehand), so a refresh in between keeps the blob.
    """
    return store.delete([key for key in store.keys() if key not in live], before=before)


def collect_blobs(
    blobs: Any, savers: Iterable[Any] = (), stores: Iterable[Any] = (), grace: float = DEFAULT_GRACE_S
) -> int:
    """Delete blobs of ``blobs`` (a BlobStore or HandleStore) no reference in ``savers``/``stores`` names.

    Every saver and store whose checkpoints refer to this blob store must be passed:
    a blob only they referenced would be collected. Returns the number of blobs deleted.
    """
    store, t0 = _blob_store(blobs, grace), time.time()
    return _sweep(store, referenced_blobs(list(savers), list(stores)), t0 - grace)


async def acollect_blobs(
    blobs: Any, savers: Iterable[Any] = (), stores: Iterable[Any] = (), grace: float = DEFAULT_GRACE_S
) -> int:
    """:func:`collect_blobs` for async savers (``AsyncSqliteSaver``, ``AsyncPostgresSaver``), read with ``alist``.

    ``stores`` are read with their sync API.
    """
    store, t0 = _blob_store(blobs, grace), time.time()
    found: set[str] = set()
    for saver in savers:
        await _amark(saver, found)
    return _sweep(store, found | referenced_blobs((), list(stores)), t0 - grace)


def delete_thread(
    saver: Any,
    thread_id: str,
    blobs: Any,
    *,
    others: Iterable[Any] = (),
    stores: Iterable[Any] = (),
    grace: float = DEFAULT_GRACE_S,
) -> int:
    """``saver.delete_thread(thread_id)``, then collect the blobs nothing else refers to (``others``: further
    savers sharing the blob store). Returns the number of blobs deleted."""
    saver.delete_thread(thread_id)
    return collect_blobs(blobs, [saver, *others], stores, grace)


def checkpoint_nbytes(saver: Any) -> int:
    """Bytes of the checkpoints of ``saver`` (metadata and pending writes included), each part serialized with the
    saver's own serializer, read through its public ``list``: what its threads cost besides their blobs.

    A channel value counts once per version, as LangGraph's savers store it (an unchanged value is not
    stored again by the next checkpoint).
    """
    dumps = saver.serde.dumps_typed
    seen: set[tuple[Any, ...]] = set()
    total = 0
    for tup in saver.list(None):
        conf = tup.config["configurable"]
        versions = tup.checkpoint.get("channel_versions") or {}
        for channel, value in (tup.checkpoint.get("channel_values") or {}).items():
            key = (conf.get("thread_id"), conf.get("checkpoint_ns", ""), channel, versions.get(channel))
            if key not in seen:
                seen.add(key)
                total += len(dumps(value)[1])
        rest = {k: v for k, v in tup.checkpoint.items() if k != "channel_values"}
        total += len(dumps(rest)[1]) + len(dumps(tup.metadata)[1])
        total += sum(len(dumps(w[2])[1]) for w in tup.pending_writes or [])
    return total
