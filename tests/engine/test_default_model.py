"""Integration tests on the embedded default model, SmolLM2-135M-Instruct (~135M params, CPU)."""

from __future__ import annotations

import time

import pytest

from latent_graph import LocalLatentModel
from latent_graph.engine.load.embedded import converted_dir, default_source, gguf_path

pytestmark = pytest.mark.integration


def test_default_load_goes_through_cached_safetensors(default_model):
    assert gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    first = LocalLatentModel.default(prefer_hub=False)  # converts the GGUF if not cached yet
    assert first.source in ("gguf", "converted")
    folder, source = default_source(prefer_hub=False)
    assert source == "converted" and folder == converted_dir()
    assert any(folder.glob("*.safetensors"))
    t0 = time.perf_counter()
    again = LocalLatentModel.default(prefer_hub=False)
    took = time.perf_counter() - t0
    assert again.source == "converted"
    assert again.fingerprint == first.fingerprint
    print(f"warm default load: {took:.2f} s")


def test_think_and_decode_give_text(default_model):
    m = default_model
    assert m.hidden_size == 576 and m.fingerprint.config["num_hidden_layers"] == 30
    h = m.think(None, "Plan how to compute 12 times 7.", steps=4, agent="planner")
    h = m.think(h, "Check the plan.", steps=4, agent="critic")
    d = m.decode(h, "What is 12 times 7? Answer with a number.", max_new_tokens=24)
    assert d.text.strip() and d.new_tokens[0] > 0
    assert [s.agent for s in d.handle.segments] == ["planner", "planner", "critic", "critic", "judger", "judger"]


def test_default_sequential_graph_answers(default_model):
    from latent_graph.graphs import build_sequential

    g = build_sequential(default_model, steps=4, max_new_tokens=24)
    out = g.invoke({"questions": ["What is 2 plus 3?", "What is 10 minus 4?"]})
    assert len(out["answers"]) == 2 and all(a.strip() for a in out["answers"])
