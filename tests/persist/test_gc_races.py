"""Garbage collection racing a writer: a blob refreshed while ``collect_blobs`` runs is never lost.

Every backend (memory, folder, SQLite; PostgreSQL on a throwaway cluster, skipped where it cannot
start): a deterministic race (the refresh lands after the scan found the blob unreferenced and
old, right before the store deletes), the same race inside the folder store's delete (between its
mtime check and its unlink), and a threaded stress of a writer refreshing old blobs while
collections run back to back.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

from latent_graph.persist import FolderBlobStore, MemoryBlobStore, SqliteBlobStore, collect_blobs

GRACE = 600.0
ROUNDS, BLOBS = 4, 200  # the stress: rounds of old blobs, half of them refreshed during collections
BACKENDS = ["memory", "folder", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store(request: Any, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryBlobStore()
    elif request.param == "folder":
        yield FolderBlobStore(tmp_path / "blobs")
    elif request.param == "sqlite":
        s = SqliteBlobStore(tmp_path / "blobs.db")
        yield s
        s.close()
    else:
        from latent_graph.persist.pg_blobs import PostgresBlobStore

        s = PostgresBlobStore(request.getfixturevalue("pg_url"))
        s.delete(s.keys())  # the cluster is shared by the module's tests
        yield s
        s.close()


def blob(i: int) -> tuple[str, bytes]:
    data = f"blob {i}".encode()
    return hashlib.sha256(data).hexdigest(), data


def put_old(store: Any, n: int, first: int = 0, age: float = 3600.0) -> dict[str, bytes]:
    """``n`` blobs last written ``age`` seconds ago (garbage to a collection with a shorter grace)."""
    blobs = dict(blob(i) for i in range(first, first + n))
    for key, data in blobs.items():
        store.put(key, data)
    then = time.time() - age
    if isinstance(store, MemoryBlobStore):
        store._times.update(dict.fromkeys(blobs, then))
    elif isinstance(store, FolderBlobStore):
        for key in blobs:
            os.utime(store.root / key[:2] / key, (then, then))
    else:
        with store.lock:
            for key in blobs:
                store._run("UPDATE latent_blobs SET written = ? WHERE key = ?", (then, key))
            if not store.autocommit:
                store.conn.commit()
    assert all(store.age(key) > GRACE for key in blobs)
    return blobs


def test_a_blob_refreshed_between_scan_and_delete_survives(store: Any, monkeypatch: Any) -> None:
    blobs = put_old(store, 3)
    refreshed, kept, garbage = list(blobs)
    delete = store.delete

    def refresh_then_delete(keys: list[str], **kw: Any) -> int:
        assert set(keys) == set(blobs) - {kept}  # the scan found both old unreferenced blobs garbage
        store.put(refreshed, blobs[refreshed])  # a writer re-saves a shared blob right now
        return delete(keys, **kw)

    monkeypatch.setattr(store, "delete", refresh_then_delete)
    memory = InMemoryStore()  # a LangGraph store item names `kept`; nothing names the other two
    memory.put(("memories",), "plan", {"handle": {"latent_graph_ref": 1, "digest": kept, "chunks": []}})
    assert collect_blobs(store, stores=[memory], grace=GRACE) == 1
    assert refreshed in store and store.get(refreshed) == blobs[refreshed] and store.age(refreshed) < GRACE
    assert kept in store and garbage not in store


def test_folder_refresh_between_mtime_check_and_unlink_survives(tmp_path: Path, monkeypatch: Any) -> None:
    """A writer thread refreshes the blob inside the folder store's delete, right before its unlink."""
    store = FolderBlobStore(tmp_path / "blobs")
    blobs = put_old(store, 1)
    ((key, data),) = blobs.items()
    unlink = os.unlink
    writers: list[threading.Thread] = []

    def unlink_after_a_refresh(path: Any, *, dir_fd: int | None = None) -> None:
        if path == key and not writers:  # the mtime check has passed: the blob is old
            writers.append(threading.Thread(target=store.put, args=(key, data)))
            writers[0].start()
            writers[0].join(0.3)  # with the shard locked the refresh waits for the unlink; else it lands now
        unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink_after_a_refresh)
    deleted = collect_blobs(store, grace=GRACE)
    writers[0].join()
    monkeypatch.undo()
    assert deleted == 1  # collected before the refresh, which then wrote it anew
    assert key in store and store.get(key) == data and store.age(key) < GRACE


def refresh_during_collections(store: Any, blobs: dict[str, bytes], order: list[str]) -> list[str]:
    """A writer thread re-saves the blobs ``order`` names while collections run back to back; what it refreshed."""
    refreshed: list[str] = []
    errors: list[BaseException] = []
    start, done = threading.Barrier(2), threading.Event()

    def writer() -> None:
        try:
            start.wait()
            for key in order:
                store.put(key, blobs[key])
                refreshed.append(key)
                time.sleep(0)  # let the collection run between refreshes
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    start.wait()
    while not done.is_set():
        collect_blobs(store, grace=GRACE)
    thread.join()
    collect_blobs(store, grace=GRACE)
    assert not errors, errors
    return refreshed


@pytest.fixture
def interleaved() -> Iterator[None]:
    """Threads switch every 10 µs, so the writer runs inside a collection, not only between two."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(switch)


def test_gc_loop_never_loses_a_blob_a_writer_refreshes(store: Any, interleaved: None) -> None:
    """Rounds of: old blobs; a writer refreshes half of them while collections run back to back."""
    rng = random.Random(0)
    for round_ in range(ROUNDS):
        blobs = put_old(store, BLOBS, first=round_ * BLOBS)
        order = rng.sample(list(blobs), BLOBS // 2)
        refreshed = refresh_during_collections(store, blobs, order)
        missing = [key for key in refreshed if key not in store]
        assert not missing, f"round {round_}: {len(missing)} refreshed blobs were collected"
        assert sorted(store.keys()) == sorted(order)  # every other old blob went
        store.delete(store.keys())
