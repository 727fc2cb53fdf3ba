"""A :class:`~latent_graph.persist.blobs.BlobStore` in a dict: tests and single-process runs."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

from latent_graph.persist.blobs import check_key

__all__ = ["MemoryBlobStore"]


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
        with self._lock:
            return list(self._data)

    def touch(self, keys: Iterable[str]) -> bool:
        keys, now = [check_key(k) for k in keys], time.time()
        with self._lock:
            for key in keys:
                if key in self._times:
                    self._times[key] = now
            return all(key in self._times for key in keys)

    def delete(self, keys: Iterable[str], before: float = math.inf) -> int:
        keys, dropped = [check_key(k) for k in keys], 0
        with self._lock:  # the lock ``put`` takes: check and drop are one step
            for key in keys:
                written = self._times.get(key)
                if written is not None and written <= before:
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
