"""Blob stores: where the tensors behind handle references live (content-addressed safetensors chunks).

Graph state holds a small JSON reference per handle (:mod:`latent_graph.persist.refs`);
the chunks it names live in a :class:`BlobStore`. Keys are the sha256 hex of the
bytes, so a segment shared by successive handles is stored once, whatever saver
holds the references. Every method taking a key checks it (:func:`check_key`, ``[0-9a-f]{64}``)
before any file or row is touched: a reference cannot name a path outside its store, and a
malformed key never reaches a database driver.

- :class:`FolderBlobStore`: one file per blob under a folder (the default, under the
  project cache dir: :func:`default_blob_folder`); atomic writes, safe across processes.
- :class:`SqliteBlobStore`: a table in a SQLite file (one file beside a ``SqliteSaver``).
- :class:`MemoryBlobStore`: a dict (tests, a single process).
- :class:`SqlBlobStore`: the SQL the table-backed stores share (SQLite here, PostgreSQL in ``pg_blobs.py``).

Every store records when a blob was last written (:meth:`BlobStore.age`), so
garbage collection (:mod:`latent_graph.persist.gc`) can spare blobs a running
graph has just written but not yet checkpointed. :meth:`BlobStore.delete` checks that age
and drops the blob in one step per key, atomic with respect to a concurrent ``put`` of the
same key (a check-then-delete in two steps would drop a blob a writer refreshed in between).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from filelock import FileLock

from latent_graph.errors import HandleRefError
from latent_graph.paths import cache_dir

__all__ = [
    "BlobStore",
    "FolderBlobStore",
    "MemoryBlobStore",
    "SqlBlobStore",
    "SqliteBlobStore",
    "check_key",
    "default_blob_folder",
]

_KEY = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: Any) -> str:
    """``key`` if it is a blob key (64 lowercase hex chars); else :class:`HandleRefError`."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise HandleRefError(
            f"{str(key)[:80]!r} is not a blob key (64 hex chars); a reference cannot name "
            "anything outside its blob store"
        )
    return key


def _cutoff(older_than: float) -> float:
    """The latest write time (``time.time()`` seconds) a blob dropped by ``delete(older_than=...)`` may have."""
    return time.time() - older_than if older_than > 0 else math.inf


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed bytes: ``sha256 hex -> bytes``. Thread-safe; writing a key twice stores it once.

    Every method taking a key raises :class:`~latent_graph.errors.HandleRefError` for one that is not a blob key
    (:func:`check_key`), before touching anything.
    """

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (refreshes its age when already present)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def keys(self) -> list[str]:
        """Every stored key."""
        ...

    def delete(self, keys: Iterable[str], older_than: float = 0.0) -> int:
        """Drop those of ``keys`` last written at least ``older_than`` seconds ago (0: whatever their age).

        For each key the age check and the drop are one step, atomic with respect to a concurrent
        ``put`` of that key: a ``put`` either refreshes the blob before the check (it is kept) or
        writes it anew after the drop, so a writer never ends with its key missing. Returns how
        many blobs were dropped.
        """
        ...

    def age(self, key: str) -> float | None:
        """Seconds since ``key`` was last written, None if absent."""
        ...

    @property
    def nbytes(self) -> int:
        """Total payload bytes stored."""
        ...


def default_blob_folder() -> Path:
    """``<cache dir>/handles``: where :class:`FolderBlobStore` keeps blobs by default."""
    return cache_dir() / "handles"


class MemoryBlobStore:
    """A dict-backed :class:`BlobStore` (lives as long as the process).

    Args:
        max_bytes: If set, the oldest blobs are dropped once the store holds more (for graphs run
            without a checkpointer, whose references only live for one invocation).
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._data: dict[str, bytes] = {}
        self._times: dict[str, float] = {}
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self._size = 0

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._lock:
            if key not in self._data:
                self._data[key] = bytes(data)
                self._size += len(data)
            self._times[key] = time.time()
            while self.max_bytes is not None and self._size > self.max_bytes and len(self._data) > 1:
                oldest = min(self._times, key=self._times.__getitem__)
                self._size -= len(self._data.pop(oldest))
                self._times.pop(oldest)

    def get(self, key: str) -> bytes | None:
        return self._data.get(check_key(key))

    def __contains__(self, key: object) -> bool:
        return check_key(key) in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def delete(self, keys: Iterable[str], older_than: float = 0.0) -> int:
        keys, cutoff, dropped = [check_key(k) for k in keys], _cutoff(older_than), 0
        with self._lock:  # the lock ``put`` takes: check and drop are one step
            for key in keys:
                written = self._times.get(key)
                if written is not None and written <= cutoff:
                    self._size -= len(self._data.pop(key))
                    del self._times[key]
                    dropped += 1
        return dropped

    def age(self, key: str) -> float | None:
        t = self._times.get(check_key(key))
        return None if t is None else time.time() - t

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in list(self._data.values()))


