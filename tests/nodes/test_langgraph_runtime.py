"""Latent nodes under LangGraph's own runtime machinery (issue 30, items 4 and 8).

- A node called by hand from a ``Runtime``-style wrapper (``def planner(state, runtime): return NODE(state)``)
  still sends its ``latent_step`` events to ``astream_events`` and the custom stream, and the judger's tokens to
  ``stream_mode="messages"``.
- ``add_node(..., timeout=...)``: an async latent node stops at a latent-step boundary when LangGraph times it
  out, and the next run on the same model gives the greedy answer of a fresh run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from latent_graph.engine import DecodeOptions
from latent_graph.nodes import JudgerNode, LatentAgentNode
from latent_graph.persist import HandleStore
from latent_graph.state import LatentState

Q = {"questions": ["What is 12 times 7?"]}


@dataclass
class Ctx:
    tone: str = "plain"


def _nodes(model, steps=3):
    store = HandleStore.in_memory()
    planner = LatentAgentNode(model, "planner", "Plan.", steps=steps, handle_store=store)
    judger = JudgerNode(model, "judger", "Answer.", decoding=DecodeOptions(max_new_tokens=5), handle_store=store)
    return planner, judger


def _wrapped_graph(model):
    """The Runtime idiom: plain functions that call the nodes by hand, with no config passed down."""
    planner, judger = _nodes(model)

    def plan(state: LatentState, runtime: Runtime[Ctx]) -> dict:
        assert runtime.context.tone == "plain"
        return planner(state)

    def judge(state: LatentState, runtime: Runtime[Ctx]) -> dict:
        return judger(state)

    b = StateGraph(LatentState, context_schema=Ctx)
    b.add_node("planner", plan)
    b.add_node("judger", judge)
    b.add_edge(START, "planner")
    b.add_edge("planner", "judger")
    b.add_edge("judger", END)
    return b.compile()


def test_runtime_wrapped_node_sends_latent_steps_to_astream_events(llama):
    graph = _wrapped_graph(llama)

    async def run():
        return [
            e async for e in graph.astream_events(Q, context=Ctx(), version="v2") if e["event"] == "on_custom_event"
        ]

    events = asyncio.run(run())
    steps = [e for e in events if e["name"] == "latent_step"]
    assert [e["data"]["step"] for e in steps] == [0, 1, 2]
    assert {e["data"]["node"] for e in steps} == {"planner"}
    assert all(e["metadata"]["langgraph_node"] == "planner" for e in steps)


def test_runtime_wrapped_nodes_stream_custom_events_and_judger_tokens(llama):
    graph = _wrapped_graph(llama)
    custom, tokens, final = [], [], None
    for mode, chunk in graph.stream(Q, context=Ctx(), stream_mode=["custom", "messages", "values"]):
        if mode == "custom":
            custom.append(chunk)
        elif mode == "messages":
            tokens.append(chunk)
        else:
            final = chunk
    assert [c["step"] for c in custom if c["event"] == "latent_step"] == [0, 1, 2]
    texts = [msg.content for msg, meta in tokens if meta["langgraph_node"] == "judger"]
    assert texts and "".join(texts) == final["answers"][0]


def _timed_graph(model, steps, timeout):
    planner, judger = _nodes(model, steps)
    b = StateGraph(LatentState)
    b.add_node("planner", planner, timeout=timeout)
    b.add_node("judger", judger, timeout=timeout)
    b.add_edge(START, "planner")
    b.add_edge("planner", "judger")
    b.add_edge("judger", END)
    return b.compile()


def test_timeout_stops_an_async_latent_node_at_a_step_boundary_and_frees_the_model(tiny_factory):
    long = 1 << 16
    model = tiny_factory("llama", ctx=long)
    slow = long - 64  # far more latent steps than the timeout allows

    async def answer(m):
        return (await _timed_graph(m, 3, 60).ainvoke(Q))["answers"]

    async def timed_out_then_again():
        seen = []
        with pytest.raises(NodeTimeoutError, match="planner"):
            async for chunk in _timed_graph(model, slow, 0.5).astream(Q, stream_mode="custom"):
                seen.append(chunk["step"])
        # LangGraph does not wait for the cancelled node: this run waits until it has stopped at a step
        return seen, await answer(model)

    seen, again = asyncio.run(timed_out_then_again())
    assert 0 < len(seen) < slow  # it ran, and it did not run to the end
    assert again == asyncio.run(answer(tiny_factory("llama", ctx=long)))  # = a model that never saw a cancelled run


def test_a_node_can_be_added_without_a_name_like_any_runnable(llama):
    planner, _ = _nodes(llama)
    b = StateGraph(LatentState)
    b.add_node(planner)
    b.add_edge(START, "planner")
    out = b.compile().invoke(Q)
    assert out["trace"][0]["node"] == "planner"


def test_a_cancelled_run_stops_at_the_next_token_of_the_judger_and_the_next_latent_step(llama):
    import contextvars
    import threading

    from latent_graph.errors import RunStoppedError
    from latent_graph.nodes import streaming

    planner, judger = _nodes(llama)
    told = threading.Event()
    told.set()  # the awaiting task was cancelled before the first boundary
    context = contextvars.copy_context()
    context.run(streaming._STOP.set, told)
    for node in (planner, judger):
        with pytest.raises(RunStoppedError):
            context.run(node, Q)
    assert judger({**Q, **planner(Q)})["answers"]  # outside a cancelled run nothing stops
