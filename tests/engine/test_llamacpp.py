"""The llama.cpp engine behind the LatentModel seam, on a tiny random GGUF holding the conftest's tiny Llama.

The transformers engine runs the same weights, so the two engines are compared output for output; greedy
decoding is also compared with llama.cpp's own ``Llama.generate`` token for token.
"""

from __future__ import annotations

import pytest
import torch

from latent_graph import DecodeOptions, LatentHandle, LlamaCppLatentModel, ModelMismatchError
from latent_graph.engine import Constraint, LatentModel, TokenChunk
from latent_graph.engine.options import EngineLimits
from latent_graph.engine.prompt import prompt_rows
from latent_graph.errors import (
    BatchSizeMismatchError,
    ContextOverflowError,
    InvalidArgumentError,
    LlamaCppError,
    ResourceLimitError,
    TextTooLongError,
)

from conftest import make_model

llama_cpp = pytest.importorskip("llama_cpp", reason="the llama.cpp engine needs the llamacpp extra")

Q = "What is 12 times 7?"


@pytest.fixture(scope="module")
def lcpp(llamacpp_tiny) -> LlamaCppLatentModel:
    return llamacpp_tiny


@pytest.fixture(scope="module")
def gguf_file(tiny_gguf):
    return tiny_gguf


@pytest.fixture(scope="module")
def hf():
    return make_model("llama")


def same_handle(a: LatentHandle, b: LatentHandle) -> bool:
    tensors = [
        (x, y) for xs, ys in ((a.keys, b.keys), (a.values, b.values), (a.latents, b.latents)) for x, y in zip(xs, ys)
    ]
    tensors += [(a.attention_mask, b.attention_mask), (a.position_ids, b.position_ids), (a.last_hidden, b.last_hidden)]
    return a.segments == b.segments and all(torch.equal(x, y) for x, y in tensors)


def test_is_a_latent_model_with_the_whole_seam(lcpp: LlamaCppLatentModel) -> None:
    assert isinstance(lcpp, LatentModel)
    h = lcpp.think(None, [Q, "Plan it."], steps=2, agent="planner")
    assert (h.batch_size, h.latent_steps, h.num_layers) == (2, 2, 2)
    assert [s.kind for s in h.segments] == ["prompt", "latent"]
    assert h.keys[0].shape[1:] == (2, h.seq_len, 16) and h.dtype == torch.float16
    d = lcpp.decode(h, "Answer.", max_new_tokens=5)
    assert len(d.texts) == 2 and all(n <= 5 for n in d.new_tokens) and d.handle.segments[-1].kind == "text"
    t = lcpp.think_after_tools(d.handle, [["42"], []], steps=1)
    assert [s.kind for s in t.segments][-2:] == ["tool", "latent"]
    d2 = lcpp.decode_after_tools(d.handle, [["42"], ["7"]], DecodeOptions(max_new_tokens=3))
    assert d2.handle.segments[-2].kind == "tool" and len(d2.texts) == 2
    near = lcpp.nearest_tokens(h.latents[0][:, 0], k=3)
    lens = lcpp.logit_lens(h.hiddens[0][:, 0], k=3)
    assert len(near) == len(lens) == 2 and all(len(r) == 3 for r in near + lens)
    assert abs(sum(p for _, p in lcpp.logit_lens(h.last_hidden, k=400)[0]) - 1) < 1e-3


def test_same_outputs_as_the_transformers_engine_on_the_same_weights(lcpp: LlamaCppLatentModel, hf) -> None:
    prompts = [Q, "Alice has 3 apples and buys 5 more. How many?"]
    a = lcpp.think(None, prompts, steps=3)
    b = hf.think(None, prompts, steps=3)
    assert torch.equal(a.attention_mask, b.attention_mask) and torch.equal(a.position_ids, b.position_ids)
    assert torch.nn.functional.cosine_similarity(a.last_hidden, b.last_hidden).min() > 0.9999
    assert torch.nn.functional.cosine_similarity(a.latents[0], b.latents[0], dim=-1).min() > 0.9999
    da, db = lcpp.decode(a, "Answer.", max_new_tokens=12), hf.decode(b, "Answer.", max_new_tokens=12)
    assert da.texts == db.texts and da.new_tokens == db.new_tokens
    assert torch.equal(da.handle.attention_mask, db.handle.attention_mask)
    assert torch.equal(da.handle.position_ids, db.handle.position_ids)


