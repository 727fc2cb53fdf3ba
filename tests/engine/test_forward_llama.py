"""engine/forward/llama.py: the Llama forward without module dispatch is bit-for-bit transformers' own.

Compared against ``LlamaModel.forward`` on the same cache: prefill (dense and left-padded),
single steps (batch 1 and a padded batch, from ``input_ids`` and from ``inputs_embeds``),
hidden states and every layer's K/V with ``torch.equal``; then whole engine calls (think,
decode) with the fast path against the same model forced onto transformers' forward. The load-time probe
(instead of a list of verified transformers releases) passes on the installed release and catches a broken path.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import DynamicCache

from latent_graph.engine.forward import LlamaStack, probe, stack_of, supports
from latent_graph.engine.forward import llama as llama_forward

from conftest import ARCHS, make_model


def _kv(cache: DynamicCache) -> list[torch.Tensor]:
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


def _both(model, **kw):
    """One forward through the HF base model and one through the stack, each on its own empty cache."""
    outs = []
    for fn in (model.base, LlamaStack(model.base)):
        cache = DynamicCache(config=model.base.config)
        with torch.no_grad():
            out = fn(cache=cache, use_cache=True, **kw)
        outs.append((out.last_hidden_state, cache))
    return outs


@pytest.mark.parametrize("arch", ARCHS)
def test_only_llama_takes_the_fast_path(arch: str) -> None:
    model = make_model(arch)
    fast = arch == "llama"
    assert supports(model.base) == fast
    assert (model.decoder is model.base) == (not fast)


def test_prefill_and_steps_equal_transformers(llama) -> None:
    torch.manual_seed(0)
    ids = torch.randint(4, 300, (3, 7))
    mask = torch.ones_like(ids)
    mask[1, :2] = mask[2, :5] = 0  # left padding
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    (a, ca), (b, cb) = _both(llama, input_ids=ids, attention_mask=mask, position_ids=pos)
    assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(_kv(ca), _kv(cb)))
    for step in range(3):  # steps on top of both caches, padded batch, then embeds
        nxt = pos[:, -1:] + 1 + step
        mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.long)], dim=1)
        kw = {"input_ids": ids[:, step : step + 1]} if step < 2 else {"inputs_embeds": a[:, -1:]}
        with torch.no_grad():
            a = llama.base(attention_mask=mask, position_ids=nxt, cache=ca, use_cache=True, **kw).last_hidden_state
            b = LlamaStack(llama.base)(
                attention_mask=mask, position_ids=nxt, cache=cb, use_cache=True, **kw
            ).last_hidden_state
        assert torch.equal(a, b)
        assert all(torch.equal(x, y) for x, y in zip(_kv(ca), _kv(cb)))


def test_bfloat16_prefill_and_step_equal_transformers() -> None:
    model = make_model("llama")
    model.hf_model.to(torch.bfloat16)
    ids, mask = torch.tensor([[0, 0, 5, 9], [7, 8, 9, 10]]), torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    (a, ca), (b, cb) = _both(model, input_ids=ids, attention_mask=mask, position_ids=pos)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(_kv(ca), _kv(cb)))


def test_dense_step_without_mask_equals_transformers(llama) -> None:
    ids = torch.tensor([[5, 9, 17, 33]])
    (a, ca), (b, cb) = _both(llama, input_ids=ids, position_ids=torch.arange(4)[None])
    e = torch.randn(1, 1, llama.base.config.hidden_size)
    with torch.no_grad():
        a = llama.base(inputs_embeds=e, position_ids=torch.tensor([[4]]), cache=ca, use_cache=True).last_hidden_state
        b = LlamaStack(llama.base)(
            inputs_embeds=e, position_ids=torch.tensor([[4]]), cache=cb, use_cache=True
        ).last_hidden_state
    assert torch.equal(a, b)


def test_think_and_decode_equal_the_transformers_path() -> None:
    fast, slow = make_model("llama"), make_model("llama")
    slow.decoder = slow.base  # the same weights (same seed) through transformers' forward
    assert isinstance(fast.decoder, LlamaStack)
    prompts = ["Plan the solution.", "The secret code is BLUE-42. Check the plan carefully and refine it."]
    hf, hs = fast.think(None, prompts, 4, agent="a"), slow.think(None, prompts, 4, agent="a")
    assert all(torch.equal(x, y) for x, y in zip(hf.keys + hf.values, hs.keys + hs.values))
    assert all(torch.equal(x, y) for x, y in zip(hf.latents, hs.latents))
    df, ds = fast.decode(hf, "Answer.", max_new_tokens=12), slow.decode(hs, "Answer.", max_new_tokens=12)
    assert df.texts == ds.texts and df.new_tokens == ds.new_tokens


def test_hooks_and_hidden_layers_go_to_transformers(llama) -> None:
    seen: list[int] = []
    hook = llama.base.register_forward_pre_hook(lambda _m, _a, kw: seen.append(1), with_kwargs=True)
    try:
        llama.think(None, "Plan.", 2)
    finally:
        hook.remove()
    assert seen, "a forward hook added on the model must still see every forward"
    mid = make_model("llama", layer=1)  # an intermediate layer asks for hidden states: the model's own forward
    out = mid.decoder(input_ids=torch.tensor([[5, 6]]), position_ids=torch.arange(2)[None], output_hidden_states=True)
    assert out.hidden_states is not None


def test_quantized_or_hooked_linears_are_not_reproduced() -> None:
    model = make_model("llama")

    class Custom(torch.nn.Linear):
        pass

    layer = model.base.layers[0].mlp
    old = layer.down_proj
    layer.down_proj = Custom(old.in_features, old.out_features, bias=False)
    assert not supports(model.base) and stack_of(model.base) is model.base


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_probe_passes_on_the_installed_transformers(dtype: torch.dtype) -> None:
    model = make_model("llama")
    model.hf_model.to(dtype)
    assert probe(model.base) is None, f"transformers {transformers.__version__}"
    assert model.base.config.num_hidden_layers == 2  # the probe's one-layer cut is undone


RMS = llama_forward._rms


def _rounded_differently(weight: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    return RMS(weight, eps, x) * (1 + 2**-20)  # a few float32 ulps, as a changed kernel would make


def _raises(weight: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("an internal transformers moved")


@pytest.mark.parametrize("broken, reason", [(_rounded_differently, "not bit-equal"), (_raises, "raised RuntimeError")])
def test_a_broken_fast_path_is_caught_at_load(monkeypatch: pytest.MonkeyPatch, broken, reason: str) -> None:
    model = make_model("llama")
    monkeypatch.setattr(llama_forward, "_rms", broken)
    with pytest.warns(RuntimeWarning, match=f"one-layer probe.*{reason}.*LlamaModel.forward"):
        assert stack_of(model.base) is model.base
    assert model.base.config.num_hidden_layers == 2
    with pytest.warns(RuntimeWarning, match=reason):
        fallen = make_model("llama")  # what a user loading the model gets: the model's own forward
    assert fallen.decoder is fallen.base
    monkeypatch.undo()  # the reference below runs the (real) fast path: the fallback answers the same
    a, b = fallen.think(None, "Plan.", 2), make_model("llama").think(None, "Plan.", 2)
    assert all(torch.equal(x, y) for x, y in zip(a.keys + a.values + a.latents, b.keys + b.values + b.latents))


@pytest.mark.integration
def test_default_model_think_equals_the_transformers_path(default_model) -> None:
    slow = default_model.with_realigner("ridge")
    slow.decoder = slow.base
    assert isinstance(default_model.decoder, LlamaStack), f"the probe refused transformers {transformers.__version__}"
    q = "A farmer has 12 cows and buys 7 more. How many cows?"
    a, b = default_model.think(None, q, 3), slow.think(None, q, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.keys + a.values + a.latents, b.keys + b.values + b.latents))
    da, db = default_model.decode(a, "Answer:", max_new_tokens=8), slow.decode(b, "Answer:", max_new_tokens=8)
    assert da.texts == db.texts
