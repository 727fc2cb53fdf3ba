"""Hand-written LangGraph nodes keeping handles by reference on stock savers: interrupt, crash and fan-out
resumes reproduce the reference run; checkpoints stay small; a damaged blob is named."""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from latent_graph import BlobMissingError
from latent_graph.persist import HandleStore, MemoryBlobStore, SqliteBlobStore, checkpoint_nbytes, is_ref

QUESTION = "What is 12 times 7? Alice has 3 apples and buys 5 more."


class State(TypedDict, total=False):
    question: str
    handle: Any
    branches: Annotated[dict[str, Any], operator.or_]
    answer: str


def _agent(model, store, name: str, prompt: str, calls: dict[str, int], fail_once: set[str]) -> Callable[[State], dict]:
    def node(state: State) -> dict:
        calls[name] = calls.get(name, 0) + 1
        if name in fail_once:
            fail_once.discard(name)
            raise RuntimeError(f"{name} crashed")
        prev = store.load(state["handle"], model) if state.get("handle") else None
        ref = store.save(model.think(prev, f"{prompt} {state['question']}", steps=3, agent=name))
        return {"handle": ref, "branches": {name: ref}}

    return node


def _judge(model, store) -> Callable[[State], dict]:
    def node(state: State) -> dict:
        d = model.decode(
            store.load(state["handle"], model), "Answer with the final number.", max_new_tokens=12, agent="judger"
        )
        return {"handle": store.save(d.handle), "answer": d.text}

    return node


def chain_graph(model, store, calls: dict[str, int] | None = None, fail_once: set[str] | None = None) -> StateGraph:
    """a -> b -> c -> judge, each agent extending the previous handle."""
    calls = {} if calls is None else calls
    fail = set() if fail_once is None else fail_once
    g = StateGraph(State)
    for name, prompt in (("a", "Plan:"), ("b", "Critique:"), ("c", "Refine:")):
        g.add_node(name, _agent(model, store, name, prompt, calls, fail))
    g.add_node("judge", _judge(model, store))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "judge")
    g.add_edge("judge", END)
    return g


@pytest.fixture(params=["memory", "sqlite"])
def make_saver(request, tmp_path):
    """Factory of (saver, cold handle store) pairs; sqlite ones reopen the same file (a fresh process's view)."""
    opened: list[Any] = []
    memory = (InMemorySaver(), MemoryBlobStore())

    def make() -> tuple[Any, HandleStore]:
        if request.param == "memory":
            return memory[0], HandleStore(memory[1])
        conn = sqlite3.connect(str(tmp_path / "ckpt.sqlite"), check_same_thread=False)
        blobs = SqliteBlobStore(tmp_path / "ckpt.sqlite")
        opened.extend([conn, blobs])
        return SqliteSaver(conn), HandleStore(blobs)

    yield make
    for thing in opened:
        thing.close()


def _same(a: Any, b: Any) -> None:
    assert a.segments == b.segments and all(
        torch.equal(x, y) for x, y in zip((*a.keys, *a.values), (*b.keys, *b.values))
    )


@pytest.fixture(scope="module")
def reference(llama) -> dict:
    store = HandleStore(MemoryBlobStore())
    out = chain_graph(llama, store).compile().invoke({"question": QUESTION})
    return {
        "answer": out["answer"],
        "handle": store.load(out["handle"]),
        "branches": {k: store.load(v) for k, v in out["branches"].items()},
    }


def test_interrupt_after_critic_then_resume(llama, make_saver, reference):
    cfg = {"configurable": {"thread_id": "t1"}}
    saver, store = make_saver()
    first = (
        chain_graph(llama, store).compile(checkpointer=saver, interrupt_after=["b"]).invoke({"question": QUESTION}, cfg)
    )
    assert "answer" not in first and is_ref(first["handle"])
    calls: dict[str, int] = {}
    saver, store = make_saver()  # sqlite: new connections, nothing in memory
    resumed = chain_graph(llama, store, calls).compile(checkpointer=saver)
    out = resumed.invoke(None, cfg)
    assert calls == {"c": 1} and store.loads >= 1
    assert out["answer"] == reference["answer"]
    _same(reference["handle"], store.load(out["handle"]))
    assert sorted(out["branches"]) == ["a", "b", "c"]
    for name in "abc":
        _same(reference["branches"][name], store.load(out["branches"][name]))


