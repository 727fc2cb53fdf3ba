"""Prebuilt graphs with checkpointers: interrupted runs resume to the identical greedy answer."""

from __future__ import annotations

import pytest

from latent_graph.persist import checkpoint_nbytes, memory_checkpointer, sqlite_checkpointer
from latent_graph.graphs import build_hierarchical, build_sequential

QS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples?"]
OPTS = dict(steps=3, max_new_tokens=6)


@pytest.fixture(params=["memory", "sqlite"])
def saver(request, tmp_path):
    if request.param == "memory":
        yield memory_checkpointer()
    else:
        s = sqlite_checkpointer(tmp_path / "ckpt.sqlite")
        yield s
        s.conn.close()


@pytest.mark.parametrize("edges", ["latent", ["latent", "text", "latent"]])
def test_sequential_resume_after_critic_is_identical(llama, saver, edges):
    reference = build_sequential(llama, edges=edges, **OPTS).invoke({"questions": QS})["answers"]
    g = build_sequential(llama, edges=edges, checkpointer=saver, interrupt_after=["critic"], **OPTS)
    cfg = {"configurable": {"thread_id": "t1"}}
    first = g.invoke({"questions": QS}, cfg)
    assert "answers" not in first or not first.get("answers")
    assert g.get_state(cfg).next == ("refiner",)
    resumed = g.invoke(None, cfg)
    assert resumed["answers"] == reference
    final = g.get_state(cfg).values
    assert [t["node"] for t in final["trace"]] == ["planner", "critic", "refiner", "judger"]
    assert checkpoint_nbytes(saver) > 0


def test_hierarchical_resume_with_branch_handles(llama, saver):
    reference = build_hierarchical(llama, **OPTS).invoke({"questions": QS})["answers"]
    g = build_hierarchical(llama, checkpointer=saver, interrupt_after=["math_expert", "science_expert", "code_expert"], **OPTS)
    cfg = {"configurable": {"thread_id": "h1"}}
    g.invoke({"questions": QS}, cfg)
    state = g.get_state(cfg)
    assert set(state.values["branches"]) == {"math_expert", "science_expert", "code_expert"}
    assert g.invoke(None, cfg)["answers"] == reference
