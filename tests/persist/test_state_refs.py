"""Latent state by reference: stock LangGraph savers, the functional API, trusted references, GC, stores, traps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore

from latent_graph import BlobMissingError, HandleRefError, ModelMismatchError
from latent_graph.graphs import build_sequential
from latent_graph.nodes import LatentAgentNode, add_agent
from latent_graph.persist import (
    FolderBlobStore,
    HandleStore,
    LiveHandleStore,
    MemoryBlobStore,
    SqliteBlobStore,
    collect_blobs,
    delete_thread,
    is_ref,
)
from latent_graph.state import LatentState

from chains import three_agent_chain

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS / "stock_savers_run.py"
Q = {"questions": ["What is 2 plus 3?"]}


def run_script(*args: str, env: dict[str, str], timeout: int = 300) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent), **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


chain = three_agent_chain


# ---------------------------------------------------------- stock savers, no project helper
def test_stock_savers_and_functional_api_under_strict_msgpack(tmp_path):
    """InMemorySaver, SqliteSaver reopened on a new connection, AsyncSqliteSaver + ainvoke, @entrypoint/@task."""
    r = run_script(
        "all", str(tmp_path), env={"LANGGRAPH_STRICT_MSGPACK": "true", "LATENT_GRAPH_CACHE": str(tmp_path / "c")}
    )
    answers = r["memory"]["answers"]
    assert answers and r["sqlite"]["answers"] == answers and r["async_sqlite"]["answers"] == answers
    for name in ("memory", "sqlite"):
        assert r[name]["replayed"] == answers  # time travel from the checkpoint after agent "a"
        assert r[name]["history"] >= 4 and r[name]["history_refs"] >= 2
    assert r["memory"]["ref"] and r["async_sqlite"]["ref"] and r["sqlite"]["reopened_columns"] > 0
    assert r["functional"]["ref"] and r["functional"]["answers"]
    # a branch=True node called inside tasks without config: one key per task, nothing merged away
    assert len(set(r["functional"]["keys"])) == 3


def test_interrupt_after_resumed_in_another_process(tmp_path):
    env = {"LATENT_GRAPH_CACHE": str(tmp_path / "c")}
    db = str(tmp_path / "pause.db")
    assert run_script("pause", db, "t", env=env)["next"] == ["b"]
    r = run_script("resume", db, "t", env=env)
    assert r["answers"] == r["reference"] and r["columns"] > 0
    assert r["loads"] == 1  # the new process read agent a's handle from the folder store once


def test_default_mode_stock_savers_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path / "c"))
    import asyncio

    import stock_savers_run as s

    memory = s.check_memory()
    assert memory["ref"] and memory["replayed"] == memory["answers"]
    assert asyncio.run(s._async_sqlite(tmp_path / "a.db"))["answers"] == memory["answers"]
    assert len(set(s.check_functional()["keys"])) == 3


# ---------------------------------------------------------- references you can trust
class CountingBlobs(MemoryBlobStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)


def test_reference_is_plain_json_and_round_trips(llama, tmp_path):
    for blobs in (MemoryBlobStore(), FolderBlobStore(tmp_path / "f"), SqliteBlobStore(tmp_path / "b.db")):
        h = llama.think(None, ["one", "two"], 2, agent="a")
        ref = HandleStore(blobs).save(h)
        assert json.loads(json.dumps(ref)) == ref and is_ref(ref)
        assert ref["columns"] == h.seq_len and ref["layers"] == h.num_layers and ref["batch"] == 2
        back = HandleStore(blobs).load(ref, llama)  # a cold store: read from the blobs
        assert all((x == y).all() for x, y in zip((*back.keys, *back.values), (*h.keys, *h.values)))
        assert back.segments == h.segments


def test_shapes_and_context_are_checked_before_any_read(llama, tiny_factory):
    blobs = CountingBlobs()
    ref = HandleStore(blobs).save(llama.think(None, "q", 1))
    cold = HandleStore(blobs)
    blobs.gets = 0
    for field, value in [("layers", 7), ("kv_heads", 9), ("head_dim", 3), ("columns", 10**9)]:
        with pytest.raises(HandleRefError, match="layers|context"):
            cold.load({**ref, field: value}, llama)
    with pytest.raises(ModelMismatchError):
        cold.load(ref, tiny_factory("llama", seed=3))
    assert blobs.gets == 0  # refused before any blob was read


def test_every_model_reports_the_cache_shape_its_handles_have(any_model):
    """Persist checks references against ``fingerprint.kv_shape``: the engine's reading of its own config."""
    k = any_model.think(None, "q", 1).keys[0]
    assert any_model.fingerprint.kv_shape == (any_model.hf_model.config.num_hidden_layers, k.shape[1], k.shape[3])
    ref = HandleStore(MemoryBlobStore()).save(any_model.think(None, "q", 1))
    assert any_model.fingerprint.kv_shape == (ref["layers"], ref["kv_heads"], ref["head_dim"])


