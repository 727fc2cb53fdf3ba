"""Composing any LangGraph (issue 12): Send fan-out, subgraphs, threads, savers, events, foreign models."""

from __future__ import annotations

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from latent_graph import BranchCollisionError, DecodeOptions
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent
from latent_graph.state import LatentState, branches_reducer

FAST = dict(steps=2, max_new_tokens=4)
TOPICS = ["algebra", "geometry", "counting"]


def send_graph(model, topics=TOPICS):
    """planner -> Send(worker) per topic -> judger (map-reduce over latent branches)."""
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=model, name="planner", instruction="Plan.", steps=2))
    add_agent(
        builder, LatentAgentNode(model=model, name="worker", instruction="Work on your part.", steps=2, branch=True)
    )
    add_agent(
        builder, JudgerNode(model=model, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=2))
    )

    def fan_out(state):
        return [
            Send("worker", {"questions": [f"{t}: {q}" for q in state["questions"]], "handle": state["handle"]})
            for t in topics
        ]

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
    from latent_graph.state.branches import ordered

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
    builder.add_node(
        "j", JudgerNode(model=llama, name="j", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=1))
    )
    builder.add_edge(["a", "b"], "j")
    with pytest.raises(BranchCollisionError):
        builder.compile().invoke({"questions": ["q"]})


# ------------------------------------------------------------------ item 2: subgraphs
def _inner(model):
    from latent_graph.nodes import TextAgentNode

    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=model, name="inner_think", instruction="Think.", steps=1))
    add_agent(
        builder,
        TextAgentNode(model=model, name="inner_say", instruction="Say it.", decoding=DecodeOptions(max_new_tokens=2)),
    )
    builder.add_edge(START, "inner_think")
    builder.add_edge("inner_think", "inner_say")
    builder.add_edge("inner_say", END)
    return builder.compile()


def test_subgraph_merges_state_once(llama):
    from latent_graph.nodes import TextAgentNode

    builder = StateGraph(LatentState)
    add_agent(
        builder,
        TextAgentNode(model=llama, name="outer", instruction="Say hi.", decoding=DecodeOptions(max_new_tokens=2)),
    )
    builder.add_node("sub", _inner(llama), metadata={"latent_graph": {"sends": "text"}})
    add_agent(
        builder, JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=2))
    )
    builder.add_edge(START, "outer")
    builder.add_edge("outer", "sub")
    builder.add_edge("sub", "judger")
    builder.add_edge("judger", END)
    out = builder.compile().invoke({"questions": ["What is 3+5?"]})
    assert [r["node"] for r in out["trace"]] == ["outer", "inner_think", "inner_say", "judger"]
    assert [m["agent"] for m in out["transcript"]] == ["outer", "inner_say", "judger"]
    judger = out["trace"][-1]
    # the subgraph consumed outer's message: the judger reads inner_say's message only
    assert "Message from inner_say" in judger["prompts"][0] and "Message from outer" not in judger["prompts"][0]
    assert all(m.get("read") for m in out["inbox"])


def test_prebuilt_graph_as_subgraph_receives_the_handle(llama):
    from latent_graph.graphs import build_sequential

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


# ------------------------------------------------------------------ item 7: plain savers
def test_plain_langgraph_savers_store_handles(llama, tmp_path):
    import sqlite3

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from latent_graph.graphs import build_sequential
    from latent_graph.persist import HandleStore, MemoryBlobStore, is_ref

    cfg = {"configurable": {"thread_id": "t"}}
    store = HandleStore(MemoryBlobStore())
    saver = InMemorySaver()
    serde = saver.serde
    out = build_sequential(llama, checkpointer=saver, handle_store=store, **FAST).invoke({"questions": ["q"]}, cfg)
    assert out["answers"] and saver.serde is serde  # the saver as given, its serializer untouched
    sq = SqliteSaver(sqlite3.connect(str(tmp_path / "c.db"), check_same_thread=False))
    assert build_sequential(llama, checkpointer=sq, handle_store=store, **FAST).invoke({"questions": ["q"]}, cfg)[
        "answers"
    ]
    # a hand-built graph compiles with the same stock saver: its nodes put references in state
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=llama, name="a", instruction="Think.", steps=1, handle_store=store))
    builder.add_edge(START, "a")
    graph = builder.compile(checkpointer=InMemorySaver())
    assert graph.invoke({"questions": ["q"]}, cfg)["trace"]
    ref = graph.get_state(cfg).values["handle"]
    assert is_ref(ref) and HandleStore(store.blobs).load(ref, llama).seq_len > 0


