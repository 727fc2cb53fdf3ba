"""Engine correctness on tiny random-weight models of every supported architecture."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import DynamicCache

from latent_graph import (
    BatchSizeMismatchError,
    ContextOverflowError,
    DeviceMismatchError,
    DTypeMismatchError,
    EmptyPromptError,
    InvalidArgumentError,
    InvalidStepsError,
    LatentHandle,
    ModelMismatchError,
    NonFiniteLatentError,
    Realigner,
)
from latent_graph.engine.prompt import format_prompt

PA = "What is 12 times 7? Plan the solution step by step."
PB = "Check the plan carefully."


def _ids(model, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def _logits(model, handle: LatentHandle) -> torch.Tensor:
    return model.hf_model.get_output_embeddings()(handle.last_hidden).float()  # (B, V)


def test_lossless_handoff_equals_single_forward(any_model):
    m = any_model
    h = m.think(None, PA, steps=0, agent="a")
    h = m.think(h, PB, steps=0, agent="b")
    ta = format_prompt(m.tokenizer, PA, None, first=True, generation=False)
    tb = format_prompt(m.tokenizer, PB, None, first=False, after_open_turn=False, generation=False)
    ids = torch.tensor([_ids(m, ta) + _ids(m, tb)])
    with torch.no_grad():
        ref = m.hf_model(input_ids=ids).logits[:, -1].float()
    assert h.seq_len == ids.shape[1]
    torch.testing.assert_close(_logits(m, h), ref, atol=1e-4, rtol=0)


def test_latent_step_equals_manual_hf_forward(any_model):
    m = any_model
    h = m.think(None, PA, steps=2, agent="a")
    ids = torch.tensor([_ids(m, format_prompt(m.tokenizer, PA, None, True))])
    cache = DynamicCache()
    with torch.no_grad():
        out = m.hf_model(input_ids=ids, cache=cache, use_cache=True, output_hidden_states=True)
        hid = out.hidden_states[-1][:, -1]
        for _ in range(2):
            e = m.realigner(hid)
            out = m.hf_model(inputs_embeds=e[:, None], cache=out.cache, use_cache=True, output_hidden_states=True)
            hid = out.hidden_states[-1][:, -1]
    torch.testing.assert_close(h.last_hidden, hid, atol=1e-5, rtol=1e-4)
    k_ref = out.cache.layers[-1].keys
    torch.testing.assert_close(h.keys[-1], k_ref, atol=1e-5, rtol=1e-4)
    assert h.latent_steps == 2 and h.latents[0].shape == (1, 2, m.hidden_size)


def test_realignment_equals_closed_form(llama):
    w_in = llama.hf_model.get_input_embeddings().weight.double()
    w_out = llama.hf_model.get_output_embeddings().weight.double()
    lam = 1e-5
    expected = torch.linalg.inv(w_out.T @ w_out + lam * torch.eye(w_in.shape[1], dtype=torch.float64)) @ (
        w_out.T @ w_in
    )
    torch.testing.assert_close(llama.realigner.matrix.double(), expected, atol=1e-4, rtol=1e-3)
    h = torch.randn(3, w_in.shape[1])
    e = llama.realigner(h)
    target = w_in.norm(dim=-1).mean().float()
    torch.testing.assert_close(e.norm(dim=-1), target.expand(3), atol=1e-4, rtol=1e-4)
    direction = (h.double() @ expected).float()
    cos = torch.nn.functional.cosine_similarity(e, direction, dim=-1)
    assert bool((cos > 0.9999).all())


def test_identity_realigner_only_rescales(tiny_factory):
    m = tiny_factory("llama", realign="identity")
    h = torch.randn(2, m.hidden_size)
    e = m.realigner(h)
    cos = torch.nn.functional.cosine_similarity(e, h, dim=-1)
    assert bool((cos > 0.9999).all())
    assert abs(float(e.norm(dim=-1)[0]) - m.realigner.target_norm) < 1e-3


def test_ridge_is_cached_on_disk(tiny_factory, monkeypatch):
    tiny_factory("qwen2", seed=7)  # computes and stores
    import latent_graph.engine.realign.base as realign

    def boom(*a, **k):
        raise AssertionError("ridge matrix recomputed instead of loaded from cache")

    monkeypatch.setattr(realign, "ridge_matrix", boom)
    m = tiny_factory("qwen2", seed=7)
    path = realign.cache_dir() / "realign" / f"{m.fingerprint.digest}-lam1e-05.safetensors"
    assert path.exists()


def test_batch_matches_rows_alone(any_model):
    m = any_model
    qs = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples does Alice have now?"]
    hb = m.think(None, qs, steps=3, agent="planner")
    hb = m.think(hb, ["Check it.", "Check the plan carefully and refine it."], steps=2, agent="critic")
    db = m.decode(hb, "Answer.", max_new_tokens=6)
    for i, q in enumerate(qs):
        h1 = m.think(None, q, steps=3, agent="planner")
        h1 = m.think(h1, ["Check it.", "Check the plan carefully and refine it."][i], steps=2, agent="critic")
        torch.testing.assert_close(_logits(m, hb)[i : i + 1], _logits(m, h1), atol=1e-4, rtol=1e-4)
        d1 = m.decode(h1, "Answer.", max_new_tokens=6)
        assert db.texts[i] == d1.text
        assert db.new_tokens[i] == d1.new_tokens[0]


def test_rows_finishing_early_match_rows_alone(tiny_factory):
    """Finished rows leave the batch while others decode; the result still equals each row alone."""
    m = tiny_factory("qwen2")  # its rows generate different tokens; a fresh copy, so eos can change
    qs = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples?", "Plan it."]
    h = m.think(None, qs, steps=2)
    ids = [[c.token_id for c in m.decode_stream(m.think(None, q, steps=2), "Answer.", max_new_tokens=10)] for q in qs]
    stop = next(t for t in ids[0][1:6] if t not in ids[1] and t not in ids[2][:5])
    m.eos_ids = set(m.eos_ids) | {stop}
    batch = m.decode(h, "Answer.", max_new_tokens=10)
    alone = [m.decode(m.think(None, q, steps=2), "Answer.", max_new_tokens=10) for q in qs]
    assert batch.texts == [a.text for a in alone]
    assert batch.new_tokens == [a.new_tokens[0] for a in alone]
    assert batch.new_tokens[0] < batch.new_tokens[1]  # row 0 really stopped early
    # the reassembled cache is right for every row: continuing it matches continuing each row alone
    nb = m.think(batch.handle, "Go on.", steps=1)
    for i, a in enumerate(alone):
        n1 = m.think(a.handle, "Go on.", steps=1)
        torch.testing.assert_close(_logits(m, nb)[i : i + 1], _logits(m, n1), atol=1e-4, rtol=1e-4)
        assert int(nb.attention_mask[i].sum()) == int(n1.attention_mask.sum())


def test_decode_uses_cache_at_zero_steps(llama):
    m = llama
    h = m.think(None, PA, steps=0, agent="a")
    d = m.decode(h, PB, max_new_tokens=8)
    ids = _ids(m, format_prompt(m.tokenizer, PA, None, True, generation=False)) + _ids(
        m, format_prompt(m.tokenizer, PB, None, False, after_open_turn=False)
    )
    with torch.no_grad():
        ref = m.hf_model.generate(
            torch.tensor([ids]), max_new_tokens=8, do_sample=False, eos_token_id=sorted(m.eos_ids), pad_token_id=0
        )
    ref_ids = [t for t in ref[0, len(ids) :].tolist() if t not in m.eos_ids]
    assert d.handle.generated_tokens == len(ref_ids)
    assert d.text == m.tokenizer.decode(ref_ids, skip_special_tokens=True)
    fresh = m.decode(None, PB, max_new_tokens=8)
    assert fresh.handle.seq_len < d.handle.seq_len


def test_handles_are_never_mutated(llama):
    h = llama.think(None, [PA, "Short one."], steps=2, agent="a")
    before = [t.clone() for t in (*h.keys, *h.values, h.attention_mask, h.position_ids, *h.latents)]
    segs = h.segments
    h2 = llama.think(h, PB, steps=3, agent="b")
    llama.decode(h2, "Answer.", max_new_tokens=4)
    llama.think(h, PB, steps=1, memory="last")
    after = [*h.keys, *h.values, h.attention_mask, h.position_ids, *h.latents]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert h.segments == segs and h2.seq_len > h.seq_len
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.segments = ()  # frozen dataclass


def test_memory_last_keeps_positions(llama):
    m = llama
    h = m.think(None, PA, steps=0, agent="a")
    h = m.think(h, PB, steps=0, agent="b")
    kept = h.with_memory("last")
    assert [s.agent for s in kept.segments] == ["b"]
    assert int(kept.next_positions()[0]) == h.seq_len  # positions continue, not restart
    out = m.think(h, "Answer.", steps=0, agent="c", memory="last")
    # reference: full forward over A+B, drop A's columns from the cache, then C at positions
    # continuing after B (not restarting at B's length, which would break RoPE)
    closed = dict(after_open_turn=False, generation=False)
    ta = _ids(m, format_prompt(m.tokenizer, PA, None, True, generation=False))
    tb = _ids(m, format_prompt(m.tokenizer, PB, None, False, **closed))
    tc = _ids(m, format_prompt(m.tokenizer, "Answer.", None, False, **closed))
    with torch.no_grad():
        full = m.hf_model(input_ids=torch.tensor([ta + tb]), use_cache=True).cache
        kept_kv = [(layer.keys[:, :, len(ta) :], layer.values[:, :, len(ta) :]) for layer in full.layers]
        pos = torch.arange(len(ta) + len(tb), len(ta) + len(tb) + len(tc))[None]
        ref = m.hf_model(
            input_ids=torch.tensor([tc]), position_ids=pos, cache=DynamicCache(ddp_cache_data=kept_kv), use_cache=True
        ).logits[:, -1]
        wrong = m.hf_model(
            input_ids=torch.tensor([tc]),
            position_ids=pos - len(ta),
            cache=DynamicCache(ddp_cache_data=kept_kv),
            use_cache=True,
        ).logits[:, -1]
    torch.testing.assert_close(_logits(m, out), ref.float(), atol=1e-4, rtol=0)
    assert not torch.allclose(_logits(m, out), wrong.float(), atol=1e-4)


def test_memory_latent_keeps_only_latents(llama):
    h = llama.think(None, PA, steps=3, agent="a")
    h = llama.think(h, PB, steps=2, agent="b")
    lat = h.with_memory("latent")
    assert [s.kind for s in lat.segments] == ["latent", "latent"]
    assert lat.seq_len == 5 and len(lat.latents) == 2
    out = llama.think(h, "Go on.", steps=1, memory="latent")
    assert out.segments[0].kind == "latent" and out.seq_len < h.seq_len + 20
    with pytest.raises(InvalidArgumentError):
        h.with_memory("everything")


def test_fingerprint_guard_names_both_models(tiny_factory):
    x = tiny_factory("llama", seed=0)
    y = tiny_factory("llama", seed=1)
    h = x.think(None, PA, steps=1)
    with pytest.raises(ModelMismatchError) as err:
        y.think(h, PB, steps=1)
    assert x.fingerprint.digest in str(err.value) and y.fingerprint.digest in str(err.value)
    with pytest.raises(ModelMismatchError):
        y.decode(h, PB, max_new_tokens=2)


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt(llama, prompt):
    with pytest.raises(EmptyPromptError):
        llama.think(None, prompt, steps=1)


def test_prompt_longer_than_context(tiny_factory):
    m = tiny_factory("llama", ctx=64)
    with pytest.raises(ContextOverflowError):
        m.think(None, "plan " * 80, steps=0)
    h = m.think(None, "Plan.", steps=0)
    with pytest.raises(ContextOverflowError):
        m.think(h, "Check.", steps=60)


@pytest.mark.parametrize("steps", [-1, 1.5, True, "3"])
def test_bad_steps(llama, steps):
    with pytest.raises(InvalidStepsError):
        llama.think(None, PA, steps=steps)


class _NaNRealigner(Realigner):
    name = "nan"

    def __call__(self, hidden):
        return torch.full_like(hidden, float("nan"))


def test_nonfinite_latent(llama):
    bad = llama.with_realigner(_NaNRealigner())
    with pytest.raises(NonFiniteLatentError, match="latent step 0"):
        bad.think(None, PA, steps=2)


def test_device_and_dtype_mismatch(llama):
    h = llama.think(None, PA, steps=1)
    with pytest.raises(DeviceMismatchError):
        llama.think(h.to("meta"), PB)
    with pytest.raises(DTypeMismatchError):
        llama.think(h.to(dtype=torch.float64), PB)


def test_batch_size_mismatch(llama):
    h = llama.think(None, ["a question", "another question"], steps=1)
    with pytest.raises(BatchSizeMismatchError):
        llama.think(h, ["x", "y", "z"])
    assert llama.think(h, "broadcast to both rows").batch_size == 2


def test_bad_sampling_arguments(llama):
    with pytest.raises(InvalidArgumentError):
        llama.decode(None, PA, temperature=-1)
    with pytest.raises(InvalidArgumentError):
        llama.decode(None, PA, top_p=0)
    with pytest.raises(InvalidArgumentError):
        llama.decode(None, PA, max_new_tokens=0)
    with pytest.raises(InvalidArgumentError):
        llama.think(None, PA, memory="nope")


def test_sampling_is_seeded(llama):
    a = llama.decode(None, PA, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=3)
    b = llama.decode(None, PA, max_new_tokens=8, temperature=1.0, top_p=0.9, seed=3)
    assert a.texts == b.texts


def test_streaming_matches_decode(llama):
    h = llama.think(None, PA, steps=2)
    chunks = list(llama.decode_stream(h, PB, max_new_tokens=8))
    d = llama.decode(h, PB, max_new_tokens=8)
    assert "".join(c.text for c in chunks) == d.text
    seen = []
    llama.decode(h, PB, max_new_tokens=8, on_token=seen.append)
    assert [c.token_id for c in seen] == [c.token_id for c in chunks]


def test_fallback_format_without_chat_template(tiny_factory):
    m = tiny_factory("llama", chat_template=None)
    text = format_prompt(m.tokenizer, "Hi there", "Be brief.", first=True)
    assert text.startswith("<s>System: Be brief.") and text.endswith("User: Hi there\nAssistant:")
    assert format_prompt(m.tokenizer, "Go", None, first=False, generation=False) == "\nUser: Go"
    assert not format_prompt(m.tokenizer, "Hi", None, first=False).startswith("<s>")
    assert m.decode(m.think(None, "Hi there", steps=1), "Answer.", max_new_tokens=3).handle.seq_len > 0


def test_turn_structure_in_the_shared_cache(llama):
    tok = llama.tokenizer
    first = format_prompt(tok, "Plan.", None, True)
    assert first.endswith("<|im_start|>assistant\n")
    # a later agent closes the previous assistant turn (latent thoughts) and opens its own
    later = format_prompt(tok, "Check.", None, False)
    assert later == "<|im_end|>\n<|im_start|>user\nCheck.<|im_end|>\n<|im_start|>assistant\n"
    # after an agent with 0 latent steps there is no open turn to close
    assert format_prompt(tok, "Check.", None, False, after_open_turn=False).startswith("<|im_start|>user")
    h0 = llama.think(None, "Plan.", steps=0)
    h1 = llama.think(None, "Plan.", steps=1)
    assert h0.meta["open_turn"] == "0" and h1.meta["open_turn"] == "1"
    assert h0.seq_len < h1.seq_len - 1  # no assistant header when no thoughts follow


def test_summary_nbytes_and_to(llama):
    h = llama.think(None, [PA, "Short."], steps=2, agent="planner")
    s = h.summary()
    assert "planner" in s and "latent" in s and llama.fingerprint.digest in s
    expected = sum(t.numel() * t.element_size() for t in (*h.keys, *h.values))
    assert h.kv_nbytes == expected and h.nbytes > expected
    h64 = h.to(dtype=torch.float64)
    assert h64.dtype == torch.float64 and h.dtype == torch.float32
