"""A :class:`~latent_graph.persist.blobs.BlobStore` in PostgreSQL (beside a ``PostgresSaver``; extra ``postgres``)."""

from __future__ import annotations

from latent_graph.persist.sql_blobs import SqlBlobStore

__all__ = ["PostgresBlobStore"]


class PostgresBlobStore(SqlBlobStore):
    """Blobs in a table ``latent_blobs`` (key, data bytea, written): safe across processes and machines.

    The statements are :class:`~latent_graph.persist.sql_blobs.SqlBlobStore`'s, run with psycopg's ``%s``
    placeholder on an autocommit connection.

    Args:
        conn_string: A libpq connection string (the one the ``PostgresSaver`` uses).
    """

    def __init__(self, conn_string: str) -> None:
        import psycopg  # optional dependency: pip install -e ".[postgres]"

        super().__init__(psycopg.connect(conn_string, autocommit=True), mark="%s", autocommit=True)
        with self.lock:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS latent_blobs (key TEXT PRIMARY KEY, data BYTEA NOT NULL, "
                "written DOUBLE PRECISION NOT NULL)"
            )

    def __repr__(self) -> str:
        return "PostgresBlobStore(...)"