# ------------------------------------------------------------------ item 3: reused thread_id
def _planner_kv(outs, n_runs):
    assert all(len([r for r in out["trace"] if r["node"] == "planner"]) == 1 for out in outs)  # one turn each
    planners = [r for out in outs for r in out["trace"] if r["node"] == "planner"]
    assert len(planners) == n_runs
    return [r["kv_len"] for r in planners]


def test_reused_thread_starts_a_fresh_cache_by_default(llama):
    from langgraph.checkpoint.memory import InMemorySaver

    from latent_graph.graphs import build_sequential

    g = build_sequential(llama, checkpointer=InMemorySaver(), **FAST)
    cfg = {"configurable": {"thread_id": "same"}}
    outs = [g.invoke({"questions": ["What is 12 times 7?"]}, cfg) for _ in range(3)]
    kv = _planner_kv(outs, 3)
    assert kv[0] == kv[1] == kv[2]


def test_thread_continues_as_a_bounded_conversation(tiny_factory):
    from langgraph.checkpoint.memory import InMemorySaver

    from latent_graph.graphs import build_sequential

    model = tiny_factory("llama", ctx=500)
    g = build_sequential(model, agents={"planner": "Plan."}, checkpointer=InMemorySaver(), **FAST)
    q = {"questions": ["What is 12 times 7? Answer with the number."]}
    turn = g.invoke(q, {"configurable": {"thread_id": "probe"}})["trace"][-1]["kv_len"]  # columns of one turn
    window = turn + turn // 2
    cfg = {"configurable": {"thread_id": "chat", "latent_thread": "continue", "latent_window": window}}
    # without the bound the cache grows by a turn per run and overflows 500 positions
    outs = [g.invoke(q, cfg) for _ in range(12)]
    kv = _planner_kv(outs, 12)
    assert kv[1] > kv[0]  # turn 2 continued on top of turn 1 (the judger's answer included)
    judgers = [r for out in outs for r in out["trace"] if r["node"] == "judger"]
    assert max(r["kv_len"] for r in judgers) <= window + turn
    assert outs[-1]["answers"]
    with pytest.raises(Exception, match="latent_thread"):
        g.invoke({"questions": ["q"]}, {"configurable": {"thread_id": "x", "latent_thread": "forever"}})


# ------------------------------------------------------------------ item 5: the chat-model contract
def test_chat_model_honours_langchain_options(llama):
    from latent_graph import InvalidArgumentError
    from latent_graph.langchain import as_chat_model

    chat = as_chat_model(llama, max_tokens=3)
    assert chat.options.max_new_tokens == 3
    full = as_chat_model(llama, max_new_tokens=12).invoke("Plan the solution step by step.")
    assert full.usage_metadata["output_tokens"] >= 1
    text = str(full.content)
    assert (
        as_chat_model(llama).invoke("Plan the solution step by step.", max_tokens=2).usage_metadata["output_tokens"]
        <= 2
    )
    if len(text) > 2:  # stop at the text's second character: the reply is cut before it
        stop = text[1]
        cut = as_chat_model(llama, max_new_tokens=12).bind(stop=[stop]).invoke("Plan the solution step by step.")
        assert cut.content == text[: text.index(stop)]
    chunks = list(as_chat_model(llama, max_new_tokens=4).stream("Hi"))
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1 and all(not c.content for c in chunks[chunks.index(with_usage[0]) :])
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.usage_metadata["output_tokens"] >= 1
    hot = as_chat_model(llama, max_new_tokens=4).invoke("Hi", temperature=1.0, seed=3)
    assert hot.usage_metadata
    with pytest.raises(InvalidArgumentError, match="frequency_penalty"):
        as_chat_model(llama).invoke("Hi", frequency_penalty=1.0)
    assert as_chat_model(llama).bind_tools([]) is not None  # tool calling: tests/langchain/test_chat_tools.py


