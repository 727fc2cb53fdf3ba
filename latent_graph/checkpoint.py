"""LangGraph checkpointing for graphs whose state holds latent handles.

Why: LangGraph's default serializer rejects tensors, and its ``pickle_fallback``
executes code on load. :class:`LatentSerializer` is a ``JsonPlusSerializer``
(no pickle) that additionally knows :class:`~latent_graph.handle.LatentHandle`:
wherever a handle sits in what LangGraph asks it to serialize (a channel value,
inside dicts/lists/tuples, dataclasses, ``Send`` packets, pending writes, or the
whole checkpoint dict that ``SqliteSaver`` serializes in one piece) it is
replaced by a small marker holding its manifest, and its tensors go to a
:class:`ChunkStore` as content-addressed safetensors chunks (see
:mod:`latent_graph.serialize`).

LangGraph stores the live channel values at every superstep (SqliteSaver even
re-serializes all of them), plus each task's pending writes. A run's handles
share their prefix columns bitwise, so with chunks the shared cache prefix is
stored once, and total checkpoint bytes stay close to the final handle's bytes.

Use :func:`memory_checkpointer` or :func:`sqlite_checkpointer`, and
:func:`checkpoint_nbytes` to measure what a checkpointer actually stores.
"""

from __future__ import annotations

import copy
import dataclasses
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Send

from latent_graph.errors import HandleFormatError
from latent_graph.handle import LatentHandle
from latent_graph.serialize import handle_from_bytes, handle_from_store, handle_to_bytes, handle_to_store

__all__ = [
    "TYPE_TAG",
    "ChunkStore",
    "InMemoryChunkStore",
    "LatentSerializer",
    "SqliteChunkStore",
    "checkpoint_nbytes",
    "memory_checkpointer",
    "sqlite_checkpointer",
]

TYPE_TAG = "latent_graph.msgpack"
"""Type string of blobs that contain handle markers (msgpack underneath)."""

_MANIFEST = "__latent_graph_handle__"  # marker key: handle stored as chunks + manifest
_INLINE = "__latent_graph_handle_bytes__"  # marker key: handle stored whole, inline


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

    @property
    def nbytes(self) -> int:
        with self.lock:
            row = self.conn.execute(f"SELECT COALESCE(SUM(LENGTH(data)), 0) FROM {self.table}").fetchone()
        return int(row[0])