def test_crash_in_refiner_then_resume(llama, make_saver, reference):
    cfg = {"configurable": {"thread_id": "t2"}}
    calls: dict[str, int] = {}
    saver, store = make_saver()
    with pytest.raises(RuntimeError, match="c crashed"):
        chain_graph(llama, store, calls, fail_once={"c"}).compile(checkpointer=saver).invoke(
            {"question": QUESTION}, cfg
        )
    saver, store = make_saver()
    out = chain_graph(llama, store, calls).compile(checkpointer=saver).invoke(None, cfg)
    assert calls == {"a": 1, "b": 1, "c": 2}
    assert out["answer"] == reference["answer"]
    _same(reference["handle"], store.load(out["handle"]))


def test_pending_writes_with_references_survive_a_crash(llama, make_saver):
    """Fan-out: b succeeds, x crashes; on resume b's reference comes from its pending write."""

    def graph(store: HandleStore, calls: dict[str, int], fail: set[str]) -> StateGraph:
        g = StateGraph(State)
        g.add_node("a", _agent(llama, store, "a", "Plan:", calls, fail))
        g.add_node("b", _agent(llama, store, "b", "Critique:", calls, fail))

        def x(state: State) -> dict:
            calls["x"] = calls.get("x", 0) + 1
            if "x" in fail:
                fail.discard("x")
                raise RuntimeError("x crashed")
            h = llama.think(store.load(state["handle"], llama), "Other view.", steps=2, agent="x")
            return {"branches": {"x": store.save(h)}}

        g.add_node("x", x)
        g.add_node("judge", _judge(llama, store))
        g.add_edge(START, "a")
        g.add_edge("a", "b")
        g.add_edge("a", "x")
        g.add_edge(["b", "x"], "judge")
        g.add_edge("judge", END)
        return g

    mem = HandleStore(MemoryBlobStore())
    ref = graph(mem, {}, set()).compile().invoke({"question": QUESTION})
    cfg = {"configurable": {"thread_id": "t3"}}
    calls: dict[str, int] = {}
    saver, store = make_saver()
    with pytest.raises(RuntimeError, match="x crashed"):
        graph(store, calls, {"x"}).compile(checkpointer=saver).invoke({"question": QUESTION}, cfg)
    saver, store = make_saver()
    out = graph(store, calls, set()).compile(checkpointer=saver).invoke(None, cfg)
    assert calls == {"a": 1, "b": 1, "x": 2}  # b was not re-run: its write was restored
    assert out["answer"] == ref["answer"]
    _same(mem.load(ref["handle"]), store.load(out["handle"]))
    _same(mem.load(ref["branches"]["x"]), store.load(out["branches"]["x"]))


def test_checkpoint_bytes_stay_near_final_handle(llama, make_saver):
    saver, store = make_saver()
    out = (
        chain_graph(llama, store)
        .compile(checkpointer=saver)
        .invoke({"question": QUESTION}, {"configurable": {"thread_id": "t4"}})
    )
    final = store.load(out["handle"]).nbytes
    refs = checkpoint_nbytes(saver)
    stored = refs + store.blobs.nbytes
    print(f"final handle {final} B; checkpoints {refs} B + blobs {store.blobs.nbytes} B")
    assert final < stored < 1.6 * final  # tiny model: fixed per-chunk headers weigh more
    assert refs < 0.5 * final  # the checkpoints hold references, not tensors


def test_missing_blob_is_named_and_the_thread_recovers(llama, make_saver):
    saver, store = make_saver()
    cfg = {"configurable": {"thread_id": "t5"}}
    app = chain_graph(llama, store).compile(checkpointer=saver, interrupt_after=["a"])
    first = app.invoke({"question": QUESTION}, cfg)
    store.blobs.delete(store.blobs.keys())  # every blob of the thread is gone
    saver, store = make_saver()
    app = chain_graph(llama, store).compile(checkpointer=saver)
    assert is_ref(app.get_state(cfg).values["handle"])  # the checkpoint itself still reads
    with pytest.raises(BlobMissingError, match="re-run from a checkpoint"):
        app.invoke(None, cfg)
    start = next(s for s in app.get_state_history(cfg) if s.next == ("a",))  # before the node that wrote it
    assert app.invoke(None, start.config)["answer"] and first["handle"]["digest"] in store.blobs
