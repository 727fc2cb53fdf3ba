"""The chat face on the default model: structured output valid first try, a tool-calling react agent, ``prompt | model``."""

from __future__ import annotations

import subprocess
import sys
from typing import Literal

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine():
    from latent_graph.engine import LocalLatentModel

    return LocalLatentModel.default()


class Person(BaseModel):
    name: str
    age: int


class Weather(TypedDict):
    city: str
    sky: Literal["sunny", "cloudy", "rainy"]


ARRAY = {
    "title": "shopping",
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "string"}}, "total": {"type": "number"}},
    "required": ["items", "total"],
}


def test_structured_output_is_valid_first_try(engine) -> None:
    from latent_graph.langchain import as_chat_model

    chat = as_chat_model(engine, max_new_tokens=64)
    cases = [
        (Person, "json_schema", "Bob is 30 years old."),
        (Person, "function_calling", "Ann is 25."),
        (Weather, "json_schema", "It rains in Oslo."),
        (Weather, "function_calling", "Sunny in Rome."),
        (ARRAY, "json_schema", "I bought milk and eggs for 5 dollars."),
    ]
    ok = 0
    for schema, method, q in cases * 4:  # 20 calls
        out = chat.with_structured_output(schema, method=method, include_raw=True).invoke(q)
        assert out["parsing_error"] is None, out
        value = out["parsed"]
        if schema is Person:
            assert isinstance(value, Person)
        else:
            assert set(value) >= set(["items", "total"] if schema is ARRAY else ["city", "sky"])
        ok += 1
    assert ok == 20


def test_react_agent_calls_the_tool(engine) -> None:
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    from latent_graph.langchain import as_chat_model

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    out = create_react_agent(as_chat_model(engine, max_new_tokens=48), [multiply]).invoke(
        {"messages": [("user", "What is 12 times 7?")]}
    )
    msgs = out["messages"]
    assert msgs[1].tool_calls[0]["name"] == "multiply" and msgs[1].tool_calls[0]["args"] == {"a": 12, "b": 7}
    assert msgs[1].tool_calls[0]["id"] and msgs[2].content == "84"
    assert "84" in msgs[-1].content and not msgs[-1].tool_calls


def test_local_model_in_chains(engine) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    from latent_graph.langchain import LatentRunnable

    runnable = LatentRunnable(engine)
    text = (prompt | runnable | StrOutputParser()).invoke({"q": "What is 2+2?"}, {"max_concurrency": 1})
    direct = engine.decode(
        None, None, messages=[[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]]
    ).text
    assert isinstance(text, str) and text == direct
    h = runnable.invoke({"prompt": "Plan 12*7.", "mode": "think", "steps": 2})
    assert h.latent_steps == 2 and "".join(runnable.stream("Say hi.", max_new_tokens=5))


def test_engine_import_loads_no_langchain() -> None:
    code = "import sys, latent_graph.engine; print(any(m.startswith('langchain') for m in sys.modules))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def _multiply():
    from langchain_core.tools import tool

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    return multiply


class Answer(BaseModel):
    value: int


def test_create_agent_ends_with_the_structured_answer(engine) -> None:
    """The model profile sends ``create_agent`` down the native structured-output route: call, result, JSON answer."""
    from langchain.agents import create_agent

    from latent_graph.langchain import as_chat_model

    agent = create_agent(as_chat_model(engine, max_new_tokens=48), [_multiply()], response_format=Answer)
    out = agent.invoke({"messages": [("user", "What is 12 times 7?")]}, {"recursion_limit": 8})
    assert out["structured_response"] == Answer(value=84)
    msgs = out["messages"]
    assert [m.type for m in msgs] == ["human", "ai", "tool", "ai"]
    assert msgs[1].tool_calls[0]["args"] == {"a": 12, "b": 7} and msgs[2].content == "84"


def test_prebuilt_agents_stream_tokens_with_tools_bound(engine) -> None:
    from langchain.agents import create_agent
    from langgraph.prebuilt import create_react_agent

    from latent_graph.langchain import as_chat_model

    chat = as_chat_model(engine, max_new_tokens=48)
    bound = chat.bind_tools([_multiply()])
    history = [("user", "What is 12 times 7?")]
    chunks = list(bound.stream(history))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    reply = bound.invoke(history)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [(c["name"], c["args"]) for c in reply.tool_calls]
    assert full.content == reply.content and reply.tool_calls[0]["args"] == {"a": 12, "b": 7}
    for build in (create_react_agent, create_agent):
        agent = build(chat, [_multiply()])
        streamed = list(agent.stream({"messages": history}, stream_mode="messages"))
        from_model = [m for m, meta in streamed if meta["langgraph_node"] in ("agent", "model")]
        assert any(m.tool_call_chunks for m in from_model)
        answer = [m.content for m in from_model if m.content]
        assert len(answer) > 3 and "84" in "".join(answer), (build.__name__, answer)


def test_a_reply_cut_by_16_tokens_is_visible(engine) -> None:
    from latent_graph.errors import TruncatedReplyError
    from latent_graph.langchain import as_chat_model

    chat = as_chat_model(engine, max_new_tokens=16)
    with pytest.warns(UserWarning, match="max_new_tokens=16"):
        reply = chat.bind_tools([_multiply()]).invoke("What is 123456 times 7890123?")
    assert reply.response_metadata["finish_reason"] == "length" and not reply.tool_calls
    assert reply.invalid_tool_calls and "cut" in reply.invalid_tool_calls[0]["error"]
    with pytest.warns(UserWarning), pytest.raises(TruncatedReplyError):
        chat.with_structured_output(Person).invoke("Bartholomew Montgomery-Smithson is 30 years old.")