def test_batch_rows_equal_running_each_row_alone(lcpp: LlamaCppLatentModel) -> None:
    prompts = [Q, "The secret code is BLUE-42. Which code?", "Plan."]
    batch = lcpp.decode(lcpp.think(None, prompts, steps=2), "Answer.", max_new_tokens=8)
    alone = [lcpp.decode(lcpp.think(None, p, steps=2), "Answer.", max_new_tokens=8).text for p in prompts]
    assert batch.texts == alone


def test_greedy_decode_equals_llama_cpp_generate(lcpp: LlamaCppLatentModel, gguf_file) -> None:
    ids: list[int] = []
    out = lcpp.decode(
        None, Q, max_new_tokens=24, on_token=lambda c: ids.append(c.token_id) if c.token_id >= 0 else None
    )
    prompt = prompt_rows(lcpp.tokenizer, [Q], None, True, after_open_turn=False, generation=True)[0]
    llm = llama_cpp.Llama(str(gguf_file), n_ctx=256, n_threads=1, verbose=False)
    ref: list[int] = []
    for tok in llm.generate(prompt, temp=0.0):
        if tok in lcpp.eos_ids or len(ref) == 24:
            break
        ref.append(tok)
    assert ids == ref and out.new_tokens == [len(ref)]


def test_thinking_twice_on_one_handle_gives_equal_handles_and_leaves_it_alone(lcpp: LlamaCppLatentModel) -> None:
    parent = lcpp.think(None, Q, steps=2, agent="a")
    before = [k.clone() for k in parent.keys], parent.attention_mask.clone()
    one = lcpp.think(parent, "Check it.", steps=3, agent="b")
    lcpp.think(None, "Something else entirely.", steps=4)  # the context is reused in between
    two = lcpp.think(parent, "Check it.", steps=3, agent="b")
    assert same_handle(one, two)
    assert all(torch.equal(k, k0) for k, k0 in zip(parent.keys, before[0]))
    assert torch.equal(parent.attention_mask, before[1])
    assert torch.equal(one.keys[1][:, :, : parent.seq_len], parent.keys[1])  # the parent's columns carried over


@pytest.mark.parametrize("memory", ["last", "latent"])
def test_memory_policies_keep_positions_like_the_transformers_engine(lcpp, hf, memory: str) -> None:
    a = lcpp.think(lcpp.think(None, [Q, "Plan."], steps=2, agent="a"), "Check.", steps=2, agent="b", memory=memory)
    b = hf.think(hf.think(None, [Q, "Plan."], steps=2, agent="a"), "Check.", steps=2, agent="b", memory=memory)
    assert torch.equal(a.position_ids * a.attention_mask, b.position_ids * b.attention_mask)
    assert a.segments == b.segments
    da = lcpp.decode(a, "Answer.", memory=memory, max_new_tokens=8)
    db = hf.decode(b, "Answer.", memory=memory, max_new_tokens=8)
    assert da.texts == db.texts


def test_sampling_is_reproducible_with_a_seed(lcpp: LlamaCppLatentModel) -> None:
    kw = dict(max_new_tokens=10, temperature=1.5, top_p=0.9)
    a = lcpp.decode(None, Q, seed=7, **kw)
    assert a.texts == lcpp.decode(None, Q, seed=7, **kw).texts
    assert any(lcpp.decode(None, Q, seed=s, **kw).texts != a.texts for s in range(8, 12))


def test_streamed_chunks_join_to_the_text(lcpp: LlamaCppLatentModel) -> None:
    chunks: list[TokenChunk] = []
    out = lcpp.decode(lcpp.think(None, [Q, "Plan."], steps=1), "Answer.", max_new_tokens=9, on_token=chunks.append)
    for row in (0, 1):
        assert "".join(c.text for c in chunks if c.row == row) == out.texts[row]


