"""The blob store Protocol: where the tensors behind handle references live (keyed safetensors chunks).

Graph state holds a small JSON reference per handle (:mod:`latent_graph.persist.refs`);
the chunks it names live in a :class:`BlobStore`. Keys are 64 hex chars (a keyed hash of the bytes, see
:mod:`latent_graph.persist.sealing`), so a segment shared by successive handles is stored once, whatever saver
holds the references. Every method taking a key checks it (:func:`check_key`, ``[0-9a-f]{64}``)
before any file or row is touched: a reference cannot name a path outside its store, and a
malformed key never reaches a database driver.

One file per backend: ``folder_blobs.py`` (:class:`~latent_graph.persist.folder_blobs.FolderBlobStore`, the
default), ``memory_blobs.py`` (a dict: tests, one process), ``sql_blobs.py`` (SQLite, and the SQL PostgreSQL's
``pg_blobs.py`` shares).

Every store records when a blob was last written (``time.time()``; :meth:`BlobStore.age`), so
garbage collection (:mod:`latent_graph.persist.gc`) can spare blobs a running
graph has just written but not yet checkpointed. :meth:`BlobStore.delete` checks that time
and drops the blob in one step per key, atomic with respect to a concurrent ``put`` of the
same key (a check-then-delete in two steps would drop a blob a writer refreshed in between).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from latent_graph.errors import HandleRefError

__all__ = ["KEY_PATTERN", "BlobStore", "check_key"]

KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: Any) -> str:
    """``key`` if it is a blob key (64 lowercase hex chars); else :class:`HandleRefError`."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise HandleRefError(
            f"{str(key)[:80]!r} is not a blob key (64 hex chars); a reference cannot name "
            "anything outside its blob store"
        )
    return key


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

    def delete(self, keys: Iterable[str], before: float = math.inf) -> int:
        """Drop those of ``keys`` last written at or before ``before`` (``time.time()`` seconds; default: any).

        For each key the check and the drop are one step, atomic with respect to a concurrent
        ``put`` of that key: a ``put`` either refreshes the blob before the check (it is kept) or
        writes it anew after the drop, so a writer never ends with its key missing. Returns how
        many blobs were dropped.
        """
        ...

    def touch(self, keys: Iterable[str]) -> bool:
        """Refresh the age of each of ``keys`` that is present, as a ``put`` of it would (atomic per key with respect
        to ``delete``); True if every key was present. A writer naming blobs it did not just ``put`` touches them
        before its checkpoint commits, so GC spares them."""
        ...

    def age(self, key: str) -> float | None:
        """Seconds since ``key`` was last written, None if absent."""
        ...

    @property
    def nbytes(self) -> int:
        """Total payload bytes stored."""
        ...