class FolderBlobStore:
    """A :class:`BlobStore` in a folder: ``<root>/<key[:2]>/<key>``, written atomically (temp file + rename).

    A blob's age is its file's mtime; ``put`` of a present blob refreshes it (``utime``). Refreshing
    and ``delete``'s check-mtime-then-unlink both run under the shard's lock file
    (``<root>/<key[:2]>/.lock``, a ``filelock`` lock: across threads and processes), so a refresh
    lands either before the check (the blob is kept) or after the unlink (``utime`` finds no file
    and ``put`` writes it anew). Writing a new blob needs no lock: its temp file is renamed into
    place with a fresh mtime, and an absent file is nothing ``delete`` could drop. Readers take no
    lock and never see a blob that is not collected go missing, not even for a moment (unlike a
    rename-aside-then-restore scheme).

    Args:
        root: The folder (created); :func:`default_blob_folder` when None.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root if root is not None else default_blob_folder()).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        key = check_key(key)
        return self.root / key[:2] / key

    @staticmethod
    def _lock(shard: Path) -> FileLock:
        return FileLock(shard / ".lock", poll_interval=0.001)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        with self._lock(path.parent):
            try:
                os.utime(path)  # a fresh write of a shared blob: GC spares it again for a while
                return
            except FileNotFoundError:
                pass
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(data))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def __contains__(self, key: object) -> bool:
        return self._path(check_key(key)).exists()

    def keys(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("??/*") if _KEY.match(p.name))

    def delete(self, keys: Iterable[str], older_than: float = 0.0) -> int:
        shards: dict[Path, list[Path]] = {}
        for key in keys:
            path = self._path(key)
            shards.setdefault(path.parent, []).append(path)
        cutoff, dropped = _cutoff(older_than), 0
        for shard, paths in shards.items():
            if not shard.is_dir():
                continue  # none of its blobs exists
            with self._lock(shard):  # the lock ``put`` refreshes under: check and unlink are one step
                for path in paths:
                    try:
                        if path.stat().st_mtime <= cutoff:
                            path.unlink()
                            dropped += 1
                    except FileNotFoundError:
                        pass
        return dropped

    def age(self, key: str) -> float | None:
        try:
            return time.time() - self._path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("??/*") if _KEY.match(p.name))

    def __repr__(self) -> str:
        return f"FolderBlobStore({str(self.root)!r})"


class SqlBlobStore:
    """The SQL of a :class:`BlobStore` in a table ``latent_blobs`` (key, data, written), shared by its backends.

    A backend (:class:`SqliteBlobStore`, :class:`~latent_graph.persist.pg_blobs.PostgresBlobStore`)
    opens the connection, creates the table and says how its driver spells a parameter
    (``mark``) and whether writes need a ``commit`` (``autocommit``). Statements are written
    with ``?`` and run with the backend's mark.

    Args:
        conn: A DB-API connection whose ``execute`` returns a cursor (``sqlite3``, ``psycopg``).
        mark: The driver's parameter placeholder (``?`` for sqlite3, ``%s`` for psycopg).
        autocommit: The connection commits every statement itself (no ``commit`` after writes).
    """

    def __init__(self, conn: Any, mark: str = "?", autocommit: bool = False) -> None:
        self.conn, self.mark, self.autocommit = conn, mark, autocommit
        self.lock = threading.RLock()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql.replace("?", self.mark), params)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """Run ``sql`` once per row in one transaction; how many rows it changed."""
        with self.lock:
            changed = sum(self._run(sql, params).rowcount for params in rows)
            if not self.autocommit:
                self.conn.commit()
        return changed

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        self._write(
            "INSERT INTO latent_blobs (key, data, written) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET written = excluded.written",
            [(key, bytes(data), time.time())],
        )

    def get(self, key: str) -> bytes | None:
        with self.lock:
            row = self._run("SELECT data FROM latent_blobs WHERE key = ?", (check_key(key),)).fetchone()
        return None if row is None else bytes(row[0])

    def __contains__(self, key: object) -> bool:
        with self.lock:
            return self._run("SELECT 1 FROM latent_blobs WHERE key = ?", (check_key(key),)).fetchone() is not None

    def keys(self) -> list[str]:
        with self.lock:
            return [str(r[0]) for r in self._run("SELECT key FROM latent_blobs").fetchall()]

    def delete(self, keys: Iterable[str], older_than: float = 0.0) -> int:
        cutoff = _cutoff(older_than)  # one conditional statement per key: check and drop are one step
        return self._write(
            "DELETE FROM latent_blobs WHERE key = ? AND written <= ?", [(check_key(k), cutoff) for k in keys]
        )

    def age(self, key: str) -> float | None:
        with self.lock:
            row = self._run("SELECT written FROM latent_blobs WHERE key = ?", (check_key(key),)).fetchone()
        return None if row is None else time.time() - float(row[0])

    @property
    def nbytes(self) -> int:
        with self.lock:
            return int(self._run("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM latent_blobs").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


class SqliteBlobStore(SqlBlobStore):
    """A :class:`BlobStore` in a SQLite table ``latent_blobs`` (its own connection; WAL, safe across processes).

    Args:
        path: The database file (may be the file a ``SqliteSaver`` uses).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        super().__init__(sqlite3.connect(self.path, check_same_thread=False, timeout=30))
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS latent_blobs (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
                "written REAL NOT NULL)"
            )
            self.conn.commit()
