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


# ------------------------------------------------------------------ item 2: subgraphs
def _inner(model):
    from latent_graph.graph import TextAgentNode

    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=model, name="inner_think", instruction="Think.", steps=1))
    add_agent(builder, TextAgentNode(model=model, name="inner_say", instruction="Say it.", max_new_tokens=2))
    builder.add_edge(START, "inner_think")
    builder.add_edge("inner_think", "inner_say")
    builder.add_edge("inner_say", END)
    return builder.compile()


def test_subgraph_merges_state_once(llama):
    from latent_graph.graph import TextAgentNode

    builder = StateGraph(LatentState)
    add_agent(builder, TextAgentNode(model=llama, name="outer", instruction="Say hi.", max_new_tokens=2))
    builder.add_node("sub", _inner(llama), metadata={"latent_graph": {"sends": "text"}})
    add_agent(builder, JudgerNode(model=llama, name="judger", instruction="Answer.", max_new_tokens=2))
    builder.add_edge(START, "outer")
    builder.add_edge("outer", "sub")
    builder.add_edge("sub", "judger")
    builder.add_edge("judger", END)
    out = builder.compile().invoke({"questions": ["What is 3+5?"]})
    assert [r["node"] for r in out["trace"]] == ["outer", "inner_think", "inner_say", "judger"]
    assert [m["agent"] for m in out["messages"]] == ["outer", "inner_say", "judger"]
    judger = out["trace"][-1]
    # the subgraph consumed outer's message: the judger reads inner_say's message only
    assert "Message from inner_say" in judger["prompts"][0] and "Message from outer" not in judger["prompts"][0]
    assert all(m.get("read") for m in out["inbox"])


def test_prebuilt_graph_as_subgraph_receives_the_handle(llama):
    from latent_graph.graph import build_sequential

    sub = build_sequential(llama, agents={"critic": "Check."}, **FAST)
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=llama, name="planner", instruction="Plan.", steps=2))
    builder.add_node("team", sub)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "team")
    builder.add_edge("team", END)
    out = builder.compile().invoke({"questions": ["What is 12 times 7?"]})
    by = {r["node"]: r for r in out["trace"]}
    assert len(out["trace"]) == 3 and out["answers"]
    assert by["critic"]["handle_bytes_before"] > 0 and by["critic"]["kv_len"] > by["planner"]["kv_len"]
