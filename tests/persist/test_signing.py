"""Issue 32 items 1-3: the key source, signed references, namespaces with keyed addresses, encryption at rest."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from latent_graph.errors import (
    HandleNamespaceError,
    HandleRefError,
    HandleSignatureError,
    SigningKeyError,
)
from latent_graph.persist import HandleStore, LiveHandleStore, MemoryBlobStore, chunk_key, handle_to_chunks
from latent_graph.persist.keys import KeyRing, default_keyring
from latent_graph.persist.sealing import SEALED, namespace_of

OLD, NEW, OTHER = "o" * 40, "n" * 40, "x" * 40
Q = "What is 2 plus 3?"


@pytest.fixture(scope="module")
def handle(llama):
    return llama.think(llama.think(None, [Q], 2, agent="a"), ["Check it."], 1, agent="b")


def _equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip((*a.keys, *a.values), (*b.keys, *b.values)))


# ------------------------------------------------------------------ key source
def test_key_source_env_file_and_generated(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENT_GRAPH_KEYS", raising=False)
    monkeypatch.delenv("LATENT_GRAPH_KEY_FILE", raising=False)
    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path / "cache"))
    made = default_keyring()
    path = tmp_path / "cache" / "keys" / "handles.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and default_keyring().kid == made.kid  # generated once
    assert path.read_text().strip() not in repr(made) and made.kid not in path.read_text()  # the id reveals nothing
    (tmp_path / "k").write_text(f"# newest first\n{NEW}\n{OLD}\n")
    monkeypatch.setenv("LATENT_GRAPH_KEY_FILE", str(tmp_path / "k"))
    from_file = default_keyring()
    assert from_file.kid == KeyRing([NEW]).kid and KeyRing([OLD]).kid in from_file
    monkeypatch.setenv("LATENT_GRAPH_KEYS", f"{OLD}, {NEW}")
    assert default_keyring().kid == KeyRing([OLD]).kid  # the environment wins over the file
    for bad in ("short", ""):
        monkeypatch.setenv("LATENT_GRAPH_KEYS", bad or ",")
        monkeypatch.setenv("LATENT_GRAPH_KEY_FILE", str(tmp_path / "missing"))
        with pytest.raises(SigningKeyError):
            default_keyring()


def test_rotation_old_keys_verify_the_new_key_signs(handle):
    blobs = MemoryBlobStore()
    old_ref = HandleStore(blobs, keys=KeyRing([OLD])).save(handle)
    rotated = HandleStore(blobs, keys=KeyRing([NEW, OLD]))
    assert _equal(rotated.load(old_ref), handle)
    new_ref = rotated.save(handle)
    assert new_ref["kid"] == KeyRing([NEW]).kid != old_ref["kid"] and new_ref["digest"] != old_ref["digest"]
    retired = HandleStore(blobs, keys=KeyRing([NEW]))
    assert _equal(retired.load(new_ref), handle)
    with pytest.raises(HandleSignatureError, match="does not hold"):
        retired.load(old_ref)


# ------------------------------------------------------------------ signatures
def test_unsigned_and_edited_references_are_refused_before_any_read(handle):
    store = HandleStore(MemoryBlobStore(), keys=KeyRing([NEW]))
    ref = store.save(handle)
    unsigned = {k: v for k, v in ref.items() if k not in ("sig", "kid", "namespace")}  # a pre-signing checkpoint
    with pytest.raises(HandleSignatureError, match="unsigned handle reference"):
        store.load(unsigned)
    for field, value in [("summary", "x"), ("batch", 2), ("namespace", "user=mallory"), ("sig", "00" * 32)]:
        with pytest.raises(HandleSignatureError, match="fails its signature"):
            store.load({**ref, field: value})
    assert _equal(store.load({**ref, "writer": "task-1"}), handle)  # the branch task id is not signed
    with pytest.raises(HandleSignatureError, match="does not hold"):
        HandleStore(store.blobs, keys=KeyRing([OTHER])).load(ref)


def test_a_json_round_trip_keeps_the_signature(handle):
    import json

    store = HandleStore(MemoryBlobStore(), keys=KeyRing([NEW]))
    ref = store.save(handle)
    again = json.loads(json.dumps(ref))
    store.hot.clear()
    assert _equal(store.load(again), handle)


# ------------------------------------------------------------------ namespaces
def test_namespace_of_config():
    assert namespace_of(None) == "" and namespace_of({"configurable": {"thread_id": "t"}}) == ""
    assert namespace_of({"configurable": {"thread_id": "t/1"}}, per_thread=True) == "thread=t%2F1"
    user = {"configurable": {"langgraph_auth_user_id": "a/b", "thread_id": "t"}}
    assert namespace_of(user) == "user=a%2Fb" and namespace_of(user, True) == "user=a%2Fb/thread=t"

    class User:
        identity = "carol"

    assert namespace_of({"configurable": {"langgraph_auth_user": User()}}) == "user=carol"
    assert namespace_of({"configurable": {"langgraph_auth_user": {"identity": "dan"}}}) == "user=dan"


def test_other_namespace_is_refused_with_one_message_whatever_the_blobs(handle):
    store = HandleStore(MemoryBlobStore(), keys=KeyRing([NEW]))
    ref = store.save(handle, "user=alice")
    assert _equal(store.load(ref, namespace="user=alice"), handle)
    messages = []
    for _ in range(2):
        with pytest.raises(HandleNamespaceError) as err:
            store.load(ref, namespace="user=bob")
        messages.append(str(err.value))
        store.blobs.delete(store.blobs.keys())  # the second time the content no longer exists
        store.hot.clear()
    assert messages[0] == messages[1] and ref["digest"][:8] not in messages[0]


def test_dedup_never_crosses_namespaces_and_plain_digests_probe_nothing(handle):
    store = HandleStore(MemoryBlobStore(), keys=KeyRing([NEW]))
    a, b = store.save(handle, "user=alice"), store.save(handle, "user=bob")
    assert not set([a["digest"], *a["chunks"]]) & set([b["digest"], *b["chunks"]])
    plain = handle_to_chunks(handle)  # what an attacker computes offline from a guessed prompt
    assert not ({chunk_key(plain.manifest.encode()), *plain.chunks} & set(store.blobs.keys()))


def test_share_is_an_explicit_copy(handle):
    store = HandleStore(MemoryBlobStore(), keys=KeyRing([NEW]))
    ref = store.save(handle, "user=alice")
    shared = store.share(ref, "user=bob")
    assert shared["namespace"] == "user=bob" and _equal(store.load(shared, namespace="user=bob"), handle)
    with pytest.raises(HandleNamespaceError):
        store.load(shared, namespace="user=alice")


def test_live_store_is_unsigned_and_ignores_namespaces(handle):
    live = LiveHandleStore()
    ref = live.save(handle, "user=alice")
    assert "sig" not in ref and live.load(ref, namespace="user=bob") is handle and live.namespace({}) == ""


# ------------------------------------------------------------------ encryption at rest
def test_sealed_blobs_round_trip_and_are_unreadable_without_the_key(handle):
    blobs = MemoryBlobStore()
    store = HandleStore(blobs, keys=KeyRing([NEW]), encrypt=True)
    ref = store.save(handle, "user=alice")
    raw = [blobs.get(k) for k in blobs.keys()]
    assert raw and all(r.startswith(SEALED) for r in raw)
    plain = handle_to_chunks(handle)
    for marker in (b"latent_graph.handle", plain.chunks[next(iter(plain.chunks))][-64:], b'"segments"'):
        assert not any(marker in r for r in raw)  # neither headers, tensor bytes nor the segment table leak
    store.hot.clear()
    assert _equal(store.load(ref, namespace="user=alice"), handle)
    assert _equal(HandleStore(blobs, keys=KeyRing([NEW])).load(ref, namespace="user=alice"), handle)  # read either way
    with pytest.raises(HandleSignatureError):
        HandleStore(blobs, keys=KeyRing([OTHER]), encrypt=True).load(ref, namespace="user=alice")
    # a sealed blob moved under another address, or altered, does not open
    manifest = blobs.get(ref["digest"])
    blobs.delete([ref["digest"]])
    blobs.put(ref["digest"], blobs.get(ref["chunks"][0]))
    store.hot.clear()
    with pytest.raises(HandleSignatureError, match="does not open"):
        store.load(ref, namespace="user=alice")
    blobs.delete([ref["digest"]])
    blobs.put(ref["digest"], manifest[:-1] + bytes([manifest[-1] ^ 1]))
    with pytest.raises(HandleSignatureError, match="does not open"):
        store.load(ref, namespace="user=alice")


def test_plain_store_refuses_to_sign_garbage():
    with pytest.raises(HandleRefError, match="needs a LatentHandle"):
        HandleStore(MemoryBlobStore(), keys=KeyRing([NEW])).save("not a handle")  # type: ignore[arg-type]


def test_default_store_reads_its_settings_from_the_environment(tmp_path, monkeypatch):
    from latent_graph.persist import default_handle_store

    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LATENT_GRAPH_KEYS", NEW)
    monkeypatch.setenv("LATENT_GRAPH_ENCRYPT_BLOBS", "1")
    monkeypatch.setenv("LATENT_GRAPH_NAMESPACE", "thread")
    store = default_handle_store()
    assert store.sealer.encrypt and store.sealer.keys.kid == KeyRing([NEW]).kid
    assert store.namespace({"configurable": {"thread_id": "t"}}) == "thread=t"
