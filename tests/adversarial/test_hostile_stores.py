"""Issue 32 item 4: a folder blob store that cannot be walked out of, and every store safe under concurrent writers.

A symlink (shard directory, blob, lock file, anywhere in the root, the root itself swapped), a hard link or a FIFO
under the root is refused with :class:`BlobStoreError` before anything outside the root is read or written.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from latent_graph.errors import BlobStoreError
from latent_graph.persist import FolderBlobStore, MemoryBlobStore, SqliteBlobStore


def blob(tag: str) -> tuple[str, bytes]:
    data = f"blob {tag}".encode() * 50
    return hashlib.sha256(data).hexdigest(), data


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "root")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path / "outside"


def every_operation(store: FolderBlobStore, key: str, data: bytes) -> list[Any]:
    return [
        lambda: store.put(key, data),
        lambda: store.get(key),
        lambda: key in store,
        lambda: store.age(key),
        lambda: store.delete([key]),
        store.keys,
        lambda: store.nbytes,
    ]


def test_a_symlinked_shard_directory_is_refused(store: FolderBlobStore, outside: Path) -> None:
    key, data = blob("shard")
    (store.root / key[:2]).symlink_to(outside, target_is_directory=True)
    for op in every_operation(store, key, data):
        with pytest.raises(BlobStoreError, match="link"):
            op()
    assert list(outside.iterdir()) == []  # save() wrote nothing outside the root


def test_a_symlinked_blob_file_is_refused(store: FolderBlobStore, outside: Path) -> None:
    key, data = blob("file")
    secret = outside / "secret"
    secret.write_bytes(b"not yours")
    os.utime(secret, (1000.0, 1000.0))
    (store.root / key[:2]).mkdir()
    (store.root / key[:2] / key).symlink_to(secret)
    for op in every_operation(store, key, data):
        with pytest.raises(BlobStoreError, match="link"):
            op()
    assert secret.read_bytes() == b"not yours" and secret.stat().st_mtime == 1000.0 and secret.exists()


def test_a_symlinked_lock_file_is_refused(store: FolderBlobStore, outside: Path) -> None:
    key, data = blob("lock")
    (store.root / key[:2]).mkdir()
    (store.root / key[:2] / ".lock").symlink_to(outside / "created")
    for op in (lambda: store.put(key, data), lambda: store.delete([key])):
        with pytest.raises(BlobStoreError, match="link"):
            op()
    assert not (outside / "created").exists()


def test_a_symlink_anywhere_in_the_root_or_the_root_swapped_is_refused(store: FolderBlobStore, outside: Path) -> None:
    key, data = blob("root")
    store.put(key, data)
    (store.root / "elsewhere").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BlobStoreError, match="link"):
        store.keys()
    (store.root / "elsewhere").unlink()
    assert store.keys() == [key]
    real = store.root.with_name("moved")
    store.root.rename(real)
    store.root.symlink_to(real, target_is_directory=True)  # the root itself swapped for a link
    for op in every_operation(store, key, data):
        with pytest.raises(BlobStoreError, match="root"):
            op()


def test_hard_links_and_fifos_are_refused_without_blocking(store: FolderBlobStore, outside: Path) -> None:
    key, data = blob("hard")
    secret = outside / "secret"
    secret.write_bytes(data)
    (store.root / key[:2]).mkdir()
    os.link(secret, store.root / key[:2] / key)
    with pytest.raises(BlobStoreError, match="not a plain file"):
        store.get(key)
    fifo_key, fifo_data = blob("fifo")
    (store.root / fifo_key[:2]).mkdir(exist_ok=True)
    os.mkfifo(store.root / fifo_key[:2] / fifo_key)
    for op in (lambda: store.get(fifo_key), lambda: store.put(fifo_key, fifo_data), lambda: fifo_key in store):
        with pytest.raises(BlobStoreError, match="not a plain file"):
            op()  # O_NONBLOCK: a read of a FIFO would wait for a writer forever


def hammer(kind: str, where: Any, seed: int, rounds: int) -> list[str]:
    """Puts, gets and deletes of 8 shared keys; what went wrong (a torn or foreign read, a put not readable)."""
    store = where if kind == "memory" else FolderBlobStore(where) if kind == "folder" else SqliteBlobStore(where)
    keys = dict(blob(f"shared {i}") for i in range(8))
    problems = []
    for r in range(rounds):
        key = list(keys)[(seed * 7 + r) % 8]
        if r % 5 == 4:
            store.delete([key])
            continue
        store.put(key, keys[key])
        got = store.get(key)
        if got is not None and got != keys[key]:
            problems.append(f"torn read of {key[:8]}")
        if r % 7 == 0 and not set(store.keys()) <= set(keys):
            problems.append("a foreign key listed")
    return problems


def _in_process(queue: Any, kind: str, where: Any, seed: int) -> None:
    queue.put(hammer(kind, where, seed, 300))


@pytest.mark.parametrize("kind", ["memory", "folder", "sqlite"])
@pytest.mark.reliability("fault")
def test_every_operation_is_safe_under_concurrent_writers(kind: str, tmp_path: Path) -> None:
    where: Any = {"memory": MemoryBlobStore(), "folder": tmp_path / "f", "sqlite": str(tmp_path / "b.db")}[kind]
    if kind == "sqlite":
        SqliteBlobStore(where).close()  # the table, before the writers race to make it
    problems: list[str] = []
    threads = [threading.Thread(target=lambda s=s: problems.extend(hammer(kind, where, s, 300))) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if kind != "memory":
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_in_process, args=(queue, kind, where, s)) for s in range(4)]
        for p in procs:
            p.start()
        for _ in procs:
            problems += queue.get(timeout=300)
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
    assert not problems, problems[:5]
    store = where if kind == "memory" else FolderBlobStore(where) if kind == "folder" else SqliteBlobStore(where)
    for key in store.keys():
        assert hashlib.sha256(store.get(key) or b"").hexdigest() == key
    if kind == "folder":
        assert not [p for p in Path(where).rglob(".tmp-*")]  # no temp file left behind


pytestmark = pytest.mark.reliability("attack")  # counted in the reliability summary (tests/conftest.py)
