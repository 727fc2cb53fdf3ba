"""LangGraph layer on tiny models: graphs, edges, state safety, streaming, drawing, Runnable faces."""

from __future__ import annotations

import pytest
import torch
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk
from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, InvalidArgumentError, LatentHandle, ModelMismatchError
from latent_graph.graphs import build_compact, build_hierarchical, build_sequential, build_single, roles
from latent_graph.langchain import LatentRunnable, as_chat_model
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode, add_agent
from latent_graph.persist import default_handle_store, is_ref
from latent_graph.present.draw import to_ascii, to_image, to_mermaid
from latent_graph.present.edges import edge_kinds_of
from latent_graph.state import LatentState
from latent_graph.state.edges import sends_metadata


def load(ref):
    """The handle behind a state reference (the nodes' default store)."""
    return default_handle_store().load(ref)


QS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples?", "Plan it."]
FAST = dict(steps=2, max_new_tokens=4)


@pytest.mark.parametrize("edges", ["latent", "text", ["latent", "text", "latent"], {"critic": "text"}])
def test_sequential_runs_with_any_edges(llama, edges):
    out = build_sequential(llama, edges=edges, **FAST).invoke({"questions": QS})
    assert len(out["answers"]) == len(QS)
    assert [t["node"] for t in out["trace"]] == ["planner", "critic", "refiner", "judger"]
    kinds = [t["kind"] for t in out["trace"][:3]]
    expected = {"latent": ["latent"] * 3, "text": ["text"] * 3}.get(edges if isinstance(edges, str) else "", None)
    if isinstance(edges, list):
        expected = edges
    elif isinstance(edges, dict):
        expected = ["latent", "text", "latent"]
    assert kinds == expected
    for t in out["trace"][:3]:
        if t["kind"] == "latent":
            assert t["latent_steps"] == 2 and t["generated_tokens"] == [0] * len(QS)
        else:
            assert t["latent_steps"] == 0 and all(n > 0 for n in t["generated_tokens"])
        assert t["rows"] == len(QS) and len(t["prompt_tokens"]) == len(QS) and min(t["prompt_tokens"]) > 0
    # the output holds the final handle as a JSON reference (None after a text edge), loadable from its store
    assert out.get("handle") is None or (
        is_ref(out["handle"]) and load(out["handle"]).seq_len == out["handle"]["columns"]
    )


def test_text_edge_starts_fresh_cache_and_passes_text(llama):
    out = build_sequential(llama, edges=["latent", "text", "latent"], message_tokens=4, **FAST).invoke(
        {"questions": QS[:1]}
    )
    by = {t["node"]: t for t in out["trace"]}
    # the critic decodes on top of the planner's cache; the refiner starts a fresh one
    assert by["critic"]["kv_len"] > by["planner"]["kv_len"]
    assert by["refiner"]["kv_len"] < by["critic"]["kv_len"]
    assert [m["agent"] for m in out["transcript"]] == ["critic", "judger"]


@pytest.mark.parametrize("edges", ["latent", "text", ["latent", "text", "latent"]])
def test_hierarchical_runs_parallel_branches(llama, edges):
    g = build_hierarchical(llama, edges=edges, **FAST)
    out = g.invoke({"questions": QS[:2]})
    assert len(out["answers"]) == 2
    nodes = [t["node"] for t in out["trace"]]
    assert sorted(nodes[:3]) == sorted(roles.EXPERTS) and nodes[3] == "judger"
    # fan-out: every expert hangs off START directly
    starts = {e.target for e in g.get_graph().edges if e.source == START}
    assert starts == set(roles.EXPERTS)


def _judger_logits(model, handle, question: str) -> torch.Tensor:
    h = model.think(handle, roles.JUDGER + "\n\nQuestion: " + question, 0, agent="judger")
    return model.hf_model.get_output_embeddings()(h.last_hidden)


