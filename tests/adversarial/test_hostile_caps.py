"""Issue 32 item 6: engine-level caps (EngineLimits) hold for every caller, checked before tokenizing or allocating.

``model.think`` with 10^4 prompts on the default model once grew past 4 GB before any error (only the graph builders
capped questions), and a 10 MB tool result was tokenized (+2.8 GB RSS) before its ContextOverflowError.
"""

from __future__ import annotations

import importlib

import pytest

from latent_graph.engine.forward import kvbuffer
from latent_graph.engine.options import EngineLimits
from latent_graph.errors import (
    ContextOverflowError,
    InvalidArgumentError,
    ResourceLimitError,
    TextTooLongError,
    TooManyQuestionsError,
)

from conftest import make_model

feed_module = importlib.import_module("latent_graph.engine.forward.feed")  # the package exports a function `feed`


@pytest.fixture(scope="module")
def model():
    return make_model("llama")


@pytest.fixture
def work_done(monkeypatch) -> list[str]:
    """Every tokenization of a turn and every K/V buffer allocated during the test."""
    done: list[str] = []
    for name in ("prompt_rows", "chat_rows", "tool_rows"):
        real = getattr(feed_module, name)
        monkeypatch.setattr(feed_module, name, lambda *a, _real=real, _n=name, **k: done.append(_n) or _real(*a, **k))
    real_alloc = kvbuffer.BufferLayer._allocate

    def alloc(self, keys, values):
        done.append("allocate")
        real_alloc(self, keys, values)

    monkeypatch.setattr(kvbuffer.BufferLayer, "_allocate", alloc)
    return done


def test_ten_thousand_prompts_are_refused_before_tokenizing(model, work_done) -> None:
    with pytest.raises(ResourceLimitError, match="max_rows"):
        model.think(None, ["What is 2+2?"] * 10**4, steps=2)
    with pytest.raises(ResourceLimitError, match="max_rows"):
        model.decode(None, None, messages=[[{"role": "user", "content": "hi"}]] * 10**4, max_new_tokens=2)
    assert work_done == []


def test_a_ten_megabyte_prompt_is_refused_before_tokenizing(model, work_done) -> None:
    huge = "word " * 2_000_000
    with pytest.raises(ResourceLimitError, match="max_text_chars"):
        model.think(None, huge, steps=1)
    with pytest.raises(ResourceLimitError, match="max_text_chars"):
        model.decode(None, "hi", system=huge, max_new_tokens=2)
    with pytest.raises(ResourceLimitError, match="max_text_chars"):
        model.decode(None, None, messages=[[{"role": "user", "content": huge}]], max_new_tokens=2)
    assert work_done == []


def test_a_ten_megabyte_tool_result_is_refused_before_tokenizing(model, work_done) -> None:
    call = model.decode(None, "Call a tool.", max_new_tokens=2)
    work_done.clear()
    with pytest.raises(ResourceLimitError, match="max_text_chars"):
        model.decode_after_tools(call.handle, [["x" * 10_000_000]])
    with pytest.raises(ResourceLimitError, match="max_text_chars"):
        model.think_after_tools(call.handle, [["x" * 10_000_000]], steps=1)
    assert work_done == []


def test_the_reservation_cap_refuses_before_allocating(model, work_done) -> None:
    small = make_model("llama")
    small.limits = EngineLimits(max_cache_bytes=2**16)
    with pytest.raises(ResourceLimitError, match="max_cache_bytes"):
        small.think(None, ["What is 2+2?"] * 8, steps=16)
    assert "allocate" not in work_done
    small.limits = EngineLimits()  # the defaults let the same call through
    assert small.think(None, ["What is 2+2?"] * 8, steps=16).batch_size == 8


def test_caps_are_one_checked_object() -> None:
    for bad in ({"max_rows": 0}, {"max_text_chars": -1}, {"max_cache_bytes": 1.5}, {"grammar": {}}):
        with pytest.raises(InvalidArgumentError):
            EngineLimits(**bad)
    assert issubclass(TooManyQuestionsError, ResourceLimitError)  # the builders' cap is the same kind of error
    assert issubclass(TextTooLongError, ContextOverflowError)  # a text that cannot fit the window, refused early
    model = make_model("llama")
    model.limits = EngineLimits(max_rows=2)
    with pytest.raises(ResourceLimitError):
        model.think(None, ["a", "b", "c"], steps=0)
    assert model.think(None, ["a", "b"], steps=0).batch_size == 2
