"""Garbage collection of handle blobs no checkpoint (or store item) refers to.

Why: graph state holds :class:`~latent_graph.persist.refs.HandleRef` references and the
blobs behind them are shared between checkpoints, threads and runs, so deleting a
thread (or pruning old checkpoints) with LangGraph's own saver API leaves its blobs
behind. :func:`collect_blobs` reads every stored checkpoint and pending write through
the saver's public ``list`` (any saver: InMemorySaver, SqliteSaver, PostgresSaver...),
and every item of the given LangGraph stores, gathers the blob keys their references
name, and deletes the other blobs.

Safe while other threads write: a blob written (or re-written, which refreshes its
age) less than ``grace`` seconds ago is never deleted, so the blobs of a node that has
saved its handle but whose checkpoint is not committed yet survive. A running graph's
nodes re-save (refresh) every chunk of the handle they write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from latent_graph.errors import InvalidArgumentError
from latent_graph.persist.blobs import BlobStore
from latent_graph.persist.refs import is_ref, ref_keys

__all__ = ["collect_blobs", "delete_thread", "referenced_blobs"]

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


def referenced_blobs(savers: Iterable[Any] = (), stores: Iterable[Any] = ()) -> set[str]:
    """Blob keys the references in every checkpoint/pending write of ``savers`` and item of ``stores`` name.

    Savers are read with their sync ``list`` (from async code: ``await asyncio.to_thread(...)``).
    """
    found: set[str] = set()
    for saver in savers:
        for tup in saver.list(None):
            _walk(tup.checkpoint.get("channel_values"), found)
            _walk([w[2] for w in tup.pending_writes or []], found)
    for store in stores:
        for value in _store_items(store):
            _walk(value, found)
    return found


def collect_blobs(blobs: Any, savers: Iterable[Any] = (), stores: Iterable[Any] = (),
                  grace: float = DEFAULT_GRACE_S) -> int:
    """Delete blobs of ``blobs`` (a BlobStore or HandleStore) no reference in ``savers``/``stores`` names.

    Every saver and store whose checkpoints refer to this blob store must be passed:
    a blob only they referenced would be collected. Returns the number of blobs deleted.
    """
    store = getattr(blobs, "blobs", blobs)
    if not isinstance(store, BlobStore):
        raise InvalidArgumentError(f"collect_blobs needs a BlobStore or HandleStore, got {type(blobs).__name__}")
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise InvalidArgumentError(f"grace must be seconds >= 0, got {grace!r}")
    live = referenced_blobs(list(savers), list(stores))
    garbage = []
    for key in store.keys():
        if key in live:
            continue
        age = store.age(key)
        if age is not None and age >= grace:
            garbage.append(key)
    store.delete(garbage)
    return len(garbage)


def delete_thread(saver: Any, thread_id: str, blobs: Any, *, others: Iterable[Any] = (), stores: Iterable[Any] = (),
                  grace: float = DEFAULT_GRACE_S) -> int:
    """``saver.delete_thread(thread_id)``, then collect the blobs nothing else refers to (``others``: further
    savers sharing the blob store). Returns the number of blobs deleted."""
    saver.delete_thread(thread_id)
    return collect_blobs(blobs, [saver, *others], stores, grace)