# -------------------------------------------------------------- serializer
class LatentSerializer(JsonPlusSerializer):
    """LangGraph serializer: JsonPlus (never pickle) + latent handles via safetensors.

    Values without handles are serialized exactly as ``JsonPlusSerializer()``
    does. Values containing handles get the type tag :data:`TYPE_TAG`: msgpack
    in which each handle is a marker dict holding its manifest's chunk key (or, with
    ``chunk_store=None``, its whole :func:`~latent_graph.serialize.handle_to_bytes`
    blob). Handles are found inside dicts, lists, tuples, dataclasses and
    ``Send`` packets; they come back as lists where msgpack makes lists anyway.

    Subclassing ``JsonPlusSerializer`` keeps LangGraph's strict-msgpack
    allowlist working (``with_msgpack_allowlist`` clones share the chunk store).

    Args:
        chunk_store: Where handle chunks go; None stores every handle whole,
            inline in each blob (no sharing: the naive cost).
        device: Device loaded handles are put on; CPU when None.
        **kwargs: Passed to ``JsonPlusSerializer`` (``pickle_fallback`` is refused).
    """

    def __init__(
        self,
        chunk_store: ChunkStore | None = None,
        *,
        device: str | Any | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("pickle_fallback", False):
            raise ValueError("LatentSerializer never uses pickle; drop pickle_fallback")
        super().__init__(pickle_fallback=False, **kwargs)
        self.chunk_store = chunk_store
        self.device = device
        # handle -> manifest key, so a handle serialized again (every superstep) is not re-chunked
        self._stored: weakref.WeakKeyDictionary[LatentHandle, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.handles_dumped = 0
        self.handle_bytes_dumped = 0  # sum of handle.nbytes over every handle serialized

    # ---- protocol
    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        encoded = self._encode(obj)
        if encoded is obj:
            return super().dumps_typed(obj)
        _, data = super().dumps_typed(encoded)
        return TYPE_TAG, data

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ != TYPE_TAG:
            return super().loads_typed(data)
        try:
            raw = super().loads_typed(("msgpack", payload))
            return self._decode(raw)
        except HandleFormatError:
            raise
        except Exception as exc:
            raise HandleFormatError(
                f"corrupt checkpoint blob holding latent handles ({len(payload)} bytes): {type(exc).__name__}: {exc}"
            ) from exc

    # ---- handles
    def _store(self, handle: LatentHandle) -> dict[str, Any]:
        with self._lock:
            self.handles_dumped += 1
            self.handle_bytes_dumped += handle.nbytes
        if self.chunk_store is None:
            return {_INLINE: handle_to_bytes(handle)}
        with self._lock:
            key = self._stored.get(handle)
        if key is None:
            store = self.chunk_store
            key = handle_to_store(handle, store.put, store.__contains__)
            with self._lock:
                self._stored[handle] = key
        return {_MANIFEST: key}

    def _load(self, marker: dict[str, Any]) -> LatentHandle:
        if _INLINE in marker:
            return handle_from_bytes(marker[_INLINE], device=self.device)
        if self.chunk_store is None:
            raise HandleFormatError("checkpoint refers to latent handle chunks but this serializer has no chunk store")
        key = marker[_MANIFEST]
        handle = handle_from_store(key, self.chunk_store.get, device=self.device)
        with self._lock:
            self._stored[handle] = key  # a resumed run re-serializes it without re-chunking
        return handle

    # ---- walking
    def _encode(self, obj: Any) -> Any:
        """``obj`` with handles replaced by markers; ``obj`` itself when it holds none."""
        return _walk(obj, lambda x: self._store(x) if isinstance(x, LatentHandle) else None)

    def _decode(self, obj: Any) -> Any:
        def visit(x: Any) -> Any:
            if isinstance(x, dict) and len(x) == 1 and (_MANIFEST in x or _INLINE in x):
                return self._load(x)
            return None

        return _walk(obj, visit)


def _walk(obj: Any, visit: Callable[[Any], Any]) -> Any:
    """Rebuild containers whose leaves ``visit`` replaces (it returns None to keep a leaf).

    Returns ``obj`` itself (same identity) when nothing was replaced.
    """
    hit = visit(obj)
    if hit is not None:
        return hit
    if isinstance(obj, dict):
        new = {k: _walk(v, visit) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else _same_type(obj, new)
    if isinstance(obj, (list, tuple)):
        items = [_walk(v, visit) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        if _is_namedtuple(obj):
            return type(obj)(*items)
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, Send):
        arg = _walk(obj.arg, visit)
        if arg is obj.arg:
            return obj
        return Send(obj.node, arg, timeout=getattr(obj, "timeout", None))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _walk_dataclass(obj, visit)
    return obj


def _same_type(old: dict[Any, Any], new: dict[Any, Any]) -> dict[Any, Any]:
    if type(old) is dict:
        return new
    try:
        return type(old)(new)
    except Exception:
        return new


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _walk_dataclass(obj: Any, visit: Callable[[Any], Any]) -> Any:
    changed = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        new = _walk(value, visit)
        if new is not value:
            changed[f.name] = new
    if not changed:
        return obj
    clone = copy.copy(obj)
    for name, value in changed.items():
        object.__setattr__(clone, name, value)  # works for frozen dataclasses too
    return clone


# ---------------------------------------------------------- constructors
def memory_checkpointer(*, device: str | Any | None = None) -> InMemorySaver:
    """An ``InMemorySaver`` whose handles go to an :class:`InMemoryChunkStore`."""
    return InMemorySaver(serde=LatentSerializer(InMemoryChunkStore(), device=device))


def sqlite_checkpointer(path: str | Path, *, device: str | Any | None = None) -> SqliteSaver:
    """A ``SqliteSaver`` on ``path`` whose handle chunks live in the same file.

    The connection is opened with ``check_same_thread=False`` (LangGraph writes
    from worker threads) and the saver and chunk store share one reentrant lock:
    ``SqliteSaver.put_writes`` serializes values while holding its lock, and
    serializing a handle writes chunks through the same connection. Close with
    ``saver.conn.close()``.

    Args:
        path: SQLite file (or ``":memory:"``).
        device: Device loaded handles are put on; CPU when None.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False)
    lock = threading.RLock()
    saver = SqliteSaver(conn, serde=LatentSerializer(SqliteChunkStore(conn, lock=lock), device=device))
    saver.lock = lock  # type: ignore[assignment]
    return saver


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
