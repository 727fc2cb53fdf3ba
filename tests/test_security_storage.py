"""Issue 11 item 6: checkpoint storage must shrink when threads or old checkpoints go."""

from __future__ import annotations

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import Any, TypedDict

from latent_graph.errors import InvalidArgumentError
from latent_graph.persist import checkpoint_nbytes, memory_checkpointer, prune, sqlite_checkpointer


class State(TypedDict, total=False):
    question: str
    handle: Any
    answer: str


def _graph(model, saver):
    def agent(name):
        def node(state):
            prev = state.get("handle") if name == "b" else None  # every run starts a fresh handle
            return {"handle": model.think(prev, f"{name}: {state['question']}", steps=2, agent=name)}
        return node

    g = StateGraph(State)
    g.add_node("a", agent("a"))
    g.add_node("b", agent("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile(checkpointer=saver)


@pytest.fixture(params=["memory", "sqlite"])
def saver(request, tmp_path):
    s = memory_checkpointer() if request.param == "memory" else sqlite_checkpointer(tmp_path / "c.sqlite")
    yield s
    if hasattr(s, "conn"):
        s.conn.close()


def _run(graph, thread: str, question: str) -> None:
    graph.invoke({"question": question}, {"configurable": {"thread_id": thread}})


def test_delete_thread_collects_its_chunks(llama, saver):
    graph = _graph(llama, saver)
    _run(graph, "keep", "What is 1+1?")
    one_thread = checkpoint_nbytes(saver)
    for i in range(30):
        _run(graph, f"t{i}", f"Question number {i}?")
    store = saver.serde.chunk_store
    full, chunks = checkpoint_nbytes(saver), len(store)
    assert full > 20 * one_thread
    for i in range(30):
        saver.delete_thread(f"t{i}")
    after = checkpoint_nbytes(saver)
    print(f"30 threads: {full} B in {chunks} chunks; after delete_thread: {after} B in {len(store)} chunks")
    assert after == one_thread  # exactly what the remaining thread needs
    state = graph.get_state({"configurable": {"thread_id": "keep"}})
    assert state.values["handle"].num_layers == 2  # its chunks are intact
    saver.delete_thread("keep")
    assert checkpoint_nbytes(saver) == 0 and len(store) == 0
    _run(graph, "again", "What is 1+1?")  # handles seen before are re-chunked, not referenced as collected
    assert graph.get_state({"configurable": {"thread_id": "again"}}).values["handle"] is not None


def test_prune_keeps_only_recent_checkpoints(llama, saver):
    graph = _graph(llama, saver)
    for q in ("First?", "Second?", "Third?"):
        _run(graph, "t", q)
    config = {"configurable": {"thread_id": "t"}}
    before, last = checkpoint_nbytes(saver), graph.get_state(config)
    freed = prune(saver, keep_last=1)
    after = checkpoint_nbytes(saver)
    print(f"prune(keep_last=1): {before} B -> {after} B ({freed} B of chunks freed)")
    assert freed > 0 and after < before / 2
    now = graph.get_state(config)
    assert now.values["question"] == last.values["question"] == "Third?"
    assert now.values["handle"].seq_len == last.values["handle"].seq_len
    assert len(list(graph.get_state_history(config))) == 1
    with pytest.raises(InvalidArgumentError):
        prune(saver, keep_last=0)