def test_hierarchical_judger_sees_every_branch(llama):
    g = build_hierarchical(llama, **FAST)
    # the judger clears branches; capture the merge instead via the nodes by hand
    experts = {
        n: LatentAgentNode(model=llama, name=n, instruction=i, sees_context=k == 0, branch=True, steps=2)
        for k, (n, i) in enumerate(roles.EXPERTS.items())
    }
    state = {"questions": ["Which code?"], "context": ["The code is BLUE-42."]}
    branches = {}
    for node in experts.values():
        branches.update(node(state)["branches"])
    judge = JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=2))
    merged = judge.incoming({**state, "branches": branches})
    agents = {s.agent for s in merged.segments}
    assert agents == set(roles.EXPERTS)
    assert merged.seq_len == sum(b["columns"] for b in branches.values())
    # the fact only the first expert saw changes what the judger computes
    other = dict(branches)
    first = next(iter(roles.EXPERTS))
    other.update(experts[first]({**state, "context": ["The code is RED-17."]})["branches"])
    merged2 = judge.incoming({**state, "branches": other})
    assert not torch.allclose(
        _judger_logits(llama, merged, "Which code?"), _judger_logits(llama, merged2, "Which code?")
    )
    assert g.invoke(state)["answers"]


def test_relay_through_latent_chain_only(llama):
    """A fact seen only by the planner changes the judger's computation through latent edges,
    even when each agent keeps only the previous agent's segment (memory='last')."""

    def final(ctx: str, edges: str) -> LatentHandle | None:
        g = build_sequential(llama, edges=edges, memory="last", **FAST)
        return load(g.invoke({"questions": ["Which code?"], "context": [ctx]})["handle"])

    a, b = final("The code is BLUE-42.", "latent"), final("The code is RED-17.", "latent")
    assert [s.agent for s in a.segments] == ["critic", "critic", "refiner", "refiner"]  # planner's columns are gone
    assert not torch.allclose(_judger_logits(llama, a, "Which code?"), _judger_logits(llama, b, "Which code?"))
    # no edge at all: the judger alone cannot be influenced by the planner's fact
    none_a = _judger_logits(llama, None, "Which code?")
    assert torch.equal(none_a, _judger_logits(llama, None, "Which code?"))


def test_state_handle_is_never_mutated(llama):
    seen: list[tuple[LatentHandle, list[torch.Tensor]]] = []
    planner = LatentAgentNode(model=llama, name="planner", instruction=roles.PLANNER, steps=2)

    def spy(state, config=None):
        out = planner(state)
        h = load(out["handle"])
        seen.append((h, [t.clone() for t in (*h.keys, *h.values, h.attention_mask, h.position_ids)]))
        return out

    b = StateGraph(LatentState)
    b.add_node("planner", spy)
    b.add_node("critic", LatentAgentNode(model=llama, name="critic", instruction=roles.CRITIC, steps=3))
    b.add_node(
        "judger",
        JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3)),
    )
    b.add_edge(START, "planner")
    b.add_edge("planner", "critic")
    b.add_edge("critic", "judger")
    b.add_edge("judger", END)
    out = b.compile().invoke({"questions": QS[:2]})
    ((h, before),) = seen
    after = [*h.keys, *h.values, h.attention_mask, h.position_ids]
    assert all(torch.equal(x, y) for x, y in zip(before, after))
    assert load(out["handle"]).seq_len > h.seq_len  # later nodes built new handles


def test_graph_on_model_y_refuses_handle_from_model_x(tiny_factory):
    x, y = tiny_factory("llama", seed=0), tiny_factory("llama", seed=1)
    hx = x.think(None, "What is 12 times 7?", steps=1)
    b = StateGraph(LatentState)
    b.add_node("critic", LatentAgentNode(model=y, name="critic", instruction=roles.CRITIC, steps=1))
    b.add_edge(START, "critic")
    b.add_edge("critic", END)
    with pytest.raises(ModelMismatchError, match=y.fingerprint.digest):
        b.compile().invoke({"questions": ["q"], "handle": hx})


