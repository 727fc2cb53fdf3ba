"""The speed work changes no output: preallocated KV buffers vs transformers' DynamicCache (the previous path).

Greedy decode/think results (token ids, texts, every handle tensor) must be bit-for-bit
those of the concatenating cache, batched runs must equal rows run alone, and handles
given to the engine must be unchanged after calls.
"""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from latent_graph.engine import from_cache
from latent_graph.engine.forward import BufferCache
from latent_graph.engine.forward import work as cache_mod

PROMPTS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many now?"]


class PlainCache(DynamicCache):
    """The previous engine cache: a DynamicCache that concatenates every new column."""

    def __init__(self, keys=(), values=(), capacity=0):
        super().__init__(ddp_cache_data=list(zip(keys, values)) if keys else None)

    def frozen(self):
        return from_cache(self)

    def select_rows(self, idx):
        for layer in self.layers:
            layer.keys, layer.values = layer.keys.index_select(0, idx), layer.values.index_select(0, idx)


def handle_tensors(h):
    out = [*h.keys, *h.values, h.attention_mask, h.position_ids, *h.latents, *h.hiddens]
    return out + ([h.last_hidden] if h.last_hidden is not None else [])


def assert_same_handle(a, b):
    ta, tb = handle_tensors(a), handle_tensors(b)
    assert len(ta) == len(tb)
    for x, y in zip(ta, tb):
        assert x.shape == y.shape and torch.equal(x, y)
    assert a.segments == b.segments
    assert (a.prompt_tokens, a.latent_steps, a.generated_tokens) == (
        b.prompt_tokens,
        b.latent_steps,
        b.generated_tokens,
    )


def pipeline(model, prompts, max_new_tokens=12):
    """planner -> critic (latent) -> judger decode; returns every handle and the decode result."""
    h1 = model.think(None, prompts, 3, agent="planner")
    h2 = model.think(h1, "Check the plan.", 2, agent="critic")
    d = model.decode(h2, prompts, max_new_tokens=max_new_tokens)
    return h1, h2, d


def run_plain(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setattr(cache_mod, "BufferCache", PlainCache)
        return fn()


def test_buffers_equal_concatenating_cache(any_model, monkeypatch):
    new = pipeline(any_model, PROMPTS)
    old = run_plain(monkeypatch, lambda: pipeline(any_model, PROMPTS))
    for a, b in zip(new[:2], old[:2]):
        assert_same_handle(a, b)
    assert new[2].texts == old[2].texts and new[2].new_tokens == old[2].new_tokens
    assert_same_handle(new[2].handle, old[2].handle)


def test_batched_equals_rows_alone(any_model):
    batched = pipeline(any_model, PROMPTS)
    for i, p in enumerate(PROMPTS):
        alone = pipeline(any_model, [p])
        assert alone[2].texts[0] == batched[2].texts[0 + i]
        assert alone[2].new_tokens[0] == batched[2].new_tokens[i]


def test_handles_unchanged_by_calls(any_model):
    h = any_model.think(None, PROMPTS, 2, agent="planner")
    before = [t.clone() for t in handle_tensors(h)]
    any_model.think(h, "Check.", 3, agent="critic")
    any_model.decode(h, PROMPTS, max_new_tokens=6)
    list(any_model.decode_stream(h, PROMPTS, max_new_tokens=6))
    d = any_model.decode(h, PROMPTS, max_new_tokens=6)
    d2 = any_model.decode(d.handle, PROMPTS, max_new_tokens=4)  # extending a decoded handle leaves it alone too
    after = handle_tensors(h)
    assert all(torch.equal(x, y) for x, y in zip(before, after))
    assert d2.handle.seq_len > d.handle.seq_len


def test_stream_and_plain_decode_agree(llama):
    h = llama.think(None, PROMPTS, 2)
    chunks = []
    d = llama.decode(h, PROMPTS, max_new_tokens=10, on_token=chunks.append)
    plain = llama.decode(h, PROMPTS, max_new_tokens=10)
    assert d.texts == plain.texts
    assert_same_handle(d.handle, plain.handle)
    for row, text in enumerate(d.texts):
        assert "".join(c.text for c in chunks if c.row == row) == text


def test_buffer_grows_past_its_reserve():
    torch.manual_seed(0)
    prefix = torch.randn(2, 3, 4, 8)
    kept = prefix.clone()
    cache = BufferCache((prefix,), (prefix * 2,), capacity=1)
    ref = PlainCache((prefix,), (prefix * 2,))
    for n in (1, 3, 1, 6):
        k, v = torch.randn(2, 3, n, 8), torch.randn(2, 3, n, 8)
        got, want = cache.update(k, v, 0), ref.update(k, v, 0)
        assert all(torch.equal(x, y) for x, y in zip(got, want))
    assert cache.get_seq_length() == ref.get_seq_length() == 15
    keys, values = cache.frozen()
    assert torch.equal(keys[0], ref.layers[0].keys) and keys[0].is_contiguous()
    assert torch.equal(prefix, kept)  # the seed tensors are copied, never written


@pytest.mark.parametrize("steps", [0, 4])
def test_think_buffer_is_exact_and_compact(llama, steps):
    h = llama.think(None, PROMPTS, steps)
    assert all(k.is_contiguous() and k.shape[2] == h.seq_len for k in h.keys)


def test_step_fast_path_equals_full_mask_path(any_model, monkeypatch):
    """Single steps without padding (positions from next_pos, no 2D mask passed) equal the general path bit for bit."""
    padded = [PROMPTS[0], PROMPTS[1] + " Answer with a number."]  # different lengths: a padded batch too
    new = [pipeline(any_model, p) for p in ([PROMPTS[0]], padded)]
    with monkeypatch.context() as m:
        m.setattr(
            cache_mod.Work, "dense", property(lambda self: False, lambda self, v: None), raising=False
        )  # pass the mask
        m.setattr(
            cache_mod.Work, "ones", lambda self, rows: torch.ones((rows, 1), dtype=torch.long)
        )  # never the fast path
        old = [pipeline(any_model, p) for p in ([PROMPTS[0]], padded)]
    for a, b in zip(new, old):
        for x, y in zip(a[:2], b[:2]):
            assert_same_handle(x, y)
        assert a[2].texts == b[2].texts and a[2].new_tokens == b[2].new_tokens
        assert_same_handle(a[2].handle, b[2].handle)
