"""Composing any LangGraph (issue 12): Send fan-out, subgraphs, threads, savers, events, foreign models."""

from __future__ import annotations

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from latent_graph import BranchCollisionError
from latent_graph.graph import JudgerNode, LatentAgentNode, LatentState, add_agent, branches_reducer

FAST = dict(steps=2, max_new_tokens=4)
TOPICS = ["algebra", "geometry", "counting"]


def send_graph(model, topics=TOPICS):
    """planner -> Send(worker) per topic -> judger (map-reduce over latent branches)."""
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=model, name="planner", instruction="Plan.", steps=2))
    add_agent(builder, LatentAgentNode(model=model, name="worker", instruction="Work on your part.", steps=2,
                                       branch=True))
    add_agent(builder, JudgerNode(model=model, name="judger", instruction="Answer.", max_new_tokens=2))

    def fan_out(state):
        return [Send("worker", {"questions": [f"{t}: {q}" for q in state["questions"]], "handle": state["handle"]})
                for t in topics]

    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", fan_out, ["worker"])
    builder.add_edge("worker", "judger")
    builder.add_edge("judger", END)
    return builder.compile()


def test_send_fan_out_keeps_every_branch(llama):
    seen = {}
    g = send_graph(llama)
    out = g.invoke({"questions": ["What is 12 times 7?"]})
    recs = {r["branch"]: r for r in out["trace"] if r["node"] == "worker"}
    assert sorted(recs) == ["worker[0]", "worker[1]", "worker[2]"]
    assert all(r["graph_node"] == "worker" for r in recs.values())
    planner = out["trace"][0]["kv_len"]
    judger = next(r for r in out["trace"] if r["node"] == "judger")
    suffixes = sum(r["kv_len"] - planner for r in recs.values())
    # the judger read the planner prefix plus all three branch suffixes, not just the last one
    assert judger["kv_len"] >= planner + suffixes
    seen["kv"] = judger["kv_len"]


def test_send_branches_merge_in_task_order(llama):
    from latent_graph.graph.tasks import ordered

    assert ordered(["w[10]", "w[2]", "w[0]", "a"]) == ["a", "w[0]", "w[2]", "w[10]"]
    a = send_graph(llama).invoke({"questions": ["Plan it."]})
    b = send_graph(llama).invoke({"questions": ["Plan it."]})
    assert a["answers"] == b["answers"]


def test_branch_collision_is_a_named_error(llama):
    h1 = llama.think(None, "one", 0)
    h2 = llama.think(None, "two", 0)
    with pytest.raises(BranchCollisionError):
        branches_reducer({"w": h1}, {"w": h2})
    assert branches_reducer({"w": h1}, {"w": h1}) == {"w": h1}  # the same write again is no collision
    # two graph nodes running one agent name in parallel collide by name
    builder = StateGraph(LatentState)
    for node in ("a", "b"):
        builder.add_node(node, LatentAgentNode(model=llama, name="x", instruction="Think.", steps=1, branch=True))
        builder.add_edge(START, node)
    builder.add_node("j", JudgerNode(model=llama, name="j", instruction="Answer.", max_new_tokens=1))
    builder.add_edge(["a", "b"], "j")
    with pytest.raises(BranchCollisionError):
        builder.compile().invoke({"questions": ["q"]})