def test_custom_events_and_message_stream(llama):
    g = build_sequential(llama, inspect=2, **FAST)
    customs, tokens = [], []
    for mode, chunk in g.stream({"questions": QS[:1]}, stream_mode=["custom", "messages"]):
        if mode == "custom":
            customs.append(chunk)
        else:
            msg, meta = chunk
            if isinstance(msg, AIMessageChunk) and msg.content:
                tokens.append((meta["langgraph_node"], msg.content))
    assert [(c["node"], c["step"]) for c in customs] == [
        (n, s) for n in ("planner", "critic", "refiner") for s in (0, 1)
    ]
    assert all(len(c["nearest"][0]) == 2 and c["norm"][0] > 0 for c in customs)
    assert tokens and {n for n, _ in tokens} == {"judger"}


def test_nodes_work_outside_a_graph_run(llama):
    node = LatentAgentNode(model=llama, name="planner", instruction=roles.PLANNER, steps=2)
    out = node({"questions": ["q"]})
    assert load(out["handle"]).latent_steps == 2 and len(out["trace"][0]["steps"]) == 2
    text = TextAgentNode(model=llama, name="critic", instruction=roles.CRITIC, decoding=DecodeOptions(max_new_tokens=3))
    t = text({"questions": ["q"], "handle": out["handle"]})
    assert t["handle"] is None and t["inbox"][0]["agent"] == "critic"


def test_text_agent_with_any_langchain_chat_model(llama, tiny_factory):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    fake = FakeListChatModel(responses=["Step 1: multiply.", "Step 1: add."])
    b = StateGraph(LatentState)
    b.add_node("planner", TextAgentNode(model=fake, name="planner", instruction=roles.PLANNER))
    b.add_node(
        "judger",
        JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3)),
    )
    b.add_edge(START, "planner")
    b.add_edge("planner", "judger")
    b.add_edge("judger", END)
    out = b.compile().invoke({"questions": QS[:2]})
    assert out["transcript"][0]["texts"] == ["Step 1: multiply.", "Step 1: add."]
    # a handle of a model no agent node runs on cannot be decoded into a message for the foreign model
    stranger = tiny_factory("llama", seed=7)
    hx = stranger.think(None, "q", steps=1)
    with pytest.raises(ModelMismatchError):
        TextAgentNode(model=fake, name="p", instruction="x")({"questions": ["q"], "handle": hx})


def test_bad_graph_arguments(llama):
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama, edges=["latent"])
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama, edges={"nobody": "text"})
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama, edges="telepathy")
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama, memory="forget")
    with pytest.raises(InvalidArgumentError):
        build_single(llama, task="poetry")
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama).invoke({"questions": []})


def test_drawings_are_offline_and_style_edges(llama, tmp_path):
    g = build_sequential(llama, edges=["latent", "text", "latent"])
    kinds = edge_kinds_of(g)
    assert kinds[("planner", "critic")] == "latent" and kinds[("critic", "refiner")] == "text"
    mm = to_mermaid(g, highlight=["planner"])
    assert "planner == latent ==> critic" in mm and "critic -. text .-> refiner" in mm and ":::ran" in mm
    assert "==latent==>" in to_ascii(g) and "--text" in to_ascii(g)
    for ext in ("png", "svg"):
        p = to_image(g, tmp_path / f"g.{ext}")
        assert p.stat().st_size > 1000
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    # hand-wired graphs: kinds declared in the node metadata (add_agent), read back through get_graph()
    b = StateGraph(LatentState)
    add_agent(b, LatentAgentNode(model=llama, name="a", instruction="x"))
    b.add_node("t", TextAgentNode(model=llama, name="t", instruction="y"), metadata=sends_metadata("text"))
    b.add_edge(START, "a")
    b.add_edge("a", "t")
    b.add_edge("t", END)
    k = edge_kinds_of(b.compile())
    assert k[("a", "t")] == "latent" and k[("t", END)] == "text" and k[(START, "a")] == "plain"
    undeclared = StateGraph(LatentState)
    undeclared.add_node("a", LatentAgentNode(model=llama, name="a", instruction="x"))
    undeclared.add_edge(START, "a")
    undeclared.add_edge("a", END)
    assert edge_kinds_of(undeclared.compile())[("a", END)] == "plain"  # nothing guessed from the node object


