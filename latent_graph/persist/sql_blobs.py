"""Blob stores in a SQL table ``latent_blobs`` (key, data, written): :class:`SqlBlobStore` and its SQLite backend.

The PostgreSQL backend is :class:`~latent_graph.persist.pg_blobs.PostgresBlobStore` (extra ``postgres``).
Every statement names its key as a parameter after :func:`~latent_graph.persist.blobs.check_key` has
checked it: a malformed key never reaches a database driver.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latent_graph.persist.blobs import check_key

__all__ = ["SqlBlobStore", "SqliteBlobStore"]


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

    def delete(self, keys: Iterable[str], before: float = math.inf) -> int:
        keys = [check_key(k) for k in keys]  # one conditional statement per key: check and drop are one step
        return self._write("DELETE FROM latent_blobs WHERE key = ? AND written <= ?", [(k, before) for k in keys])

    def touch(self, keys: Iterable[str]) -> bool:
        keys = [check_key(k) for k in keys]
        now = time.time()
        return self._write("UPDATE latent_blobs SET written = ? WHERE key = ?", [(now, k) for k in keys]) == len(keys)

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
