"""Garbage collection racing a writer: a blob refreshed while ``collect_blobs`` runs is never lost.

Every backend (memory, folder, SQLite; PostgreSQL on a throwaway cluster, skipped where it cannot
start): a deterministic race (the refresh lands after the scan found the blob unreferenced and
old, right before the store deletes), the same race inside the folder store's delete (between its
mtime check and its unlink), and a threaded stress of a writer refreshing old blobs while
collections run back to back.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gc_harness import put_old
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


class SlowMark:
    """A saver whose listing takes a while: a writer puts a blob and commits a checkpoint the mark does not read."""

    def __init__(self, store: Any, key: str, data: bytes) -> None:
        self.store, self.key, self.data = store, key, data

    def list(self, config: Any) -> Iterator[Any]:
        time.sleep(0.05)  # the mark has started; clocks move on
        self.store.put(self.key, self.data)  # the writer's put, then its commit (after this listing)
        time.sleep(0.05)
        return iter(())


def test_a_blob_written_after_the_mark_started_survives_any_grace(store: Any) -> None:
    """The sweep spares what was written after the mark began, even with grace 0 and a mark slower than grace."""
    ((key, data), (old, _)) = put_old(store, 2).items()
    store.delete([key])
    assert collect_blobs(store, [SlowMark(store, key, data)], grace=0.0) == 1  # only the old unreferenced blob
    assert store.get(key) == data and old not in store


def test_gc_on_a_live_in_memory_saver_while_a_writer_adds_threads(interleaved: None) -> None:
    """``InMemorySaver.list(None)`` iterates its dict of threads: a writer adding one used to break the collection
    with a raw ``RuntimeError: dictionary changed size during iteration``."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver

    saver, store, done = InMemorySaver(), MemoryBlobStore(), threading.Event()
    blobs = put_old(store, 1)
    (key,) = blobs

    def writer() -> None:
        for i in range(3000):
            store.put(key, blobs[key])  # the write barrier: a put before the commit that names the blob
            cp = empty_checkpoint()
            cp["channel_values"] = {"handle": {"latent_graph_ref": 1, "digest": key, "chunks": []}}
            cp["channel_versions"] = {"handle": "1"}
            saver.put({"configurable": {"thread_id": f"t{i}", "checkpoint_ns": ""}}, cp, {}, {"handle": "1"})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    collections = 0
    while not done.is_set():
        collect_blobs(store, [saver], grace=GRACE)
        collections += 1
    thread.join()
    assert collections > 1 and key in store


pytestmark = pytest.mark.reliability("fault")  # counted in the reliability summary (tests/conftest.py)
