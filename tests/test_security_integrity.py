"""Issue 11 item 4: corruption must be noticed (handle headers, inconsistent handles, the default model)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from latent_graph.engine.handle import Segment
from latent_graph.errors import HandleFormatError
from latent_graph.persist import handle_from_bytes, handle_to_bytes
from latent_graph.persist.handle_format import canonical_json, _digest


@pytest.fixture(scope="module")
def handle(llama):
    h = llama.think(None, "Plan: what is 12 times 7?", steps=2, agent="planner")
    return llama.think(h, "Check it.", steps=3, agent="critic")


def _edit_segment_end(blob: bytes) -> bytes:
    """One byte of the JSON header: the end column of the first segment, +1 (same length)."""
    m = re.search(rb'planner\\",\\"prompt\\",0,(\d+)\]', blob)
    assert m is not None
    i = m.end(1) - 1
    return blob[:i] + bytes([ord("0") + (blob[i] - ord("0") + 1) % 10]) + blob[i + 1 :]


def test_one_byte_header_edit_is_caught(handle):
    blob = handle_to_bytes(handle)
    bad = _edit_segment_end(blob)
    assert len(bad) == len(blob) and bad != blob
    with pytest.raises(HandleFormatError, match="checksum|inconsistent"):
        handle_from_bytes(bad)


def test_old_version_blobs_still_load(handle):
    """Version-1 blobs (tensor-only checksum) written before the header was signed still read."""
    from latent_graph.persist.handle_format import FORMAT, handle_header, save_bytes

    blob = handle_to_bytes(handle)
    back = handle_from_bytes(blob)
    tensors = {"attention_mask": back.attention_mask, "position_ids": back.position_ids}
    for i, (k, v) in enumerate(zip(back.keys, back.values)):
        tensors[f"k.{i}"], tensors[f"v.{i}"] = k, v
    tensors.update({f"latent.{i}": x for i, x in enumerate(back.latents)})
    tensors.update({f"hidden.{i}": x for i, x in enumerate(back.hiddens)})
    tensors["last_hidden"] = back.last_hidden
    v1 = save_bytes(tensors, {"format": FORMAT, "version": 1, "header": handle_header(back), "sha256": _digest(tensors)})
    again = handle_from_bytes(v1)
    assert again.segments == handle.segments and torch.equal(again.keys[0], handle.keys[0])
    assert canonical_json(handle_header(again)) == canonical_json(handle_header(handle))


def _bad_handles(h):
    seg = list(h.segments)
    yield "int64 layer", dataclasses.replace(h, keys=(h.keys[0].long(), *h.keys[1:]))
    yield "short layer", dataclasses.replace(h, values=(h.values[0], h.values[1][:, :, :-1]))
    yield "segment gap", dataclasses.replace(h, segments=(seg[0], Segment(seg[1].agent, seg[1].kind, seg[1].start + 1, seg[1].end), *seg[2:]))
    yield "segments short", dataclasses.replace(h, segments=tuple(seg[:-1]))
    yield "latent width", dataclasses.replace(h, latents=(h.latents[0][..., :-1], *h.latents[1:]))
    yield "latent length", dataclasses.replace(h, latents=(h.latents[0][:, :1], *h.latents[1:]))
    yield "missing latent", dataclasses.replace(h, latents=h.latents[:1], hiddens=h.hiddens[:1])
    yield "mask values", dataclasses.replace(h, attention_mask=h.attention_mask * 2)
    yield "float mask", dataclasses.replace(h, attention_mask=h.attention_mask.float())
    yield "hidden shape", dataclasses.replace(h, hiddens=(h.hiddens[0][:, :1], *h.hiddens[1:]))


def test_resigned_inconsistent_handles_are_refused(handle):
    """Blobs with a valid checksum (written by handle_to_bytes) but inconsistent contents."""
    for name, bad in _bad_handles(handle):
        blob = handle_to_bytes(bad)
        with pytest.raises(HandleFormatError, match="inconsistent"):
            handle_from_bytes(blob)
        print("refused:", name)


# ------------------------------------------------------------ default model cache
@pytest.fixture
def fake_default(monkeypatch, tmp_path):
    """The default-model machinery on a tiny model: 'dequantising' saves a small random model."""
    from conftest import make_model

    from latent_graph.engine.load import embedded as dm

    tiny = make_model("llama")
    calls = []

    def dequantise(out):
        calls.append(out)
        tiny.hf_model.save_pretrained(out, safe_serialization=True)
        tiny.tokenizer.save_pretrained(out)

    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dm, "_dequantise", dequantise)
    monkeypatch.setattr(dm, "local_hub_copy", lambda: None)
    return dm, calls


def _load(dm):
    from latent_graph import LocalLatentModel

    return dm.load_default(LocalLatentModel, realign="identity")


def test_damaged_default_model_is_detected_and_reconverted(fake_default):
    dm, calls = fake_default
    good = _load(dm)
    assert len(calls) == 1 and (dm.converted_dir() / dm.DIGEST_FILE).exists()
    weights = dm.converted_dir() / "model.safetensors"
    assert _load(dm).source == "converted" and len(calls) == 1  # verified, not reconverted
    # zero-fill a block of the weights (the fingerprint hashes only a sample of them)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
    weights.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="sha256"):
        again = _load(dm)
    assert len(calls) == 2 and torch.equal(again.hf_model.lm_head.weight, good.hf_model.lm_head.weight)
    # a truncated copy: repaired instead of failing for ever
    weights.write_bytes(weights.read_bytes()[: 1000])
    with pytest.warns(UserWarning, match="truncated"):
        _load(dm)
    assert len(calls) == 3 and dm.check_converted(dm.converted_dir()) is None


def test_cache_converted_before_digests_is_adopted_or_repaired(fake_default):
    dm, calls = fake_default
    _load(dm)
    (dm.converted_dir() / dm.DIGEST_FILE).unlink()
    assert _load(dm).source == "converted" and len(calls) == 1  # opens fine: digest recorded
    assert (dm.converted_dir() / dm.DIGEST_FILE).exists()
    (dm.converted_dir() / dm.DIGEST_FILE).unlink()
    weights = dm.converted_dir() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="safetensors"):
        _load(dm)
    assert len(calls) == 2
