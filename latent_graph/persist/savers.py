"""Ready-made LangGraph checkpointers for latent graphs, and a byte counter for what they store.

Use :func:`memory_checkpointer` or :func:`sqlite_checkpointer` (both use
:class:`~latent_graph.persist.serializer.LatentSerializer`), and
:func:`checkpoint_nbytes` to measure what a checkpointer actually stores.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph.errors import CheckpointFileError, CheckpointSerializerError
from latent_graph.persist.collect import collect_chunks
from latent_graph.persist.serializer import LatentSerializer
from latent_graph.persist.stores import InMemoryChunkStore, SqliteChunkStore

__all__ = [
    "LatentMemorySaver",
    "LatentSqliteSaver",
    "checkpoint_nbytes",
    "latent_checkpointer",
    "memory_checkpointer",
    "sqlite_checkpointer",
]


# ---------------------------------------------------------- savers
class LatentMemorySaver(InMemorySaver):
    """``InMemorySaver`` that collects unreferenced handle chunks when a thread is deleted."""

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        collect_chunks(self)


class LatentSqliteSaver(SqliteSaver):
    """``SqliteSaver`` that collects unreferenced handle chunks when a thread is deleted.

    A damaged database file (SQLite's plain ``DatabaseError``: "malformed", "not a database")
    is reported as :class:`CheckpointFileError` by reads and writes; locking and other
    operational errors pass through unchanged.
    """

    def delete_thread(self, thread_id: str) -> None:
        with _named_damage(self):
            super().delete_thread(thread_id)
        collect_chunks(self)

    def get_tuple(self, config: Any) -> Any:
        with _named_damage(self):
            return super().get_tuple(config)

    def list(self, *args: Any, **kwargs: Any) -> Any:
        with _named_damage(self):
            yield from super().list(*args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        with _named_damage(self):
            return super().put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        with _named_damage(self):
            super().put_writes(*args, **kwargs)


@contextmanager
def _named_damage(saver: SqliteSaver) -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # locked, integrity... : not damage
            raise
        raise CheckpointFileError(f"checkpoint database is damaged ({exc}); restore it from a backup "
                                  "or start a new file") from None


# ---------------------------------------------------------- constructors
def memory_checkpointer(
    *, device: str | Any | None = None, allowed_types: Iterable[type | tuple[str, ...]] = ()
) -> InMemorySaver:
    """An ``InMemorySaver`` whose handles go to an :class:`InMemoryChunkStore`.

    ``delete_thread`` also deletes the chunks only that thread used; see
    :func:`~latent_graph.persist.collect.prune` for old checkpoints.

    Loading is strict: see :class:`LatentSerializer` (``allowed_types`` registers your own state types).
    """
    return LatentMemorySaver(serde=LatentSerializer(InMemoryChunkStore(), device=device, allowed_types=allowed_types))


def sqlite_checkpointer(
    path: str | Path, *, device: str | Any | None = None, allowed_types: Iterable[type | tuple[str, ...]] = ()
) -> SqliteSaver:
    """A ``SqliteSaver`` on ``path`` whose handle chunks live in the same file.

    The connection is opened with ``check_same_thread=False`` (LangGraph writes
    from worker threads) and the saver and chunk store share one reentrant lock:
    ``SqliteSaver.put_writes`` serializes values while holding its lock, and
    serializing a handle writes chunks through the same connection. Close with
    ``saver.conn.close()``. ``delete_thread`` also deletes the chunks only that
    thread used.

    Args:
        path: SQLite file (or ``":memory:"``).
        device: Device loaded handles are put on; CPU when None.
        allowed_types: Your own classes checkpoints may rebuild (strict loading, see
            :class:`LatentSerializer`).
    """
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # reads the header and schema: a damaged file fails here
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CheckpointFileError(f"checkpoint file {path} is damaged or not a SQLite database ({exc})") from None
    saver = LatentSqliteSaver(conn)
    return _with_sqlite_chunks(saver, device, allowed_types)


def _with_sqlite_chunks(
    saver: SqliteSaver, device: str | Any | None, allowed_types: Iterable[type | tuple[str, ...]] = ()
) -> SqliteSaver:
    """Give ``saver`` a LatentSerializer whose chunks share its connection and one reentrant lock."""
    lock = threading.RLock()
    saver.serde = LatentSerializer(SqliteChunkStore(saver.conn, lock=lock), device=device, allowed_types=allowed_types)
    saver.lock = lock  # type: ignore[assignment]
    return saver


def latent_checkpointer(checkpointer: Any, *, device: str | Any | None = None) -> Any:
    """``checkpointer`` made able to store latent handles; what to pass to ``builder.compile``.

    LangGraph's default serializer cannot store a :class:`LatentHandle` (it fails with a raw
    msgpack ``TypeError``). This installs :class:`LatentSerializer` (a ``JsonPlusSerializer``
    superset, so checkpoints already written stay readable) on a plain ``InMemorySaver`` or
    ``SqliteSaver`` through their public ``serde`` attribute; a saver that already has one
    is returned as is, and ``None`` stays ``None``. Prebuilt graphs call it for you; a
    hand-built graph does ``builder.compile(checkpointer=latent_checkpointer(InMemorySaver()))``.

    Raises:
        CheckpointSerializerError: For another saver type, naming the calls to use instead.
    """
    if checkpointer is None or isinstance(getattr(checkpointer, "serde", None), LatentSerializer):
        return checkpointer
    if isinstance(checkpointer, InMemorySaver):
        checkpointer.serde = LatentSerializer(InMemoryChunkStore(), device=device)  # strict loading too
    elif isinstance(checkpointer, SqliteSaver):
        _with_sqlite_chunks(checkpointer, device)
    else:
        raise CheckpointSerializerError(
            f"a {type(checkpointer).__name__} cannot store latent handles with its serializer; use "
            "latent_graph.persist.memory_checkpointer() or latent_graph.persist.sqlite_checkpointer(path), "
            "or construct it with serde=latent_graph.persist.LatentSerializer(chunk_store)"
        )
    return checkpointer


# -------------------------------------------------------------- measuring
def _typed_len(entry: Any) -> int:
    """Bytes in a stored ``(type, bytes)`` pair, or nested tuples of them."""
    if isinstance(entry, (bytes, bytearray, memoryview)):
        return len(entry)
    if isinstance(entry, tuple):
        return sum(_typed_len(x) for x in entry)
    return 0


def _memory_nbytes(saver: InMemorySaver) -> int:
    total = 0
    for namespaces in list(saver.storage.values()):
        for checkpoints in list(namespaces.values()):
            total += sum(_typed_len(entry) for entry in list(checkpoints.values()))
    total += sum(_typed_len(v) for v in list(saver.blobs.values()))
    for writes in list(saver.writes.values()):
        total += sum(_typed_len(w) for w in list(writes.values()))
    return total


def _sqlite_nbytes(saver: SqliteSaver) -> int:
    with saver.cursor(transaction=False) as cur:
        ckpt = cur.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()[0]
        writes = cur.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()[0]
    return int(ckpt) + int(writes)


def checkpoint_nbytes(checkpointer: InMemorySaver | SqliteSaver) -> int:
    """Bytes a checkpointer actually stores: checkpoint/blob/write payloads + handle chunks.

    Counts serialized payloads (not SQLite page overhead or Python object
    overhead), so the number compares directly with ``LatentHandle.nbytes``.

    Raises:
        TypeError: For checkpointers other than InMemorySaver and SqliteSaver.
    """
    if isinstance(checkpointer, InMemorySaver):
        total = _memory_nbytes(checkpointer)
    elif isinstance(checkpointer, SqliteSaver):
        total = _sqlite_nbytes(checkpointer)
    else:
        raise TypeError(f"checkpoint_nbytes supports InMemorySaver and SqliteSaver, not {type(checkpointer).__name__}")
    store = getattr(checkpointer.serde, "chunk_store", None)
    return total + (store.nbytes if store is not None else 0)