class _Counter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0
        self.tokens = 0

    def on_chain_start(self, *a, **k) -> None:
        self.starts += 1

    def on_llm_start(self, *a, **k) -> None:
        self.starts += 1

    def on_chat_model_start(self, *a, **k) -> None:
        self.starts += 1

    def on_llm_new_token(self, *a, **k) -> None:
        self.tokens += 1


def test_model_is_a_runnable_and_a_chat_model(llama):
    cb = _Counter()
    runnable = LatentRunnable(llama)
    h = runnable.invoke({"prompt": "Plan.", "mode": "think", "steps": 2}, config={"callbacks": [cb]})
    assert isinstance(h, LatentHandle) and h.latent_steps == 2 and cb.starts >= 1
    d = runnable.invoke({"prompt": "Answer.", "handle": h, "mode": "decode", "max_new_tokens": 3})
    assert d.handle.seq_len > h.seq_len
    assert isinstance(runnable.invoke("Hello"), str)
    with pytest.raises(InvalidArgumentError):
        runnable.invoke({"mode": "think"})
    chat = as_chat_model(llama, max_new_tokens=3)
    msg = chat.invoke("Hello")
    assert isinstance(msg, AIMessage) and 1 <= msg.usage_metadata["output_tokens"] <= 3
    cb2 = _Counter()
    chunks = list(chat.stream("Hello", config={"callbacks": [cb2]}))
    assert "".join(c.content for c in chunks) == msg.content and cb2.tokens >= 1


def test_judger_keeps_the_decoded_handle_when_asked(llama):
    h = llama.think(None, "Plan.", steps=1, agent="planner")
    state = {"questions": ["What is 2+2?"], "handle": h}
    kept = JudgerNode(
        model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3), keep_handle=True
    )(state)
    plain = JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3))(
        state
    )
    assert "handle" not in plain and kept["answers"] == plain["answers"]
    out = load(kept["handle"])
    assert out.seq_len == kept["trace"][0]["kv_len"] > h.seq_len and out.segments[-1].agent == "judger"
    assert out.generated_tokens == sum(kept["trace"][0]["generated_tokens"])
    assert state["handle"] is h  # the input handle is untouched


def test_compact_agents_prompts_restate_the_question_only_when_asked(llama):
    from latent_graph.graphs.compact import COMPACT_FIRST, COMPACT_LATER

    state = {"questions": ["Which code?", "Which colour?"], "context": ["The code is K-7.", ""]}
    first = LatentAgentNode(model=llama, name="planner", instruction=COMPACT_FIRST, sees_context=True, restate=True)
    later = LatentAgentNode(model=llama, name="critic", instruction=COMPACT_LATER, sees_context=True, restate=False)
    assert first.prompts(state) == [
        f"{COMPACT_FIRST}\n\nContext (only you have seen this): The code is K-7.\n\nQuestion: Which code?",
        f"{COMPACT_FIRST}\n\nQuestion: Which colour?",
    ]
    # the compact layout's later agents: instruction + private context, no question
    assert later.prompts(state) == [
        f"{COMPACT_LATER}\n\nContext (only you have seen this): The code is K-7.",
        COMPACT_LATER,
    ]
    g = build_compact(llama, **FAST)
    nodes = {n: g.builder.nodes[n].runnable for n in ("planner", "critic", "refiner")}
    restates = {n: getattr(r, "restate", None) for n, r in nodes.items()}  # a node is its own Runnable
    assert restates == {"planner": True, "critic": False, "refiner": False}, restates
