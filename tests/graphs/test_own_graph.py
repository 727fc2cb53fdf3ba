"""Latent agents and prebuilt teams inside the graphs LangGraph users already have (issue 30, items 1, 2, 7, 8):
``MessagesState``, ``create_supervisor``, pydantic and dataclass states, a team that hands its answer on, ``name=``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel

from latent_graph import DecodeOptions, InvalidArgumentError
from latent_graph.errors import NoQuestionsError, StateChannelError, StateTypeError
from latent_graph.graphs import build_compact, build_hierarchical, build_sequential, build_single
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode, add_agent
from latent_graph.present.edges import edge_kinds_of
from latent_graph.state import LatentState
from latent_graph.state.access import conversation_of, values_of

FAST = dict(steps=2, max_new_tokens=4)
Q = "What is 12 times 7?"


def chain(builder: StateGraph, model, judger_name: str = "judger") -> Any:
    """planner ==latent==> judger in ``builder``."""
    add_agent(builder, LatentAgentNode(model=model, name="planner", instruction="Plan.", steps=2))
    add_agent(
        builder,
        JudgerNode(model=model, name=judger_name, instruction="Answer.", decoding=DecodeOptions(max_new_tokens=4)),
    )
    builder.add_edge(START, "planner")
    builder.add_edge("planner", judger_name)
    builder.add_edge(judger_name, END)
    return builder.compile()


# ------------------------------------------------------------------ item 1: MessagesState
def test_team_in_a_messages_state_graph_answers_into_the_conversation(llama):
    team = build_compact(llama, name="latent_team", **FAST)
    builder = StateGraph(MessagesState)
    builder.add_node("latent_team", team)
    builder.add_edge(START, "latent_team")
    builder.add_edge("latent_team", END)
    history = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello.")]
    out = builder.compile().invoke({"messages": [*history, HumanMessage(Q)]})
    assert set(out) == {"messages"}  # the team's own keys stay inside it
    msgs = out["messages"]
    assert [type(m).__name__ for m in msgs] == [
        "SystemMessage",
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert msgs[-1].name == "judger" and msgs[-1].content
    # the same answer as asking the team directly, with the conversation as the first agent's context
    direct = team.invoke({"questions": [Q], "context": ["System: Be brief.\nHuman: Hi\nAI: Hello."]})
    assert direct["answers"] == [msgs[-1].content]
    planner = team.invoke({"messages": [*history, HumanMessage(Q)]})["trace"][0]
    assert f"Question: {Q}" in planner["prompts"][0] and "Human: Hi\nAI: Hello." in planner["prompts"][0]


@pytest.mark.parametrize("build", [build_compact, build_sequential, build_hierarchical, build_single])
def test_every_builder_takes_a_name_and_a_conversation(llama, build):
    team = build(llama, name="my_team", **FAST)
    assert team.name == "my_team" and build(llama, **FAST).name == build.__name__.removeprefix("build_")
    out = team.invoke({"messages": [("user", Q)]})
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == out["answers"][0]
    from latent_graph.graphs import build_graph

    registry = build.__name__.removeprefix("build_")
    assert build_graph(registry, llama, name="my_team", **FAST).name == "my_team"
    with pytest.raises(InvalidArgumentError, match="name must be a non-empty string"):
        build(llama, name="", **FAST)


def test_latent_chain_in_a_messages_graph(llama):
    g = chain(StateGraph(LatentState), llama)  # LatentState holds MessagesState's 'messages' channel
    out = g.invoke({"messages": [HumanMessage(Q)]})
    planner, judger = out["trace"]
    assert judger["handle_bytes_before"] == planner["handle_bytes_after"] > 0  # the latent edge crossed
    assert [m.type for m in out["messages"]] == ["human", "ai"] and out["messages"][-1].name == "judger"
    assert out["messages"][-1].content == out["answers"][0]
    # a batch is not one conversation; an explicit question without a conversation adds no message
    assert not chain(StateGraph(LatentState), llama).invoke({"questions": [Q, Q]})["messages"]
    # in a plain MessagesState a latent edge would be dropped silently: refused when the node is added
    with pytest.raises(StateChannelError, match="'handle'"):
        add_agent(StateGraph(MessagesState), LatentAgentNode(model=llama, name="p", instruction="Plan.", steps=1))


def test_streamed_tokens_and_the_appended_reply_are_one_message(llama):
    writer = TextAgentNode(model=llama, name="writer", instruction="Reply.", decoding=DecodeOptions(max_new_tokens=3))
    single = StateGraph(MessagesState)
    add_agent(single, writer)
    single.add_edge(START, "writer")
    team = StateGraph(MessagesState)
    team.add_node("latent_team", build_compact(llama, name="latent_team", **FAST))
    team.add_edge(START, "latent_team")
    for g in (single.compile(), team.compile()):
        streamed = [c for c, _ in g.stream({"messages": [("user", Q)]}, stream_mode="messages")]
        out = g.invoke({"messages": [("user", Q)]})
        assert streamed and "".join(str(c.content) for c in streamed) == out["messages"][-1].content
        assert len({c.id for c in streamed}) == 1  # tokens and the reply appended to 'messages' share one id


def test_text_agent_alone_in_a_messages_state_graph(llama):
    builder = StateGraph(MessagesState)
    add_agent(
        builder,
        TextAgentNode(model=llama, name="writer", instruction="Reply.", decoding=DecodeOptions(max_new_tokens=3)),
    )
    builder.add_edge(START, "writer")
    out = builder.compile().invoke({"messages": [("user", Q)]})
    assert [m.type for m in out["messages"]] == ["human", "ai"] and out["messages"][-1].name == "writer"


def test_no_questions_no_conversation_is_a_named_error_with_a_hint(llama):
    team = build_compact(llama, **FAST)
    for bad in ({}, {"messages": [AIMessage("only an AI turn")]}, {"questions": []}):
        with pytest.raises(NoQuestionsError, match="'messages' holding a HumanMessage"):
            team.invoke(bad)


def test_conversation_leaves_tool_traffic_out_of_the_context():
    call = AIMessage("", tool_calls=[{"name": "transfer_to_x", "args": {}, "id": "c1"}])
    state = {
        "messages": [
            HumanMessage("first"),
            AIMessage("an answer"),
            call,
            ToolMessage("transferred", tool_call_id="c1"),
            HumanMessage("second"),
        ]
    }
    conv = conversation_of(state)
    assert conv.question == "second" and conv.history == "Human: first\nAI: an answer"
    assert conversation_of({"messages": []}) is None and conversation_of({}) is None


# ------------------------------------------------------------------ create_supervisor
class ScriptedRouter(GenericFakeChatModel):
    """A supervisor model that hands off to ``latent_team`` once, then ends with a text reply."""

    seen: list[list[Any]] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedRouter:
        assert "transfer_to_latent_team" in [getattr(t, "name", None) for t in tools]
        return self

    def _generate(self, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")  # inside langgraph-supervisor 0.0.31
def test_team_as_a_supervisor_agent(llama):
    from langgraph_supervisor import create_supervisor

    handoff = AIMessage("", tool_calls=[{"name": "transfer_to_latent_team", "args": {}, "id": "h1"}])
    router = ScriptedRouter(messages=iter([handoff, AIMessage("The team answered.")]), seen=[])
    team = build_compact(llama, name="latent_team", **FAST)
    sup = create_supervisor([team], model=router, prompt="Hand questions to latent_team.").compile()
    out = sup.invoke({"messages": [HumanMessage(Q)]})
    by_name = [m for m in out["messages"] if isinstance(m, AIMessage) and m.name == "judger"]
    assert len(by_name) == 1 and by_name[0].content  # the team ran and its answer came back
    assert by_name[0].content == team.invoke({"questions": [Q]})["answers"][0]  # the question it read
    assert any(getattr(m, "name", None) == "judger" for m in router.seen[-1])  # the supervisor saw it
    assert out["messages"][-1].content == "The team answered."


# ------------------------------------------------------------------ item 2: any state type
class PydanticState(BaseModel):
    questions: list[str] = []
    handle: dict[str, Any] | None = None
    answers: list[str] = []
    messages: Annotated[list[AnyMessage], add_messages] = []


@dataclasses.dataclass
class DataclassState:
    questions: list[str] = dataclasses.field(default_factory=list)
    handle: dict[str, Any] | None = None
    answers: list[str] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("schema", [PydanticState, DataclassState], ids=["pydantic", "dataclass"])
def test_latent_chain_on_a_pydantic_or_dataclass_state(llama, schema):
    g = chain(StateGraph(schema), llama)
    out = g.invoke({"questions": [Q]})
    typed = chain(StateGraph(LatentState), llama).invoke({"questions": [Q]})
    assert out["handle"]["columns"] == typed["trace"][0]["kv_len"]  # the planner's handle crossed in the field
    expected = typed["answers"]
    assert out["answers"] == expected  # the same greedy answer as the TypedDict state
    if schema is PydanticState:  # a pydantic state with a conversation answers into it
        chat = g.invoke({"messages": [HumanMessage(Q)]})
        assert chat["messages"][-1].name == "judger" and chat["messages"][-1].content == expected[0]


def test_values_of_reads_every_state_type():
    assert values_of({"a": 1}) == {"a": 1}
    assert values_of(PydanticState(questions=["q"]))["questions"] == ["q"]
    assert values_of(DataclassState(questions=["q"]))["questions"] == ["q"]
    with pytest.raises(StateTypeError):
        values_of(["not", "a", "state"])


# ------------------------------------------------------------------ item 7: a team hands on its answer
def test_team_as_subgraph_hands_on_its_answer_and_its_handle(llama):
    team = build_sequential(llama, agents={"critic": "Check."}, **FAST)
    builder = StateGraph(LatentState)
    add_agent(builder, LatentAgentNode(model=llama, name="scout", instruction="Find it.", steps=2))
    builder.add_node("team", team)
    add_agent(
        builder,
        TextAgentNode(model=llama, name="editor", instruction="Restate.", decoding=DecodeOptions(max_new_tokens=3)),
    )
    builder.add_edge(START, "scout")
    builder.add_edge("scout", "team")
    builder.add_edge("team", "editor")
    builder.add_edge("editor", END)
    g = builder.compile()
    out = g.invoke({"questions": [Q]})
    by = {r["node"]: r for r in out["trace"]}
    assert f"Message from judger:\n{out['answers'][0]}" in by["editor"]["prompts"][0]
    # the editor read the judger's decoded handle (cache + answer), not the critic's
    assert (
        by["editor"]["handle_bytes_before"] == by["judger"]["handle_bytes_after"] > by["critic"]["handle_bytes_after"]
    )
    assert edge_kinds_of(g, xray=True)[("team:judger", "editor")] == "latent"
    assert edge_kinds_of(g)[("team", "editor")] == "latent"  # the team node declares what its judger does
    # on its own the same team hands nothing on: its handle is the critic's, its inbox holds no answer
    alone = team.invoke({"questions": [Q]})
    critic = next(r for r in alone["trace"] if r["node"] == "critic")
    assert alone["handle"]["columns"] == critic["kv_len"] and not alone.get("inbox")


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_supervisor_hands_off_to_the_team_on_the_default_model(default_model):
    """The default model behind its chat face routes (a human turn gets a tool call) and the team answers."""
    from langgraph_supervisor import create_supervisor

    from latent_graph.langchain import as_chat_model

    team = build_compact(default_model, name="latent_team", steps=4, max_new_tokens=24)
    sup = create_supervisor([team], model=as_chat_model(default_model, max_new_tokens=96)).compile()
    out = sup.invoke({"messages": [HumanMessage(Q)]})
    ai = [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert ai[0].tool_calls[0]["name"] == "transfer_to_latent_team"
    answer = next(m for m in ai if m.name == "judger")
    assert "12" in answer.content and answer.content == team.invoke({"questions": [Q]})["answers"][0]