def test_reference_cannot_name_a_path_outside_its_store(llama, tmp_path):
    store = HandleStore(FolderBlobStore(tmp_path / "f"))
    ref = store.save(llama.think(None, "q", 1))
    (tmp_path / "secret").write_bytes(b"x")
    for bad in ["../secret", "/etc/passwd", "..", "A" * 64, ref["digest"] + "/.."]:
        with pytest.raises(HandleRefError, match="outside its blob store"):
            HandleStore(store.blobs).load({**ref, "digest": bad})
        with pytest.raises(HandleRefError):
            HandleStore(store.blobs).load({**ref, "chunks": [bad]})
        with pytest.raises(HandleRefError):
            store.blobs.get(bad)


def test_missing_or_corrupt_blob_is_named_and_the_thread_recovers(llama, tmp_path):
    blobs = FolderBlobStore(tmp_path / "f")
    saver = InMemorySaver()
    cfg = {"configurable": {"thread_id": "t"}}
    out = chain(llama, HandleStore(blobs), saver).invoke(Q, cfg)
    final = out["handle"]
    path = blobs.root / final["chunks"][-1][:2] / final["chunks"][-1]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BlobMissingError, match="corrupt.*re-run from a checkpoint"):
        HandleStore(blobs).load(final, llama)
    assert not path.exists()  # the corrupt blob is dropped, so re-running the node can write it again
    with pytest.raises(BlobMissingError, match="missing"):
        HandleStore(blobs).load(final, llama)
    # repair as the error says: re-run from the checkpoint before the node that wrote it
    graph = chain(llama, HandleStore(blobs), saver)
    before_b = next(s for s in graph.get_state_history(cfg) if s.next == ("b",))
    again = graph.invoke(None, before_b.config)
    assert again["answers"] == out["answers"] and HandleStore(blobs).load(again["handle"], llama).seq_len > 0


def test_repeated_references_in_one_checkpoint_cost_one_load(llama):
    blobs = CountingBlobs()
    ref = HandleStore(blobs).save(llama.think(None, "q", 1))
    saver = InMemorySaver()
    b = StateGraph(dict)
    b.add_node("n", lambda s: {"refs": [ref] * 3000})
    b.add_edge(START, "n")
    graph = b.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    graph.invoke({"refs": []}, cfg)
    refs = graph.get_state(cfg).values["refs"]
    cold = HandleStore(blobs)
    handles = [cold.load(r, llama) for r in refs]
    assert cold.loads == 1 and all(h is handles[0] for h in handles)


def test_a_chain_does_not_reread_what_it_wrote(llama):
    blobs = CountingBlobs()
    store = HandleStore(blobs)
    chain(llama, store).invoke(Q)
    assert store.loads == 0 and blobs.gets == 0 and store.saves == 2  # a and b (the judger keeps none)


def test_hot_handles_are_bounded_in_bytes_too(llama):
    """A long thread's handles grow with it: the in-memory copies stay under ``hot_bytes`` (the newest one is kept
    whatever its size), and an evicted handle is read back from the blobs, equal."""
    small = llama.think(None, "q", 1)
    big = [llama.think(None, "a much longer question " * (4 + i), 1) for i in range(3)]
    store = HandleStore(MemoryBlobStore(), hot_bytes=big[0].nbytes + small.nbytes)
    refs = [store.save(h) for h in (small, *big)]
    assert (store.hot.held <= store.hot.max_bytes or len(store.hot) == 1) and len(store.hot) < 4
    assert store.load(refs[-1], llama) is big[-1] and store.loads == 0  # the newest is held
    back = store.load(refs[1], llama)  # evicted: read from the blobs
    assert store.loads == 1 and back is not big[0] and torch.equal(back.keys[0], big[0].keys[0])
    tiny = HandleStore(MemoryBlobStore(), hot_bytes=1)
    assert tiny.load(tiny.save(big[2]), llama) is big[2]  # one handle over the bound is still kept


def test_live_store_of_one_shot_runs_serializes_nothing_and_answers_the_same(llama):
    """``HandleStore.in_memory()`` (the CLI's run) keeps the handle objects: same answers, no blob, bounded, named misses."""
    live = HandleStore.in_memory()
    assert isinstance(live, LiveHandleStore)
    out = chain(llama, live).invoke(Q)
    assert out["answers"] == chain(llama, HandleStore(MemoryBlobStore())).invoke(Q)["answers"]
    assert is_ref(out["handle"]) and json.loads(json.dumps(out["handle"])) == out["handle"]
    assert live.saves == 2 and not hasattr(live, "blobs")  # nothing serialized, no blob store
    h = llama.think(None, "q", 1)
    ref = live.save(h)
    assert live.save(h) == ref and live.load(ref, llama) is h  # the object itself, on the model's devices
    assert ref["digest"] == "" and ref["chunks"] == [] and len(ref["live"]) == 32  # no fake content digest
    assert ref["live"] != live.save(llama.think(None, "q", 1))["live"]  # an equal handle is another object
    with pytest.raises(BlobMissingError, match="LiveHandleStore"):
        HandleStore(MemoryBlobStore()).load(ref, llama)  # a blob store cannot resolve it: named
    with pytest.raises(HandleRefError, match="its own references"):
        live.load(HandleStore(MemoryBlobStore()).save(h), llama)
    small = HandleStore.in_memory(max_bytes=h.nbytes)
    first = small.save(h)
    small.save(llama.think(None, "other", 1))
    with pytest.raises(BlobMissingError, match="missing"):
        small.load(first, llama)  # dropped beyond max_bytes: named, not a KeyError
    for bad in [{**ref, "live": ["x"]}, {**ref, "live": "../x"}, {**ref, "latent_graph_ref": 2}]:
        with pytest.raises(HandleRefError):
            live.load(bad, llama)
    live.clear()  # the end of a run (the bench empties its store after every batch)
    assert live.held == 0
    with pytest.raises(BlobMissingError, match="missing"):
        live.load(ref, llama)


