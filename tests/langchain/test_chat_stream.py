"""The chat model under prebuilt agents, on tiny models: streamed text and tool calls with tools bound (the chunks add
up to the ``invoke`` message), the model profile that sends ``create_agent`` down the native structured-output route,
and tool calls / JSON cut by ``max_new_tokens`` surfacing as a visible condition instead of a wrong call or object."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from latent_graph.engine import parse_tool_calls
from latent_graph.errors import TruncatedReplyError
from latent_graph.langchain import as_chat_model
from latent_graph.langchain.reply import ReplySplitter, open_block

from conftest import make_model


@tool
def weather(city: Literal["oslo", "rome"]) -> str:
    """The sky over a city."""
    return "sunny"


class Verdict(BaseModel):
    ok: bool


def _block(name: str, **args: object) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


REPLIES = [
    "Plain text, no call at all.",
    "  padded text  ",
    "a < b and <tool not a tag",
    _block("weather", city="oslo"),
    "Let me look. " + _block("weather", city="oslo") + "\n" + _block("weather", city="rome") + " done",
    _block("weather", city="oslo") + "\n" + _block("weather", city="oslo"),  # a repeat runs once
    _block("weather", city="oslo") + "\n" + _block("weather", city="oslo")[:25],  # a cut repeat is dropped
    _block("weather", city="rome")[:30],  # a cut call
    "Checking: " + _block("weather", city="rome")[:30],  # a tag after text is text
    "<tool_call>\nnot json\n</tool_call> text",  # an unparsable block stays text
]


def _split(text: str, cuts: list[int]) -> tuple[str, list[dict], dict | None]:
    """Feed ``text`` in pieces ending at ``cuts``; the merged content, calls and cut call."""
    splitter, content, chunks = ReplySplitter(), "", []
    for end in [*sorted(set(cuts)), len(text)]:
        part, calls = splitter.feed(text[:end])
        content, chunks = content + part, chunks + calls
    part, calls, broken = splitter.finish(text)
    return content + part, chunks + calls, broken


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REPLIES), st.lists(st.integers(0, 200), max_size=12))
def test_splitter_never_takes_back_what_it_streamed(reply: str, cuts: list[int]) -> None:
    content, chunks, broken = _split(reply, [c for c in cuts if c < len(reply)])
    head, cut = open_block(reply)
    assert (broken is not None) == (reply == REPLIES[7])
    want, calls = parse_tool_calls(head if cut is not None and not reply.startswith("Checking") else reply)
    assert content == want.strip()
    unique = list({json.dumps(c, sort_keys=True): c for c in calls}.values())
    assert [(c["name"], json.loads(c["args"])) for c in chunks] == [(c["name"], c["arguments"]) for c in unique]
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    if broken is not None:
        assert broken["args"] == cut and broken["index"] == len(chunks)


def test_splitter_holds_back_only_what_may_open_a_call() -> None:
    splitter = ReplySplitter()
    assert splitter.feed("Let me look. <tool") == ("Let me look.", [])  # held back: it may be a tag
    assert splitter.feed("Let me look. <tooth") == (" <tooth", [])
    calls = ReplySplitter()
    assert calls.feed("<tool") == ("", [])
    part, chunks = calls.feed(_block("weather", city="oslo"))  # the call as soon as its block closes
    assert part == "" and [c["name"] for c in chunks] == ["weather"]
    assert calls.finish(_block("weather", city="oslo"))[:2] == ("", [])


def test_a_reply_cut_inside_the_opening_tag_is_a_cut_call_where_only_calls_may_come() -> None:
    assert ReplySplitter(calls_only=True).finish("<tool_")[2]["args"] == "<tool_"
    assert ReplySplitter().finish("<tool_") == ("<tool_", [], None)  # under auto it may be text


def _added(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_stream_with_tools_bound_adds_up_to_invoke(arch: str) -> None:
    chat = as_chat_model(make_model(arch), max_new_tokens=160).bind_tools([weather])
    calls = [HumanMessage("Weather in Oslo?")]
    after = [*calls, AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "oslo"}, "id": "c1"}])]
    after.append(ToolMessage("sunny", tool_call_id="c1"))
    for history in (calls, after):
        chunks = list(chat.stream(history))
        full, reply = _added(chunks), chat.invoke(history)
        assert full.content == reply.content
        assert [(c["name"], c["args"]) for c in full.tool_calls] == [(c["name"], c["args"]) for c in reply.tool_calls]
        assert full.response_metadata == reply.response_metadata and chunks[-1].chunk_position == "last"
    assert [c["name"] for c in reply.tool_calls] == [] and reply.content  # the reply to a tool result is text ...
    assert sum(bool(c.content) for c in chunks) > 3  # ... streamed token by token, tools bound
    first = list(chat.stream(calls))
    assert [c["name"] for c in _added(first).tool_calls] == ["weather"] and first[0].tool_call_chunks


def test_profile_declares_tools_and_structured_output(llama) -> None:
    profile = as_chat_model(llama).profile
    assert profile["structured_output"] and profile["tool_calling"] and profile["tool_call_streaming"]
    assert profile["max_input_tokens"] == llama.max_context and not profile["image_inputs"]


def test_create_agent_takes_the_native_structured_route_and_streams(llama) -> None:
    from langchain.agents import create_agent

    agent = create_agent(as_chat_model(llama, max_new_tokens=160), [weather], response_format=Verdict)
    question = {"messages": [("user", "Weather in Oslo?")]}
    out = agent.invoke(question, {"recursion_limit": 8})
    assert isinstance(out["structured_response"], Verdict)
    kinds = [m.type for m in out["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"] and out["messages"][2].content == "sunny"
    assert Verdict.model_validate_json(out["messages"][-1].content) == out["structured_response"]
    streamed = [(msg, meta["langgraph_node"]) for msg, meta in agent.stream(question, stream_mode="messages")]
    model_chunks = [m for m, node in streamed if node == "model"]
    assert any(m.tool_call_chunks for m in model_chunks)  # the call, as tool_call_chunks
    assert sum(bool(m.content) for m in model_chunks) > 3  # the JSON answer, token by token


def test_a_cut_tool_call_is_an_invalid_call_with_a_warning(llama) -> None:
    chat = as_chat_model(llama, max_new_tokens=16).bind_tools([weather], tool_choice="any")
    with pytest.warns(UserWarning, match="cut by max_new_tokens=16"):
        reply = chat.invoke("Weather in Oslo?")
    assert reply.tool_calls == [] and reply.response_metadata["finish_reason"] == "length"
    (bad,) = reply.invalid_tool_calls
    assert bad["id"] and bad["args"].startswith("<tool_call>") and "cut" in bad["error"]
    with pytest.warns(UserWarning):
        full = _added(list(chat.stream("Weather in Oslo?")))
    assert full.tool_calls == [] and len(full.invalid_tool_calls) == 1  # never a call with guessed arguments


def test_cut_structured_json_is_a_named_error(llama) -> None:
    chat = as_chat_model(llama, max_new_tokens=4)
    for method in ("json_schema", "function_calling"):
        with pytest.warns(UserWarning), pytest.raises(TruncatedReplyError, match="finish_reason=.length."):
            chat.with_structured_output(Verdict, method=method).invoke("ok?")
        with pytest.warns(UserWarning):
            out = chat.with_structured_output(Verdict, method=method, include_raw=True).invoke("ok?")
        assert isinstance(out["parsing_error"], TruncatedReplyError) and out["parsed"] is None
        assert out["raw"].response_metadata["finish_reason"] == "length"
    whole = as_chat_model(llama, max_new_tokens=160).with_structured_output(Verdict, include_raw=True).invoke("ok?")
    assert whole["parsing_error"] is None and isinstance(whole["parsed"], Verdict)
