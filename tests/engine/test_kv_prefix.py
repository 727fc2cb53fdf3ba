"""Shared prompt prefixes computed once (engine/prefix.py): bit-equal reuse across rows, batches and requests."""

from __future__ import annotations

import pytest
import torch

from latent_graph.engine import SharedPrefixes, enable_prefixes

from conftest import ARCHS

SYSTEM = "You are a helpful assistant. Plan the solution step by step. Check the plan carefully and refine it."
PREAMBLE = "Planner, plan the solution step by step. Answer with the final number in boxed form. Question: "
QS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more.", "The secret code is BLUE-42."]


def _no_cache(m):
    off = m.with_realigner(m.realigner)  # shares the weights
    off.prefixes = SharedPrefixes(0)
    return off


def _same(a, b) -> bool:
    pairs = [
        *zip(a.keys, b.keys),
        *zip(a.values, b.values),
        *zip(a.latents, b.latents),
        (a.attention_mask, b.attention_mask),
        (a.position_ids, b.position_ids),
        (a.last_hidden, b.last_hidden),
    ]
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.mark.parametrize("arch", ARCHS)
def test_prefix_reuse_is_bit_equal_and_matches_no_cache(tiny_factory, arch):
    m = tiny_factory(arch)
    assert m.prefixes.max_bytes == 0  # off by default: a model's outputs do not change unless asked
    enable_prefixes(m)
    prompts = [PREAMBLE + q for q in QS]
    miss = m.think(None, prompts, steps=2, system=SYSTEM, agent="planner")
    assert m.prefixes.stats.misses == 1 and len(m.prefixes) == 1
    hit = m.think(None, prompts, steps=2, system=SYSTEM, agent="planner")
    assert m.prefixes.stats.hits == 1
    assert _same(miss, hit)  # served from the cache == computed on a miss, bit for bit
    assert [(s.agent, s.kind, s.start, s.end) for s in hit.segments][0] == ("planner", "prompt", 0, hit.seq_len - 2)
    # the stored prefix is exactly what prefilling those tokens alone gives
    (key,) = list(m.prefixes._entries)
    p = len(key)
    with torch.no_grad():
        ref = m.hf_model.base_model(input_ids=torch.tensor([key]), use_cache=True).past_key_values
    ref_layers = [(layer.keys, layer.values) for layer in ref.layers]
    for layer, (k_ref, v_ref) in enumerate(ref_layers):
        for row in range(len(QS)):
            assert torch.equal(hit.keys[layer][row, :, :p], k_ref[0]), (arch, layer, row)
            assert torch.equal(hit.values[layer][row, :, :p], v_ref[0])
    # against no cache at all: same tokens counted, same greedy text, logits equal to float noise
    off = _no_cache(m)
    plain = off.think(None, prompts, steps=2, system=SYSTEM, agent="planner")
    assert plain.prompt_tokens == hit.prompt_tokens and plain.seq_len == hit.seq_len
    torch.testing.assert_close(hit.last_hidden, plain.last_hidden, atol=1e-4, rtol=1e-4)
    assert m.decode(hit, "Answer.", max_new_tokens=6).texts == off.decode(plain, "Answer.", max_new_tokens=6).texts


def test_prefix_found_across_requests_and_batches(tiny_factory):
    m = tiny_factory("llama")
    off = _no_cache(m)
    enable_prefixes(m)
    first = m.decode(None, PREAMBLE + QS[0], system=SYSTEM, max_new_tokens=5)  # one request: nothing to share yet
    assert len(m.prefixes) == 0
    second = m.decode(
        None, PREAMBLE + QS[1], system=SYSTEM, max_new_tokens=5
    )  # shares system + preamble with the first
    assert len(m.prefixes) == 1 and m.prefixes.stats.misses == 1
    batch = m.think(None, [PREAMBLE + q for q in QS[1:]], steps=1, system=SYSTEM)  # another batch reuses it
    assert m.prefixes.stats.hits >= 1
    assert first.text == off.decode(None, PREAMBLE + QS[0], system=SYSTEM, max_new_tokens=5).text
    assert second.text == off.decode(None, PREAMBLE + QS[1], system=SYSTEM, max_new_tokens=5).text
    alone = off.think(None, [PREAMBLE + q for q in QS[1:]], steps=1, system=SYSTEM)
    torch.testing.assert_close(batch.last_hidden, alone.last_hidden, atol=1e-4, rtol=1e-4)
    stats = m.prefixes.stats
    assert 0 < stats.saved_share < 1 and stats.reused_tokens > stats.computed_prefix_tokens


def test_prefix_cache_is_bounded_in_bytes(tiny_factory):
    m = tiny_factory("qwen2")
    enable_prefixes(m)
    m.think(None, [PREAMBLE + q for q in QS[:2]], steps=0, system=SYSTEM)
    one = m.prefixes.nbytes
    assert one > 0
    m.prefixes = SharedPrefixes(max_bytes=one)
    m.think(None, [PREAMBLE + q for q in QS[:2]], steps=0, system=SYSTEM)
    m.think(None, ["Critic, check the plan carefully and refine it. " * 2 + q for q in QS[:2]], steps=0)
    assert len(m.prefixes) == 1 and m.prefixes.nbytes <= m.prefixes.max_bytes  # the older prefix was evicted
    whole = PREAMBLE + QS[0]
    h = m.think(None, [whole, whole], steps=1, system=SYSTEM)  # identical rows: each still feeds >= 1 token itself
    assert h.latent_steps == 1 and torch.isfinite(h.last_hidden).all()