# ---------------------------------------------------------- the traps
def test_handle_flows_out_of_a_prebuilt_subgraph(llama):
    team = build_sequential(llama, agents={"critic": "Check."}, steps=1, max_new_tokens=2)
    b = StateGraph(LatentState)
    add_agent(b, LatentAgentNode(model=llama, name="scout", instruction="Find.", steps=1))
    b.add_node("team", team)
    add_agent(b, LatentAgentNode(model=llama, name="after", instruction="Go on.", steps=1))
    b.add_edge(START, "scout")
    b.add_edge("scout", "team")
    b.add_edge("team", "after")
    b.add_edge("after", END)
    by = {t["node"]: t for t in b.compile().invoke(Q)["trace"]}
    assert by["judger"]["handle_bytes_before"] == by["critic"]["handle_bytes_after"] > by["scout"]["handle_bytes_after"]
    # the team hands on its judger's turn: the next node reads the critic's cache plus the judged answer
    assert by["after"]["handle_bytes_before"] > by["critic"]["handle_bytes_after"]


def test_model_mismatch_names_built_by_and_used_with(tiny_factory):
    x, y = tiny_factory("llama", seed=0), tiny_factory("llama", seed=1)
    with pytest.raises(ModelMismatchError) as err:
        y.think(x.think(None, "q", 1), "more", 1)
    msg = str(err.value)
    assert msg.index(x.fingerprint.digest) < msg.index(y.fingerprint.digest)
    assert f"built by model {x.fingerprint}" in msg and f"used with model {y.fingerprint}" in msg
    assert err.value.expected == str(y.fingerprint) and err.value.got == str(x.fingerprint)


# ---------------------------------------------------------- stores and garbage collection
def test_references_in_langgraph_stores(llama, tmp_path):
    from langgraph.store.sqlite import SqliteStore

    store = HandleStore(MemoryBlobStore())
    ref = store.save(llama.think(None, "remember this", 1))
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as sq:
        sq.setup()
        for kv in (InMemoryStore(), sq):
            kv.put(("memories", "u1"), "plan", {"handle": ref})
            back = kv.get(("memories", "u1"), "plan").value["handle"]
            assert back == ref and HandleStore(store.blobs).load(back, llama).seq_len == ref["columns"]
        # the reference kept in the store keeps its blobs alive
        assert collect_blobs(store, [], [sq], grace=0) == 0
        assert collect_blobs(store, [], [], grace=0) == len(set([ref["digest"], *ref["chunks"]]))
    graph = build_sequential(llama, store=InMemoryStore(), steps=1, max_new_tokens=2)
    assert isinstance(graph.store, InMemoryStore)


def test_delete_thread_collects_only_unreferenced_blobs(llama):
    store = HandleStore(MemoryBlobStore())
    saver = InMemorySaver()
    graph = chain(llama, store, saver)
    graph.invoke({"questions": ["one"]}, {"configurable": {"thread_id": "t1"}})
    out2 = graph.invoke({"questions": ["two"]}, {"configurable": {"thread_id": "t2"}})
    n = len(store.blobs.keys())
    assert delete_thread(saver, "t1", store) == 0  # fresh blobs are spared by the grace period
    assert delete_thread(saver, "t1", store, grace=0) > 0 and len(store.blobs.keys()) < n
    assert HandleStore(store.blobs).load(out2["handle"], llama).seq_len > 0  # t2 intact


def test_collection_is_safe_while_another_thread_writes(llama):
    store = HandleStore(MemoryBlobStore())
    saver = InMemorySaver()
    graph = chain(llama, store, saver)
    results: list = []
    worker = threading.Thread(target=lambda: results.append(graph.invoke(Q, {"configurable": {"thread_id": "w"}})))
    worker.start()
    deleted = 0
    while worker.is_alive():
        deleted += collect_blobs(store, [saver], grace=30)
    worker.join()
    assert deleted == 0 and HandleStore(store.blobs).load(results[0]["handle"], llama).seq_len > 0
