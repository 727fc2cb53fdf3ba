"""Issue 11 item 4: corruption must be noticed (handle headers, inconsistent handles, the default model)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from latent_graph.engine.handle import Segment
from latent_graph.errors import HandleFormatError
from latent_graph.persist import handle_from_chunks, handle_to_chunks


@pytest.fixture(scope="module")
def handle(llama):
    h = llama.think(None, "Plan: what is 12 times 7?", steps=2, agent="planner")
    return llama.think(h, "Check it.", steps=3, agent="critic")


def _edit_segment_end(manifest: str) -> str:
    """One character of the manifest: the end column of the first segment, +1 (same length)."""
    m = re.search(r'"planner","prompt",0,(\d+)\]', manifest)
    assert m is not None
    i = m.end(1) - 1
    return manifest[:i] + str((int(manifest[i]) + 1) % 10) + manifest[i + 1 :]


def test_one_byte_header_edit_is_caught(handle):
    split = handle_to_chunks(handle)
    bad = _edit_segment_end(split.manifest)
    assert len(bad) == len(split.manifest) and bad != split.manifest
    with pytest.raises(HandleFormatError, match="checksum|inconsistent"):
        handle_from_chunks(bad, split.chunks.get)


def _bad_handles(h):
    seg = list(h.segments)
    yield "int64 layer", dataclasses.replace(h, keys=(h.keys[0].long(), *h.keys[1:]))
    yield "short layer", dataclasses.replace(h, values=(h.values[0], h.values[1][:, :, :-1]))
    yield (
        "segment gap",
        dataclasses.replace(
            h, segments=(seg[0], Segment(seg[1].agent, seg[1].kind, seg[1].start + 1, seg[1].end), *seg[2:])
        ),
    )
    yield "segments short", dataclasses.replace(h, segments=tuple(seg[:-1]))
    yield "latent width", dataclasses.replace(h, latents=(h.latents[0][..., :-1], *h.latents[1:]))
    yield "latent length", dataclasses.replace(h, latents=(h.latents[0][:, :1], *h.latents[1:]))
    yield "missing latent", dataclasses.replace(h, latents=h.latents[:1], hiddens=h.hiddens[:1])
    yield "mask values", dataclasses.replace(h, attention_mask=h.attention_mask * 2)
    yield "float mask", dataclasses.replace(h, attention_mask=h.attention_mask.float())
    yield "hidden shape", dataclasses.replace(h, hiddens=(h.hiddens[0][:, :1], *h.hiddens[1:]))


def test_resigned_inconsistent_handles_are_refused(handle):
    """Chunks and manifest with valid checksums (written by handle_to_chunks) but inconsistent contents."""
    for name, bad in _bad_handles(handle):
        split = handle_to_chunks(bad)
        with pytest.raises(HandleFormatError, match="inconsistent"):
            handle_from_chunks(split.manifest, split.chunks.get)
        print("refused:", name)


# ------------------------------------------------------------ default model cache
@pytest.fixture
def fake_default(monkeypatch, tmp_path):
    """The default-model machinery on a tiny model: 'dequantising' saves a small random model."""
    from latent_graph.engine.load import embedded as dm

    from conftest import make_model

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
    weights.write_bytes(weights.read_bytes()[:1000])
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


pytestmark = pytest.mark.reliability("attack")  # counted in the reliability summary (tests/conftest.py)
