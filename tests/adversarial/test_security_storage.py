"""Issue 11 item 6: storage must shrink when threads go (stock savers, blobs collected through their public API)."""

from __future__ import annotations

import sqlite3

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph.persist import HandleStore, MemoryBlobStore, SqliteBlobStore, checkpoint_nbytes, delete_thread

from chains import three_agent_chain


@pytest.fixture(params=["memory", "sqlite"])
def saved(request, tmp_path):
    if request.param == "memory":
        yield InMemorySaver(), MemoryBlobStore()
    else:
        conn = sqlite3.connect(str(tmp_path / "c.sqlite"), check_same_thread=False)
        blobs = SqliteBlobStore(tmp_path / "c.sqlite")
        yield SqliteSaver(conn), blobs
        blobs.close()
        conn.close()


def _run(graph, thread: str, question: str) -> None:
    graph.invoke({"questions": [question]}, {"configurable": {"thread_id": thread}})


def test_delete_thread_collects_its_blobs(llama, saved):
    saver, blobs = saved
    graph = three_agent_chain(llama, HandleStore(blobs), saver)
    _run(graph, "keep", "What is 1+1?")
    one_thread, one_blobs = checkpoint_nbytes(saver), blobs.nbytes
    for i in range(30):
        _run(graph, f"t{i}", f"Question number {i}?")
    full, n_blobs = checkpoint_nbytes(saver), len(blobs.keys())
    assert full > 20 * one_thread and blobs.nbytes > 20 * one_blobs
    for i in range(30):
        delete_thread(saver, f"t{i}", blobs, grace=0)
    print(
        f"31 threads: {full} B of checkpoints, {n_blobs} blobs; after deleting 30: {checkpoint_nbytes(saver)} B, "
        f"{len(blobs.keys())} blobs"
    )
    assert checkpoint_nbytes(saver) == one_thread and blobs.nbytes == one_blobs  # exactly what the kept thread needs
    state = graph.get_state({"configurable": {"thread_id": "keep"}})
    assert HandleStore(blobs).load(state.values["handle"], llama).num_layers == 2  # its blobs are intact
    delete_thread(saver, "keep", blobs, grace=0)
    assert checkpoint_nbytes(saver) == 0 and blobs.keys() == []
    _run(graph, "again", "What is 1+1?")  # handles seen before are written again, not referenced as collected
    again = graph.get_state({"configurable": {"thread_id": "again"}}).values["handle"]
    assert HandleStore(blobs).load(again, llama).num_layers == 2


pytestmark = pytest.mark.reliability("fault")  # counted in the reliability summary (tests/conftest.py)