def test_constrained_decoding_through_the_same_constraint_api(lcpp: LlamaCppLatentModel) -> None:
    out = lcpp.decode(None, [Q, Q], max_new_tokens=12, constraint=Constraint.choice(["yes", "no", "maybe"]))
    assert all(t in ("yes", "no", "maybe") for t in out.texts)
    free = lcpp.decode(None, Q, max_new_tokens=6)
    rows = lcpp.decode(None, [Q, Q], max_new_tokens=6, constraint=[None, Constraint.regex("[0-9]+")])
    assert rows.texts[0] == free.text and rows.texts[1].isdigit()


def test_handles_of_the_other_engine_are_refused_by_name(lcpp: LlamaCppLatentModel, hf) -> None:
    with pytest.raises(ModelMismatchError):
        lcpp.think(hf.think(None, Q), "Next.")
    with pytest.raises(ModelMismatchError):
        hf.think(lcpp.think(None, Q), "Next.")
    assert lcpp.fingerprint.config["engine"] == "llamacpp" and lcpp.fingerprint.kv_shape == (2, 2, 16)


def test_named_errors_for_a_batch_too_large_and_a_context_overflow(lcpp: LlamaCppLatentModel) -> None:
    with pytest.raises(BatchSizeMismatchError, match="max_batch"):
        lcpp.think(None, [Q] * 5)
    with pytest.raises(ContextOverflowError):
        lcpp.think(None, "word " * 1100)
    assert lcpp.decode(None, Q, max_new_tokens=2).new_tokens[0] <= 2  # still usable afterwards


def test_engine_limits_are_checked_before_any_work(lcpp: LlamaCppLatentModel, monkeypatch) -> None:
    h = lcpp.think(None, [Q, Q], steps=1)
    calls: list[int] = []
    monkeypatch.setattr(lcpp.runtime, "decode", lambda *a, **k: calls.append(1))  # nothing may reach llama.cpp
    monkeypatch.setattr(lcpp, "limits", EngineLimits(max_rows=1, max_text_chars=20))
    with pytest.raises(ResourceLimitError, match="max_rows=1"):
        lcpp.think(None, [Q, Q])
    with pytest.raises(ResourceLimitError, match="max_rows=1"):
        lcpp.inject(None, lcpp.input_embedding_matrix()[[5, 9]].view(2, 1, -1))
    with pytest.raises(TextTooLongError):
        lcpp.decode(None, "x" * 21)
    with pytest.raises(TextTooLongError):
        lcpp.decode(None, "", messages=[[{"role": "user", "content": "y" * 21}]])
    with pytest.raises(ResourceLimitError, match="max_rows=1"):
        lcpp.think_after_tools(h, [["ok"], ["ok"]])
    monkeypatch.setattr(lcpp, "limits", EngineLimits(max_cache_bytes=1000))
    with pytest.raises(ResourceLimitError, match="max_cache_bytes"):
        lcpp.think(None, Q, steps=4)
    assert calls == []


def test_a_llama_decode_failure_is_a_named_error(lcpp: LlamaCppLatentModel, monkeypatch) -> None:
    monkeypatch.setattr(lcpp.runtime.lib, "llama_decode", lambda ctx, batch: -3)
    with pytest.raises(LlamaCppError, match="code -3"):
        lcpp.think(None, Q)
    monkeypatch.setattr(lcpp.runtime.lib, "llama_decode", lambda ctx, batch: 1)
    with pytest.raises(ContextOverflowError, match="no free KV cells"):
        lcpp.think(None, Q)


def test_inject_feeds_embeddings_as_a_latent_segment(lcpp: LlamaCppLatentModel) -> None:
    h = lcpp.think(None, Q, steps=1)
    e = lcpp.input_embedding_matrix()[[5, 9, 11]][None]
    out = lcpp.inject(h, e, steps=2)
    assert [s.kind for s in out.segments][-2:] == ["latent", "latent"] and out.latent_steps == 3
    assert torch.equal(out.latents[1], e)


