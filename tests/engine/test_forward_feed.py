"""The one feed (``engine/forward/feed.py``): every way input enters a cache checks the context the same way.

Prompt turns, whole chats, tool turns and injected embeddings all go through :func:`feed`: one
context-overflow error (same wording, raised before anything is allocated), one reserve rule (the
preallocated columns are clamped to what the window has left) and one token count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from latent_graph.engine import DecodeOptions
from latent_graph.engine.forward import feed
from latent_graph.errors import ContextOverflowError

from conftest import make_model

ENGINE = Path(__file__).resolve().parents[2] / "latent_graph" / "engine"
OVERFLOW = r"cache \+ .* reserved positions = \d+ exceeds the context window"


@pytest.fixture(scope="module")
def small():
    return make_model("llama", ctx=64)


def test_one_site_raises_the_context_overflow() -> None:
    sites = []
    for f in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Raise) and "ContextOverflowError" in ast.unparse(node):
                sites.append(str(f.relative_to(ENGINE)))
    # llamacpp/runtime.py raises it when llama.cpp's own KV cells run out (its context, not the model's window)
    assert [s for s in sites if s != "llamacpp/runtime.py"] == ["forward/feed.py"], sites


def test_every_input_kind_overflows_with_the_same_error(small) -> None:
    long = "word " * 80
    with pytest.raises(ContextOverflowError, match=OVERFLOW):
        small.think(None, long, 1)
    with pytest.raises(ContextOverflowError, match=OVERFLOW):
        small.decode(None, None, messages=[[{"role": "user", "content": long}]], max_new_tokens=2)
    h = small.think(None, "Plan.", 1)
    with pytest.raises(ContextOverflowError, match="cache \\+ injected embeddings \\+ 0 reserved"):
        small.inject(h, torch.zeros(1, 70, small.hidden_size))
    d = small.decode(None, "Call a tool.", max_new_tokens=2)
    with pytest.raises(ContextOverflowError, match="cache \\+ tool results \\+ 1 reserved"):
        small.decode_after_tools(d.handle, [[long]], DecodeOptions(max_new_tokens=2))


def test_reserve_is_checked_and_preallocation_clamped(small) -> None:
    h = small.think(None, "Plan.", 0)
    n = h.seq_len
    with pytest.raises(ContextOverflowError, match=OVERFLOW):
        small.think(h, "Go on.", small.max_context)  # the steps do not fit after the prompt
    fed = feed(small, h, [[5, 6, 7]], agent="a", reserve=1, grow=10**6)  # a huge grow is clamped, not allocated
    assert fed.work.cache.layers[0]._k.shape[2] <= small.max_context
    assert fed.tokens == [3] and fed.work.prompt_tokens == 3 and fed.work.length == n + 3
    assert fed.work.segments[-1].agent == "a" and fed.work.segments[-1].kind == "prompt"


def test_a_row_fed_nothing_keeps_its_last_hidden_state(small) -> None:
    d = small.decode(None, ["Call one.", "Call two."], max_new_tokens=2)
    fed = feed(small, d.handle, [[5, 6], []], agent="solver", kind="tool", reserve=1)
    assert fed.tokens == [2, 0] and fed.work.prompt_tokens == 2
    assert torch.equal(fed.hidden[1], d.handle.last_hidden[1].to(fed.hidden.device))
    assert not torch.equal(fed.hidden[0], d.handle.last_hidden[0].to(fed.hidden.device))
