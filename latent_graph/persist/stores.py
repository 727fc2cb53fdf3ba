"""Chunk stores: where content-addressed handle chunks live (in memory, or in the checkpoint's SQLite file).

A :class:`ChunkStore` is a tiny key -> bytes map; keys are sha256 of the bytes,
so writing the same chunk twice stores it once.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["ChunkStore", "InMemoryChunkStore", "SqliteChunkStore"]


# ------------------------------------------------------------ chunk stores
@runtime_checkable
class ChunkStore(Protocol):
    """Append-only content-addressed bytes: ``key -> bytes``. Must be thread-safe."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (a no-op when the key is present)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""
        ...

    def __contains__(self, key: object) -> bool: ...

    @property
    def nbytes(self) -> int:
        """Total bytes stored (chunk payloads only)."""
        ...


class InMemoryChunkStore:
    """A dict-backed :class:`ChunkStore` (lives as long as the process)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._data.setdefault(key, bytes(data))

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> list[str]:
        """Every stored key."""
        return list(self._data)

    def delete(self, keys: list[str]) -> None:
        """Drop chunks (garbage collection; see :mod:`latent_graph.persist.collect`)."""
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in list(self._data.values()))


class SqliteChunkStore:
    """A :class:`ChunkStore` in a SQLite table (``latent_chunks`` by default).

    Args:
        path_or_conn: A database path (a connection is opened with
            ``check_same_thread=False``) or an open ``sqlite3.Connection``, e.g.
            the one a ``SqliteSaver`` uses, to keep chunks in the same file.
        lock: Lock guarding the connection. Pass the saver's lock when sharing
            its connection (it must be reentrant, see :func:`sqlite_checkpointer`).
        table: Table name.
    """

    def __init__(
        self,
        path_or_conn: str | Path | sqlite3.Connection,
        *,
        lock: Any = None,
        table: str = "latent_chunks",
    ) -> None:
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        if isinstance(path_or_conn, sqlite3.Connection):
            self.conn = path_or_conn
        else:
            self.conn = sqlite3.connect(str(path_or_conn), check_same_thread=False)
        self.lock = lock if lock is not None else threading.RLock()
        self.table = table
        self._known: set[str] = set()
        with self.lock:
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
            self.conn.commit()

    def put(self, key: str, data: bytes) -> None:
        if key in self._known:
            return
        with self.lock:
            self.conn.execute(f"INSERT OR IGNORE INTO {self.table} (key, data) VALUES (?, ?)", (key, bytes(data)))
            self.conn.commit()
        self._known.add(key)

    def get(self, key: str) -> bytes | None:
        with self.lock:
            row = self.conn.execute(f"SELECT data FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def __contains__(self, key: object) -> bool:
        if key in self._known:
            return True
        with self.lock:
            row = self.conn.execute(f"SELECT 1 FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self.lock:
            return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def keys(self) -> list[str]:
        """Every stored key."""
        with self.lock:
            return [str(r[0]) for r in self.conn.execute(f"SELECT key FROM {self.table}").fetchall()]

    def delete(self, keys: list[str]) -> None:
        """Drop chunks (garbage collection; see :mod:`latent_graph.persist.collect`)."""
        with self.lock:
            self.conn.executemany(f"DELETE FROM {self.table} WHERE key = ?", [(k,) for k in keys])
            self.conn.commit()
        self._known.difference_update(keys)

    @property
    def nbytes(self) -> int:
        with self.lock:
            row = self.conn.execute(f"SELECT COALESCE(SUM(LENGTH(data)), 0) FROM {self.table}").fetchone()
        return int(row[0])
