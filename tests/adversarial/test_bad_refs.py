"""Bad handle references from a client get a named error (HandleRefError) saying what is wrong, never a raw one.

Issue 30 item 6 and issue 32 ("Raw errors at the edges"): a ``handle`` input that is no reference, or a
malformed one, raised ``AttributeError`` from deep inside a node; blob stores passed unchecked keys to their
driver. Every reader resolves through its store's ``load``, which runs one check (:func:`checked`) first.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from latent_graph.errors import HandleRefError
from latent_graph.graphs import build_compact, build_sequential
from latent_graph.persist import FolderBlobStore, HandleStore, LiveHandleStore, MemoryBlobStore, SqliteBlobStore
from latent_graph.persist.sql_blobs import SqlBlobStore

Q = "What is 2 plus 3?"
BUILDERS = {"compact": build_compact, "sequential": build_sequential}
STORES = ["default", "memory-blobs", "live"]


def _store(kind: str) -> HandleStore | LiveHandleStore | None:
    return {"default": None, "memory-blobs": HandleStore(MemoryBlobStore()), "live": LiveHandleStore()}[kind]


def _without(ref: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if k != field}


# (name, make(ref) -> bad value, what the message must say)
CASES = [
    ("keys-only", lambda r: {"keys": []}, r"expected a handle reference, got a dict with keys \['keys'\]"),
    ("digest-only", lambda r: {"digest": "x"}, r"expected a handle reference, got a dict with keys \['digest'\]"),
    ("empty-dict", lambda r: {}, r"expected a handle reference, got a dict"),
    ("string", lambda r: "abc", r"expected a handle reference, got str 'abc'"),
    ("int", lambda r: 5, r"expected a handle reference, got int"),
    ("list", lambda r: [1, 2], r"expected a handle reference, got list"),
    ("no-digest", lambda r: _without(r, "digest"), r"no field 'digest'"),
    ("no-layers", lambda r: _without(r, "layers"), r"no field 'layers'"),
    ("no-fingerprint", lambda r: _without(r, "fingerprint"), r"no field 'fingerprint'"),
    ("layers-str", lambda r: {**r, "layers": "2"}, r"'layers' must be an int >= 0"),
    ("batch-negative", lambda r: {**r, "batch": -1}, r"'batch' must be an int >= 0"),
    ("chunks-str", lambda r: {**r, "chunks": "abc"}, r"'chunks' must be a list"),
    ("chunks-ints", lambda r: {**r, "chunks": [1]}, r"'chunks' must be a list of blob keys"),
    ("segments-bad", lambda r: {**r, "segments": [["a"]]}, r"'segments' must hold"),
    ("version", lambda r: {**r, "latent_graph_ref": 99}, r"version 99"),
    ("version-bool", lambda r: {**r, "latent_graph_ref": True}, r"version True"),
    ("chunk-nul", lambda r: {**r, "chunks": [r["chunks"][0][:-1] + "\x00"]}, r"not a blob key|its own references"),
    ("chunk-dotdot", lambda r: {**r, "chunks": ["../" + r["chunks"][0]]}, r"not a blob key|its own references"),
    ("digest-nul", lambda r: {**r, "digest": "\x00" + r["digest"][1:]}, r"not a blob key|its own references"),
]


@pytest.fixture(scope="module")
def good_ref(llama) -> dict[str, Any]:
    """A well-formed blob reference of a handle of ``llama`` (fields are checked before any blob is read)."""
    return dict(HandleStore(MemoryBlobStore()).save(llama.think(None, [Q], 1, agent="a")))


@pytest.fixture(scope="module")
def graphs(llama, tmp_path_factory) -> dict[tuple[str, str], Any]:
    """One compiled graph per builder and store (the default store under a private cache dir)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENT_GRAPH_CACHE", str(tmp_path_factory.mktemp("cache")))
    out = {
        (b, s): build(llama, steps=1, max_new_tokens=2, handle_store=_store(s))
        for b, build in BUILDERS.items()
        for s in STORES
    }
    yield out
    mp.undo()


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize(("name", "make", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_handle_input_is_a_named_error(graphs, good_ref, builder, store, name, make, says):
    with pytest.raises(HandleRefError, match=says):
        graphs[builder, store].invoke({"questions": [Q], "handle": make(good_ref)})


@pytest.mark.parametrize("store", STORES)
def test_bad_branch_value_is_a_named_error(graphs, store):
    for bad in ({"a": {"keys": []}}, {"a": 5}):
        with pytest.raises(HandleRefError, match="expected a handle reference"):
            graphs["sequential", store].invoke({"questions": [Q], "branches": bad})
    with pytest.raises(HandleRefError, match="'branches' must map branch keys"):
        graphs["sequential", store].invoke({"questions": [Q], "branches": [1]})


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("builder", list(BUILDERS))
def test_a_latent_handle_object_still_works_as_input(llama, graphs, builder, store):
    """Hand-written code may pass the LatentHandle itself: it is read as before (no reference check)."""
    h = llama.think(None, [Q], 1, agent="earlier")
    out = graphs[builder, store].invoke({"questions": [Q], "handle": h})
    assert len(out["answers"]) == 1 and out["handle"]["columns"] > h.seq_len  # the run extended the given cache


def test_both_stores_run_the_same_check(llama, good_ref):
    for store in (HandleStore(MemoryBlobStore()), LiveHandleStore()):
        for bad in ({"keys": []}, "abc", 5, [1, 2], _without(good_ref, "model")):
            with pytest.raises(HandleRefError, match="expected a handle reference|no field 'model'"):
                store.load(bad, llama)
    live = LiveHandleStore()
    ref = live.save(llama.think(None, [Q], 1))
    with pytest.raises(HandleRefError, match="no field 'nbytes'"):
        live.load(_without(ref, "nbytes"), llama)
    with pytest.raises(HandleRefError, match="'live' must be a str"):
        live.load({**ref, "live": 7}, llama)


class RecordingConnection:
    """A DB-API stand-in (the psycopg of ``PostgresBlobStore``): records every statement that reaches it."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE TABLE latent_blobs (key TEXT PRIMARY KEY, data BLOB NOT NULL, written REAL NOT NULL)")
        self.seen: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.seen.append(params)
        return self.db.execute(sql.replace("%s", "?"), params)

    def commit(self) -> None:
        self.db.commit()


def _blob_stores(tmp_path) -> dict[str, Any]:
    return {
        "memory": MemoryBlobStore(),
        "folder": FolderBlobStore(tmp_path / "f"),
        "sqlite": SqliteBlobStore(tmp_path / "b.db"),
        "sql-driver": SqlBlobStore(RecordingConnection(), mark="%s", autocommit=True),
    }


BAD_KEYS = ["a" * 63 + "\x00", "\x00", "../" + "a" * 61, "A" * 64, 5, None]


@pytest.mark.parametrize("kind", ["memory", "folder", "sqlite", "sql-driver"])
def test_every_blob_store_method_checks_its_key(tmp_path, kind):
    blobs = _blob_stores(tmp_path)[kind]
    good = "b" * 64
    blobs.put(good, b"x")
    seen = len(blobs.conn.seen) if kind == "sql-driver" else 0
    calls = [
        lambda k: k in blobs,
        blobs.age,
        blobs.get,
        lambda k: blobs.put(k, b"x"),
        lambda k: blobs.delete([good, k]),
    ]
    for bad in BAD_KEYS:
        for call in calls:
            with pytest.raises(HandleRefError, match="is not a blob key"):
                call(bad)
    if kind == "sql-driver":
        assert len(blobs.conn.seen) == seen  # no bad key ever reached the driver
    assert blobs.get(good) == b"x" and good in blobs  # a list with one bad key deletes nothing
    blobs.delete([good])
    assert good not in blobs and blobs.age(good) is None


pytestmark = pytest.mark.reliability("bad_input")  # counted in the reliability summary (tests/conftest.py)
