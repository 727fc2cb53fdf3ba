"""A :class:`~latent_graph.persist.blobs.BlobStore` in PostgreSQL (beside a ``PostgresSaver``; extra ``postgres``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from latent_graph.persist.blobs import check_key

__all__ = ["PostgresBlobStore"]


class PostgresBlobStore:
    """Blobs in a table ``latent_blobs`` (key, data bytea, written): safe across processes and machines.

    Args:
        conn_string: A libpq connection string (the one the ``PostgresSaver`` uses).
    """

    def __init__(self, conn_string: str) -> None:
        import psycopg  # optional dependency: pip install -e ".[postgres]"

        self.conn: Any = psycopg.connect(conn_string, autocommit=True)
        self.lock = threading.Lock()
        with self.lock:
            self.conn.execute("CREATE TABLE IF NOT EXISTS latent_blobs (key TEXT PRIMARY KEY, data BYTEA NOT NULL, "
                              "written DOUBLE PRECISION NOT NULL)")

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self.lock:
            self.conn.execute("INSERT INTO latent_blobs (key, data, written) VALUES (%s, %s, %s) "
                              "ON CONFLICT (key) DO UPDATE SET written = EXCLUDED.written", (key, bytes(data), time.time()))

    def get(self, key: str) -> bytes | None:
        with self.lock:
            row = self.conn.execute("SELECT data FROM latent_blobs WHERE key = %s", (check_key(key),)).fetchone()
        return None if row is None else bytes(row[0])

    def __contains__(self, key: object) -> bool:
        with self.lock:
            return self.conn.execute("SELECT 1 FROM latent_blobs WHERE key = %s", (key,)).fetchone() is not None

    def keys(self) -> list[str]:
        with self.lock:
            return [str(r[0]) for r in self.conn.execute("SELECT key FROM latent_blobs").fetchall()]

    def delete(self, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                self.conn.execute("DELETE FROM latent_blobs WHERE key = %s", (key,))

    def age(self, key: str) -> float | None:
        with self.lock:
            row = self.conn.execute("SELECT written FROM latent_blobs WHERE key = %s", (key,)).fetchone()
        return None if row is None else time.time() - float(row[0])

    @property
    def nbytes(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM latent_blobs").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __repr__(self) -> str:
        return "PostgresBlobStore(...)"
