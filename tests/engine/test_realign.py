"""Training-free realigners on tiny random models: shapes, finiteness, norms, endpoints, wiring."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from latent_graph.engine.realign import (
    BlendRealigner,
    KnnProjectionRealigner,
    SoftTokenRealigner,
    make_realigner,
    mean_embedding_norm,
)
from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs import build_sequential

SPECS = ["soft:k=8,t=0.7", "soft:k=1", "knn:k=4", "knn:k=1", "blend:alpha=0.5,k=4", "ridge", "identity"]


def _hidden(model: Any, b: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(b, model.hidden_size)  # (B, H)


@pytest.mark.parametrize("spec", SPECS)
def test_shapes_and_finite(llama: Any, spec: str) -> None:
    r = make_realigner(llama, spec)
    e = r(_hidden(llama))
    assert e.shape == (3, llama.hidden_size) and e.dtype == torch.float32
    assert torch.isfinite(e).all()


def test_soft_k1_is_argmax_token_embedding(llama: Any) -> None:
    h = _hidden(llama)
    w_in = llama.input_embedding_matrix()
    head = llama.hf_model.get_output_embeddings()
    ids = head(h).argmax(dim=-1)  # (B,)
    e = make_realigner(llama, "soft:k=1")(h)
    assert torch.allclose(e, w_in[ids].float(), atol=1e-6)


def test_soft_is_convex_mix_and_sharpens_with_temperature(llama: Any) -> None:
    h = _hidden(llama)
    w_in = llama.input_embedding_matrix().float()
    head_w = llama.hf_model.get_output_embeddings().weight.detach()
    hot = SoftTokenRealigner(w_in, head_w, k=8, temperature=100.0)(h)
    cold = SoftTokenRealigner(w_in, head_w, k=8, temperature=1e-4)(h)
    greedy = SoftTokenRealigner(w_in, head_w, k=1)(h)
    top = (h @ head_w.T).topk(8, dim=-1).indices  # (B, 8)
    assert torch.allclose(hot, w_in[top].mean(dim=1), atol=1e-3)  # high T: uniform mix of the top 8
    assert torch.allclose(cold, greedy, atol=1e-5)
    assert (hot.norm(dim=-1) <= w_in[top].norm(dim=-1).max(dim=-1).values + 1e-5).all()  # convex: no blow-up


def test_knn_norm_and_span(llama: Any) -> None:
    h = _hidden(llama)
    w_in = llama.input_embedding_matrix()
    r = make_realigner(llama, "knn:k=4")
    assert isinstance(r, KnnProjectionRealigner)
    e = r(h)
    assert torch.allclose(e.norm(dim=-1), torch.full((3,), mean_embedding_norm(w_in)), rtol=1e-4)
    one = make_realigner(llama, "knn:k=1")(h)  # k=1: the nearest embedding's direction (or its opposite)
    near = torch.nn.functional.normalize(
        w_in[r.unit.matmul(torch.nn.functional.normalize(llama.realigner(h).float(), dim=-1).T).argmax(dim=0)].float(),
        dim=-1,
    )
    cos = (torch.nn.functional.normalize(one, dim=-1) * near).sum(-1).abs()
    assert torch.allclose(cos, torch.ones(3), atol=1e-4)


def test_blend_endpoints(llama: Any) -> None:
    h = _hidden(llama)
    ridge, soft = make_realigner(llama, "ridge"), make_realigner(llama, "soft:k=4")
    assert torch.equal(BlendRealigner(ridge, soft, 0.0)(h), ridge(h))
    assert torch.equal(BlendRealigner(ridge, soft, 1.0)(h), soft(h))
    mid = BlendRealigner(ridge, soft, 0.25)(h)
    assert torch.allclose(mid, 0.75 * ridge(h) + 0.25 * soft(h), atol=1e-5)
    with pytest.raises(InvalidArgumentError):
        BlendRealigner(ridge, soft, 1.5)


def test_bad_specs(llama: Any) -> None:
    for spec in ("nope", "soft:k", "soft:alpha=1", "knn:k=0", "soft:t=0"):
        with pytest.raises(InvalidArgumentError):
            make_realigner(llama, spec)


@pytest.mark.parametrize("spec", ["soft:k=4,t=0.5", "knn:k=2", "blend:alpha=0.5"])
def test_plugged_through_think_and_graph(llama: Any, spec: str) -> None:
    r = make_realigner(llama, spec)
    m = llama.with_realigner(r)
    assert m.realigner is not None and m.realigner.name == r.name
    seen: list[torch.Tensor] = []
    h = m.think(
        None,
        ["Plan the solution.", "Check the plan."],
        steps=3,
        agent="planner",
        on_step=lambda info: seen.append(info.embedding),
    )
    assert h.latent_steps == 3 and len(seen) == 3 and all(torch.isfinite(x).all() for x in seen)
    assert torch.allclose(seen[0], r(h.hiddens[0][:, 0]), atol=1e-5)  # the step fed exactly r(h)
    out = m.decode(h, "Answer briefly.", max_new_tokens=3)
    assert len(out.texts) == 2
    g = build_sequential(llama, edges="latent", steps=2, max_new_tokens=2, task="plain", realign=r)
    assert len(g.invoke({"questions": ["What is 3+5?"]})["answers"]) == 1


def test_inner_layer_soft_uses_final_norm(tiny_factory: Any) -> None:
    m = tiny_factory("llama", layer=1)
    r = make_realigner(m, "soft:k=1")
    assert isinstance(r, SoftTokenRealigner) and r.pre is not None
    h = m.think(None, "Plan the solution.", steps=2, agent="planner", memory="all")
    assert torch.isfinite(h.latents[0]).all() and h.latents[0].shape == (1, 2, m.hidden_size)
    m2 = m.with_realigner(r)
    assert m2.think(None, "Plan.", steps=2).latent_steps == 2
