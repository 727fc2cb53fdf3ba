"""Models sharded with accelerate (``device_map``): offloaded layers, per-layer handle devices, named errors.

On this CPU-only machine the shard is a decoder layer offloaded to disk through
accelerate's hooks; the engine must give exactly the results of the unsharded
model. Per-layer devices of a handle are checked against the model's layers.
"""

from __future__ import annotations

import pytest
import torch

from latent_graph import DeviceMismatchError, InvalidArgumentError, LocalLatentModel, ModelLoadError

pytest.importorskip("accelerate")

BASE = {
    "model.embed_tokens": "cpu",
    "model.layers.0": "cpu",
    "model.norm": "cpu",
    "model.rotary_emb": "cpu",
    "lm_head": "cpu",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    m = tiny_factory("llama")
    m.hf_model.save_pretrained(path)
    m.tokenizer.save_pretrained(path)
    return path


def _load(path, **kwargs) -> LocalLatentModel:
    return LocalLatentModel.from_pretrained(str(path), realign="identity", **kwargs)


def test_disk_offloaded_layer_gives_the_unsharded_results(saved, tmp_path):
    ref = _load(saved)
    off = _load(saved, device_map={**BASE, "model.layers.1": "disk"}, offload_folder=str(tmp_path / "off"))
    assert off.hf_model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # really offloaded
    assert off.fingerprint == ref.fingerprint and off.layer_devices == (torch.device("cpu"),) * 2
    a, b = (
        off.think(None, ["Plan it.", "What is 12 times 7?"], steps=3),
        ref.think(None, ["Plan it.", "What is 12 times 7?"], steps=3),
    )
    for ka, kb in zip(a.keys, b.keys):
        assert torch.allclose(ka, kb, atol=1e-5)
    da = off.decode(a, "Answer.", max_new_tokens=6)
    db = ref.decode(b, "Answer.", max_new_tokens=6)
    assert da.texts == db.texts and da.new_tokens == db.new_tokens


def test_handle_layer_devices_are_checked(llama):
    h = llama.think(None, "Plan.", steps=1)
    assert h.layer_devices == llama.layer_devices == (torch.device("cpu"),) * h.num_layers
    wrong = h.to(layer_devices=["cpu", "meta"])
    assert wrong.layer_devices[1].type == "meta" and h.layer_devices[1].type == "cpu"  # a copy, h untouched
    with pytest.raises(DeviceMismatchError, match="layer 1"):
        llama.think(wrong, "Check.", steps=1)
    with pytest.raises(InvalidArgumentError, match="3 layer devices"):
        h.to(layer_devices=["cpu"] * 3)


def test_offloaded_embeddings_are_refused_by_name(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="input embeddings and the lm_head"):
        _load(
            saved,
            device_map={**BASE, "model.embed_tokens": "disk", "model.layers.1": "cpu"},
            offload_folder=str(tmp_path / "off"),
        )
