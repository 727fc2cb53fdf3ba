"""Issue 21 item 2: decode reservations are clamped to the context window (no unbounded allocation)."""

from __future__ import annotations

import gc
import os

import psutil
import pytest

from latent_graph.engine.forward import kvbuffer
from latent_graph.errors import ContextOverflowError

from conftest import make_model


@pytest.fixture
def reserved(monkeypatch) -> list[int]:
    """Columns of every K/V buffer allocated (prefix + reserve)."""
    sizes: list[int] = []
    real = kvbuffer.BufferLayer._allocate

    def spy(self, keys, values):
        real(self, keys, values)
        sizes.append(int(self._k.shape[2]))

    monkeypatch.setattr(kvbuffer.BufferLayer, "_allocate", spy)
    return sizes


def test_huge_max_new_tokens_is_clamped_to_the_context(reserved):
    model = make_model("llama", ctx=64)
    out = model.decode(None, "What is 2+2?", max_new_tokens=10**7)
    assert reserved and max(reserved) <= model.max_context  # old code: prompt + 10**7 columns
    assert out.handle.seq_len <= model.max_context


def test_think_steps_beyond_the_context_raise_before_allocating(reserved):
    model = make_model("llama", ctx=64)
    with pytest.raises(ContextOverflowError):
        model.think(None, "What is 2+2?", steps=10**7)
    assert reserved == []  # the check runs before any buffer is reserved


def test_prompt_that_leaves_no_room_for_a_token_is_a_named_error():
    model = make_model("llama", ctx=64)
    prompt = "word " * 200
    with pytest.raises(ContextOverflowError):
        model.decode(None, prompt, max_new_tokens=10**7)


@pytest.mark.integration
def test_default_model_decode_ten_million_tokens_stays_small(default_model, reserved):
    """Done-when: decode(max_new_tokens=10**7) on the default model, < 200 MB extra RSS."""
    default_model.decode(None, "Say hi.", max_new_tokens=4)  # warm up
    gc.collect()
    proc = psutil.Process(os.getpid())
    before = proc.memory_info().rss
    out = default_model.decode(None, "Say hi in three words.", max_new_tokens=10**7)
    grown = (proc.memory_info().rss - before) / 2**20
    print(
        f"decode(max_new_tokens=10**7): {out.new_tokens} tokens, +{grown:.0f} MB RSS, reserved {max(reserved)} columns"
    )
    assert grown < 200 and max(reserved) <= default_model.max_context  # old code: 10**7 + prompt columns


pytestmark = pytest.mark.reliability("attack")  # counted in the reliability summary (tests/conftest.py)
