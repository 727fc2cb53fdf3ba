"""Saving a handle already saved refreshes its blobs (``BlobStore.touch``), so GC spares them like fresh writes.

A node that passes a loaded handle on unchanged gets its known reference back without rewriting chunks; before
``touch`` that shortcut left the blobs' ages old, so a collection running before the new checkpoint committed
could drop blobs whose only other reference was in a thread being deleted.
"""

from __future__ import annotations

import os
import time

import pytest

from latent_graph.persist import FolderBlobStore, HandleStore, MemoryBlobStore, SqliteBlobStore, collect_blobs
from latent_graph.persist.keys import KeyRing

KEY = "k" * 40
STORES = {
    "memory": lambda tmp: MemoryBlobStore(),
    "folder": lambda tmp: FolderBlobStore(tmp / "blobs"),
    "sqlite": lambda tmp: SqliteBlobStore(tmp / "blobs.sqlite"),
}


def _age_everything(blobs, keys, seconds: float) -> None:
    """Make ``keys`` look written ``seconds`` ago (each backend's own clock field)."""
    then = time.time() - seconds
    if isinstance(blobs, MemoryBlobStore):
        for k in keys:
            blobs._times[k] = then
    elif isinstance(blobs, FolderBlobStore):
        for k in keys:
            os.utime(blobs.root / k[:2] / k, (then, then))
    else:
        blobs._write("UPDATE latent_blobs SET written = ? WHERE key = ?", [(then, k) for k in keys])


@pytest.mark.parametrize("kind", sorted(STORES))
def test_touch_refreshes_present_keys_and_reports_missing(kind, tmp_path):
    blobs = STORES[kind](tmp_path)
    a, b = "a" * 64, "b" * 64
    blobs.put(a, b"x")
    _age_everything(blobs, [a], 1000)
    assert blobs.age(a) > 900
    assert blobs.touch([a]) is True and blobs.age(a) < 60
    assert blobs.touch([a, b]) is False and b not in blobs  # touch never creates


@pytest.mark.parametrize("kind", sorted(STORES))
def test_resaving_a_known_handle_keeps_its_blobs_from_gc(kind, tmp_path, llama):
    blobs = STORES[kind](tmp_path)
    store = HandleStore(blobs, keys=KeyRing([KEY]))
    handle = llama.think(None, ["What is 2 plus 3?"], 1, agent="a")
    ref = store.save(handle)
    keys = [*ref["chunks"], ref["digest"]]
    _age_everything(blobs, keys, 1000)
    assert store.save(handle) == ref and store.saves == 1  # the shortcut: nothing rewritten
    assert all(blobs.age(k) < 60 for k in keys)  # ... but every blob it names is fresh again
    assert collect_blobs(blobs, [], grace=600) == 0  # no checkpoint names it yet: the grace period spares it
    assert all(k in blobs for k in keys)
    _age_everything(blobs, keys, 1000)
    blobs.delete([ref["chunks"][0]])  # collected meanwhile: the next save writes it again
    assert store.save(handle)["digest"] == ref["digest"] and store.saves == 2 and ref["chunks"][0] in blobs