@pytest.mark.integration
def test_default_gguf_greedy_equals_llama_cpp_and_tracks_the_transformers_engine(default_model) -> None:
    from latent_graph.engine.load.embedded import gguf_path

    m = LlamaCppLatentModel.default(n_threads=1)
    ids: list[int] = []
    m.decode(None, Q, max_new_tokens=32, on_token=lambda c: ids.append(c.token_id) if c.token_id >= 0 else None)
    prompt = prompt_rows(m.tokenizer, [Q], None, True, after_open_turn=False, generation=True)[0]
    llm = llama_cpp.Llama(str(gguf_path()), n_ctx=512, n_threads=1, verbose=False)
    ref: list[int] = []
    for tok in llm.generate(prompt, temp=0.0):
        if tok in m.eos_ids or len(ref) == 32:
            break
        ref.append(tok)
    assert ids == ref
    a, b = m.think(None, Q, steps=4), default_model.think(None, Q, steps=4)
    assert torch.equal(a.attention_mask, b.attention_mask)  # the same prompt tokens
    cos = torch.nn.functional.cosine_similarity(a.hiddens[0][0], b.hiddens[0][0], dim=-1)  # (steps,)
    assert cos[0] > 0.999 and cos.min() > 0.98, cos  # Q4_1 kernels vs its dequantized fp32 weights


def test_rows_ending_early_leave_the_batch_like_on_the_transformers_engine(lcpp: LlamaCppLatentModel, hf) -> None:
    rows = [Constraint.choice(["yes"]), None, Constraint.regex("[0-9]{3}")]  # rows end after 1, 10 and 3 tokens
    prompts = [Q, "Plan.", "The secret code is BLUE-42."]
    a = lcpp.decode(lcpp.think(None, prompts, steps=2), "Answer.", max_new_tokens=10, constraint=rows)
    b = hf.decode(hf.think(None, prompts, steps=2), "Answer.", max_new_tokens=10, constraint=rows)
    assert a.texts == b.texts and a.new_tokens == b.new_tokens and len(set(a.new_tokens)) == 3
    assert torch.equal(a.handle.attention_mask, b.handle.attention_mask)
    assert torch.equal(a.handle.position_ids * a.handle.attention_mask, b.handle.position_ids * b.handle.attention_mask)
    after = lcpp.decode(a.handle, "Again.", max_new_tokens=4)  # the ragged handle is read back correctly
    assert after.texts == hf.decode(b.handle, "Again.", max_new_tokens=4).texts


def test_a_requantized_gguf_is_made_once_and_decodes_like_llama_cpp_on_it(
    gguf_file, tmp_path, monkeypatch, lcpp: LlamaCppLatentModel
) -> None:
    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path))
    with pytest.raises(InvalidArgumentError, match="transformers engine"):
        LlamaCppLatentModel(gguf_file, n_threads=1, quantization="4bit")
    fast = LlamaCppLatentModel(gguf_file, n_threads=1, n_ctx=256, max_batch=2, quantization="q8_0")
    assert fast.path.is_relative_to(tmp_path) and fast.path.name == "q8_0.gguf"
    assert fast.fingerprint.digest != lcpp.fingerprint.digest  # other weights: handles do not cross
    made = fast.path.stat().st_mtime_ns
    again = LlamaCppLatentModel(gguf_file, n_threads=1, n_ctx=256, max_batch=2, quantization="q8_0")
    assert again.path == fast.path and fast.path.stat().st_mtime_ns == made
    llm = llama_cpp.Llama(str(fast.path), n_ctx=256, n_threads=1, verbose=False)
    tokens = prompt_rows(fast.tokenizer, [Q], None, True, after_open_turn=False, generation=True)[0]
    own = []
    for tok in llm.generate(tokens, temp=0.0, reset=True):
        if tok in fast.eos_ids or len(own) == 12:
            break
        own.append(tok)
    out = fast.decode(None, Q, max_new_tokens=12)
    assert out.handle.generated_tokens == len(own)
    assert fast.tokenizer.decode(own, skip_special_tokens=True) == out.texts[0]
