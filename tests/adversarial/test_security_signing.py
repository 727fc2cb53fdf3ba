"""Issue 32 "Measured": tampering that keeps content addresses valid, the hot cache trusting a reference's chunk
list, and references crossing threads or users - each refused with a named error, on hot and cold reads alike.

The attacker writes the blob store and graph state (a LangGraph Server client writes state) but holds no key.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph.errors import BlobMissingError, HandleNamespaceError, HandleRefError, HandleSignatureError
from latent_graph.graphs import build_sequential
from latent_graph.persist import HandleStore, MemoryBlobStore, chunk_key, handle_to_chunks
from latent_graph.persist.keys import KeyRing

KEY = "k" * 40
Q = "What is 2 plus 3?"


def _rotated(h):
    """``h`` with every K/V vector rotated in its first two dims by 90 degrees: per-vector norms unchanged."""

    def turn(x):
        y = x.clone()
        y[..., 0], y[..., 1] = -x[..., 1], x[..., 0]
        return y

    return dataclasses.replace(h, keys=tuple(map(turn, h.keys)), values=tuple(map(turn, h.values)))


@pytest.fixture(scope="module")
def handle(llama):
    return llama.think(llama.think(None, [Q], 2, agent="a"), ["Check it."], 1, agent="b")


@pytest.fixture
def store(handle):
    s = HandleStore(MemoryBlobStore(), keys=KeyRing([KEY]))
    return s, s.save(handle)


def _reads(s):
    """The two ways a reference is read: hot (the handle still in memory) and cold (from the blobs)."""
    yield "hot"
    s.hot.clear()
    yield "cold"


def test_norm_matched_tamper_readdressed_is_refused_hot_and_cold(store, handle):
    s, ref = store
    bad = _rotated(handle)
    assert all(torch.allclose(a.norm(dim=-1), b.norm(dim=-1)) for a, b in zip(handle.keys, bad.keys))
    assert not torch.equal(bad.keys[0], handle.keys[0])
    split = handle_to_chunks(bad)  # re-addressed the only way an attacker can: plain sha256
    for key, data in [*split.chunks.items(), (chunk_key(split.manifest.encode()), split.manifest.encode())]:
        s.blobs.put(key, data)
    forged = {**ref, "digest": chunk_key(split.manifest.encode()), "chunks": list(split.chunks)}
    for how in _reads(s):
        with pytest.raises(HandleSignatureError, match="fails its signature"):
            s.load(forged)
        print("refused:", how)


def test_tamper_in_place_never_reaches_a_reader(store, handle):
    s, ref = store
    bad = handle_to_chunks(_rotated(handle), s.sealer.address(ref["kid"], ""))
    victim = ref["chunks"][0]
    s.blobs.delete([victim])
    s.blobs.put(victim, next(iter(bad.chunks.values())))  # another chunk's bytes under the old address
    hot = s.load(ref)
    assert torch.equal(hot.keys[0], handle.keys[0])  # the hot copy is the one written, not the blob
    s.hot.clear()
    with pytest.raises(BlobMissingError, match="corrupt or altered"):
        s.load(ref)


def test_chunk_list_disagreeing_with_manifest_is_refused_hot_and_cold(store, handle):
    s, ref = store
    other = s.save(_rotated(handle))  # another handle of the store, with other chunks
    for how in _reads(s):
        with pytest.raises(HandleSignatureError, match="fails its signature"):  # edited by someone without the key
            s.load({**ref, "chunks": ref["chunks"][:-1]})
        # signed by the key but naming other chunks (a writer bug, or GC would keep the wrong blobs): still refused
        resigned = s.sealer.sign({**ref, "chunks": [*ref["chunks"][:-1], other["chunks"][0]]}, "")
        with pytest.raises(HandleRefError, match="lists other chunks than its manifest"):
            s.load(resigned)
        print("refused:", how)
    assert torch.equal(s.load(ref).keys[0], handle.keys[0])  # the genuine reference still resolves


# ------------------------------------------------------------------ through graphs
@pytest.fixture(scope="module")
def graphs(llama):
    """A graph whose store gives each thread its namespace, and one scoped by the authenticated user only."""
    out = {}
    for scope in ("thread", "user"):
        store = HandleStore(MemoryBlobStore(), keys=KeyRing([KEY]), per_thread=scope == "thread")
        app = build_sequential(llama, steps=1, max_new_tokens=2, checkpointer=InMemorySaver(), handle_store=store)
        out[scope] = app, store
    return out


def _cfg(thread: str, user: str | None = None) -> dict:
    conf = {"thread_id": thread}
    if user is not None:
        conf["langgraph_auth_user_id"] = user  # what LangGraph Server sets from its auth handler
    return {"configurable": conf}


def _refusal(app, value, config) -> str:
    with pytest.raises(HandleNamespaceError) as err:
        app.invoke({"questions": [Q], "handle": value}, config)
    return str(err.value)


@pytest.mark.parametrize(
    "scope, victim, attacker", [("thread", ("t1", None), ("t2", None)), ("user", ("t1", "alice"), ("t2", "bob"))]
)
def test_foreign_reference_is_refused_the_same_whether_or_not_it_exists(graphs, scope, victim, attacker):
    """Another thread's (or another authenticated user's) reference: one message, with or without its blobs."""
    app, store = graphs[scope]
    stolen = app.invoke({"questions": [Q]}, _cfg(*victim))["handle"]
    before = _refusal(app, stolen, _cfg(*attacker))
    store.blobs.delete([stolen["digest"], *stolen["chunks"]])
    store.hot.clear()
    assert _refusal(app, stolen, _cfg(*attacker)) == before
    forged = {**stolen, "namespace": store.namespace(_cfg(*attacker))}  # re-labelled: the signature breaks
    with pytest.raises(HandleSignatureError, match="fails its signature"):
        app.invoke({"questions": [Q], "handle": forged}, _cfg(*attacker))


@pytest.mark.parametrize("scope", ["thread", "user"])
def test_time_travel_and_forks_inside_a_namespace_keep_working(graphs, scope):
    app, _ = graphs[scope]
    cfg = _cfg("t-travel", "alice")
    app.invoke({"questions": [Q]}, cfg)
    app.invoke({"questions": ["And 3 plus 4?"]}, cfg)
    history = list(app.get_state_history(cfg))
    earlier = next(h for h in history if h.next and h.values.get("handle"))
    as_alice = {**cfg["configurable"], "langgraph_auth_user_id": "alice"}  # the server adds the user to every run

    def mine(config):
        return {"configurable": {**config["configurable"], **as_alice}}

    assert app.invoke(None, mine(earlier.config))["answers"]  # resumes from an earlier checkpoint's reference
    forked = app.update_state(mine(earlier.config), {"questions": ["What is 5 plus 5?"]})
    assert app.invoke(None, mine(forked))["answers"]
