"""4-bit / 8-bit loading (bitsandbytes) on the CPU: detection, errors, and the default model in both modes."""

from __future__ import annotations

import sys

import pytest
import torch

from latent_graph import InvalidArgumentError, LocalLatentModel, QuantizationUnavailableError
from latent_graph.adapters import AdapterModelMismatchError, AdapterRealigner, Pair, TrainConfig, train_adapter
from latent_graph.engine import QUANTIZATIONS, check_quantization
from latent_graph.engine.load import quantize as qz

HAS_BNB = all(qz.quantization_support(q, "cpu") is None for q in QUANTIZATIONS)
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="the installed bitsandbytes cannot quantize on this CPU")


def test_modes_and_their_check():
    assert QUANTIZATIONS == ("4bit", "8bit")
    assert check_quantization(None) is None and check_quantization("4bit") == "4bit"
    for bad in ("3bit", "int4", 4, ""):
        with pytest.raises(InvalidArgumentError, match="quantization must be one of"):
            check_quantization(bad)


def test_missing_bitsandbytes_is_a_named_error(monkeypatch, tmp_path):
    qz.quantization_support.cache_clear()
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    try:
        assert "not installed" in qz.quantization_support("4bit", "cpu")
        with pytest.raises(QuantizationUnavailableError, match=r"latent-graph\[quant\]"):
            LocalLatentModel.from_pretrained(str(tmp_path), quantization="4bit")
    finally:
        qz.quantization_support.cache_clear()


def test_unsupported_device_is_detected_not_assumed(monkeypatch, tmp_path):
    monkeypatch.setattr(qz, "quantization_support", lambda q, dev: f"no {q} kernel for {dev}")
    with pytest.raises(QuantizationUnavailableError, match="no 8bit kernel for cpu"):
        LocalLatentModel.from_pretrained(str(tmp_path), quantization="8bit", device="cpu")


@needs_bnb
@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_tiny_model_quantized_on_cpu(tiny_factory, tmp_path, quantization):
    m = tiny_factory("llama")
    m.hf_model.save_pretrained(tmp_path)
    m.tokenizer.save_pretrained(tmp_path)
    q = LocalLatentModel.from_pretrained(str(tmp_path), quantization=quantization, device="cpu", name=m.name)
    assert q.device.type == "cpu" and q.dtype == torch.float32
    assert q.fingerprint.config["quantization"] == quantization
    assert q.fingerprint.digest != m.fingerprint.digest  # other decoder weights, other latent state
    h = q.think(None, ["What is 12 times 7?", "Plan it."], steps=3)
    assert h.latent_steps == 3 and bool(torch.isfinite(h.latents[0]).all())
    d = q.decode(h, "Answer.", max_new_tokens=4)
    assert len(d.texts) == 2
    with pytest.raises(Exception, match="fingerprint"):
        m.think(h, "Check.", steps=1)  # the fp32 model refuses the quantized model's handle


# ------------------------------------------------------------- default model
PROMPT = "What is the capital of France? Answer in one short sentence."
PAIRS = [
    Pair(f"What is {a} plus {b}? Answer with the number only.", str(a + b)) for a in range(2, 6) for b in range(2, 4)
]


@pytest.fixture(scope="module")
def fp32_bytes(default_model):
    return qz.weight_bytes(default_model.hf_model)


@pytest.mark.integration
@needs_bnb
@pytest.mark.parametrize("quantization,bound", [("8bit", 0.5), ("4bit", 0.4)])
def test_default_model_quantized_answers_on_cpu(default_model, fp32_bytes, tmp_path, quantization, bound):
    m = LocalLatentModel.default(quantization=quantization, device="cpu")
    ratio = qz.weight_bytes(m.hf_model) / fp32_bytes
    print(f"{quantization}: weights {qz.weight_bytes(m.hf_model) / 2**20:.0f} MiB = {ratio:.2f}x fp32")
    assert ratio <= bound
    assert m.realigner.name == "ridge" and m.device.type == "cpu"
    # latent steps read the hidden states of the quantized decoder
    h = m.think(None, "The capital of France is Paris. Plan a one-line answer.", steps=4, agent="planner")
    assert h.latent_steps == 4 and h.latents[0].dtype == torch.float32 and bool(torch.isfinite(h.latents[0]).all())
    d = m.decode(h, PROMPT, max_new_tokens=16)
    assert "paris" in d.text.lower()
    assert "paris" in m.decode(None, PROMPT, max_new_tokens=16).text.lower()
    # a trained adapter plugs into the quantized model's latent steps
    cfg = TrainConfig(steps=2, batch_size=4, eval_every=2, save_every=2, val_fraction=0.25, patience=100)
    trained = train_adapter(m, PAIRS, tmp_path, cfg, progress=False).adapter
    assert trained.source == m.fingerprint
    h2 = m.with_realigner(trained).think(None, PROMPT, steps=2)
    assert h2.latent_steps == 2 and bool(torch.isfinite(h2.latents[0]).all())
    # an adapter trained for the fp32 model is refused by name, not silently misapplied
    fp32_adapter = AdapterRealigner(trained.module, default_model.fingerprint)
    with pytest.raises(AdapterModelMismatchError):
        m.with_realigner(fp32_adapter)