def test_runnable_face_accepts_prompt_values_and_messages(llama):
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

    from latent_graph.langchain import LatentRunnable

    runnable = LatentRunnable(llama)
    chat = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | runnable
    reply = chat.invoke({"q": "What is 3+5?"})
    assert isinstance(reply, AIMessage) and reply.usage_metadata
    assert isinstance((PromptTemplate.from_template("Q: {q}") | runnable).invoke({"q": "Hi"}), str)
    assert isinstance(runnable.invoke([HumanMessage("Hi")]), AIMessage)


# ------------------------------------------------------------------ item 8: events in astream_events
def test_latent_steps_reach_astream_events_and_custom_stream(llama):
    import asyncio

    from latent_graph.graphs import build_sequential

    g = build_sequential(llama, agents={"planner": "Plan."}, **FAST)

    async def collect():
        return [e async for e in g.astream_events({"questions": ["q"]}, version="v2")]

    events = asyncio.run(collect())
    custom = [e for e in events if e["event"] == "on_custom_event" and e["name"] == "latent_step"]
    assert [(e["data"]["node"], e["data"]["step"], e["data"]["total"]) for e in custom] == [
        ("planner", 0, 2),
        ("planner", 1, 2),
    ]
    assert custom[0]["metadata"]["langgraph_node"] == "planner"
    streamed = [c for c in g.stream({"questions": ["q"]}, stream_mode="custom") if c.get("event") == "latent_step"]
    assert len(streamed) == 2


# ------------------------------------------------------------------ item 6: external chat models as agents
def test_latent_edge_into_a_foreign_chat_model_becomes_text(llama):
    from langchain_core.language_models import FakeListChatModel

    from latent_graph.nodes import TextAgentNode
    from latent_graph.present.draw import to_mermaid
    from latent_graph.present.edges import edge_kinds_of

    foreign = FakeListChatModel(responses=["the foreign reply"] * 4)
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=llama, name="planner", instruction="Plan.", steps=2))
    add_agent(builder, TextAgentNode(model=foreign, name="reviewer", instruction="Review.", handoff_model=llama))
    add_agent(
        builder, JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=2))
    )
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "reviewer")
    builder.add_edge("reviewer", "judger")
    builder.add_edge("judger", END)
    g = builder.compile()
    out = g.invoke({"questions": ["What is 12 times 7?"]})
    reviewer = next(r for r in out["trace"] if r["node"] == "reviewer")
    assert "planner" in reviewer["converted"] and "Message from planner" in reviewer["prompts"][0]
    assert [m["agent"] for m in out["transcript"]] == ["planner", "reviewer", "judger"]
    assert edge_kinds_of(g)[("planner", "reviewer")] == "text"
    assert "planner -. text .-> reviewer" in to_mermaid(g)


def test_chat_face_of_the_same_model_is_the_same_engine(llama):
    from langchain_core.language_models import FakeListChatModel

    from latent_graph.graphs import build_sequential
    from latent_graph.langchain import as_chat_model
    from latent_graph.nodes import TextAgentNode

    node = TextAgentNode(
        model=as_chat_model(llama), name="t", instruction="Say.", decoding=DecodeOptions(max_new_tokens=2)
    )
    h = llama.think(None, "Plan.", 1, agent="planner")
    assert node({"questions": ["q"], "handle": h})["trace"][0]["handle_bytes_before"] > 0
    assert build_sequential(as_chat_model(llama), **FAST).invoke({"questions": ["q"]})["answers"]
    fake = FakeListChatModel(responses=["ok"] * 8)
    out = build_sequential(fake, **FAST).invoke({"questions": ["q"]})
    assert out["answers"] == ["ok"] and {r["kind"] for r in out["trace"][:-1]} == {"text"}
