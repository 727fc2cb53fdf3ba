"""Garbage collection of handle blobs no checkpoint (or store item) refers to.

Why: graph state holds :class:`~latent_graph.persist.refs.HandleRef` references and the
blobs behind them are shared between checkpoints, threads and runs, so deleting a
thread (or pruning old checkpoints) with LangGraph's own saver API leaves its blobs
behind. :func:`collect_blobs` reads every stored checkpoint and pending write through
the saver's public ``list`` (any saver: InMemorySaver, SqliteSaver, PostgresSaver...;
:func:`acollect_blobs` reads async savers through ``alist``), and every item of the given
LangGraph stores, gathers the blob keys their references name, and deletes the other blobs.
Nothing here reads a saver's tables or attributes: only its public API.

Safe while other threads and processes write: a blob written (or re-written, which
refreshes its age) less than ``grace`` seconds ago is never deleted, so the blobs of a
node that has saved its handle but whose checkpoint is not committed yet survive. A
running graph's nodes re-save (refresh) every chunk of the handle they write. The age is
checked by the blob store at the moment of deletion, in one step with it per key
(``BlobStore.delete(keys, older_than=grace)``: a conditional ``DELETE`` in SQL, the store's
lock in memory, the shard's lock file in a folder), so a blob refreshed after the scan
that found it unreferenced is kept, not lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


def referenced_blobs(savers: Iterable[Any] = (), stores: Iterable[Any] = ()) -> set[str]:
    """Blob keys the references in every checkpoint/pending write of ``savers`` and item of ``stores`` name.

    Savers are read with their sync ``list`` (an async saver: :func:`acollect_blobs`).
    """
    found: set[str] = set()
    for saver in savers:
        for tup in saver.list(None):
            _walk_tuple(tup, found)
    for store in stores:
        for value in _store_items(store):
            _walk(value, found)
    return found


def _sweep(blobs: Any, live: set[str], grace: float) -> int:
    """Delete the blobs of ``blobs`` outside ``live`` written at least ``grace`` seconds ago; how many.

    The store checks the age when it deletes (not here beforehand), so a refresh in between keeps the blob.
    """
    store = getattr(blobs, "blobs", blobs)
    if not isinstance(store, BlobStore):
        raise InvalidArgumentError(f"collect_blobs needs a BlobStore or HandleStore, got {type(blobs).__name__}")
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise InvalidArgumentError(f"grace must be seconds >= 0, got {grace!r}")
    return store.delete([key for key in store.keys() if key not in live], older_than=grace)


def collect_blobs(
    blobs: Any, savers: Iterable[Any] = (), stores: Iterable[Any] = (), grace: float = DEFAULT_GRACE_S
) -> int:
    """Delete blobs of ``blobs`` (a BlobStore or HandleStore) no reference in ``savers``/``stores`` names.

    Every saver and store whose checkpoints refer to this blob store must be passed:
    a blob only they referenced would be collected. Returns the number of blobs deleted.
    """
    return _sweep(blobs, referenced_blobs(list(savers), list(stores)), grace)


async def acollect_blobs(
    blobs: Any, savers: Iterable[Any] = (), stores: Iterable[Any] = (), grace: float = DEFAULT_GRACE_S
) -> int:
    """:func:`collect_blobs` for async savers (``AsyncSqliteSaver``, ``AsyncPostgresSaver``), read with ``alist``.

    ``stores`` are read with their sync API.
    """
    found: set[str] = set()
    for saver in savers:
        async for tup in saver.alist(None):
            _walk_tuple(tup, found)
    return _sweep(blobs, found | referenced_blobs((), list(stores)), grace)


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
