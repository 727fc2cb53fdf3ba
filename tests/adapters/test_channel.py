"""The trained latent channel (latent_graph.adapters.channel) on a tiny random model."""

from __future__ import annotations

import torch

from latent_graph.adapters import AdapterRealigner
from latent_graph.adapters.channel import ChannelConfig, ChannelExample, evaluate_channel, ridge_channel, train_channel


def _data() -> list[ChannelExample]:
    return [
        ChannelExample(f"The secret code is BLUE-{i}. What is the code?", "What is the code?", f"BLUE-{i}")
        for i in (12, 42, 7, 84)
    ]


def test_ridge_channel_equals_the_ridge_realigner(tiny_factory):
    model = tiny_factory("llama", seed=3)
    h = torch.randn(5, model.hidden_size)
    with torch.no_grad():
        assert torch.allclose(ridge_channel(model)(h), model.realigner(h), atol=1e-5)


def test_training_reduces_loss_and_the_file_runs_as_a_realigner(tiny_factory, tmp_path):
    model = tiny_factory("llama", seed=3)
    data = _data()
    before = evaluate_channel(model, ridge_channel(model), data, steps=2)
    cfg = ChannelConfig(steps=2, lr=1e-2, batch_size=4, epochs=8, eval_every=2, patience=100, seed=0)
    res = train_channel(model, data, data, cfg)
    assert res.best_val < before - 0.05
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert all(p.requires_grad for p in model.hf_model.parameters())  # the model's flags are restored
    path = res.realigner.save(tmp_path / "channel.safetensors")
    loaded = AdapterRealigner.load(path, model)
    assert loaded.kind == "channel" and loaded.info["objective"] == "relay"
    assert abs(evaluate_channel(model, loaded.module, data, steps=2) - res.best_val) < 1e-4
    handle = model.with_realigner(loaded).think(None, data[0].sender, steps=2)
    assert handle.latent_steps == 2
    assert torch.isfinite(handle.latent_segments()[0][1]).all()
