"""Handle byte format: content-addressed safetensors chunks, exact round trips, prefix sharing, named corruption."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save as st_save

from latent_graph import HandleFormatError, LatentHandle
from latent_graph.persist import (
    HandleStore,
    MemoryBlobStore,
    SqliteBlobStore,
    chunk_key,
    handle_from_chunks,
    handle_to_chunks,
    manifest_chunk_keys,
)

QUESTION = "What is 12 times 7? Alice has 3 apples and buys 5 more."
ROWS = ["What is 12 times 7?", "The secret code is BLUE-42. Answer with the final number in boxed form."]


# ------------------------------------------------------------------ helpers
def assert_same(a: LatentHandle, b: LatentHandle) -> None:
    """Every field equal; tensors bitwise (dtype and shape included)."""

    def same(x: torch.Tensor, y: torch.Tensor) -> None:
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x.view(torch.uint8) if x.numel() else x, y.view(torch.uint8) if y.numel() else y)

    assert len(a.keys) == len(b.keys) and len(a.values) == len(b.values)
    for x, y in zip((*a.keys, *a.values), (*b.keys, *b.values)):
        same(x, y)
    same(a.attention_mask, b.attention_mask)
    same(a.position_ids, b.position_ids)
    assert len(a.latents) == len(b.latents) and len(a.hiddens) == len(b.hiddens)
    for x, y in zip((*a.latents, *a.hiddens), (*b.latents, *b.hiddens)):
        same(x, y)
    assert (a.last_hidden is None) == (b.last_hidden is None)
    if a.last_hidden is not None:
        same(a.last_hidden, b.last_hidden)
    assert a.segments == b.segments
    assert a.fingerprint == b.fingerprint
    assert (a.prompt_tokens, a.latent_steps, a.generated_tokens) == (
        b.prompt_tokens,
        b.latent_steps,
        b.generated_tokens,
    )
    assert a.meta == b.meta
    assert b.device == torch.device("cpu")


@pytest.fixture(scope="module")
def chain(llama) -> list[LatentHandle]:
    """A batch-2 planner -> critic -> refiner -> judger run: prompt, latent and text segments."""
    h1 = llama.think(None, ROWS, steps=4, agent="planner")
    h2 = llama.think(h1, "Check the plan carefully.", steps=3, agent="critic")
    h3 = llama.think(h2, ["Refine it.", "Refine the plan step by step and check it."], steps=3, agent="refiner")
    d = llama.decode(h3, "Answer with the final number.", max_new_tokens=10, agent="judger")
    final = dataclasses.replace(d.handle, meta={"run": "test", "ünï": "✓"})
    return [h1, h2, h3, final]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


def round_trip(h: LatentHandle) -> LatentHandle:
    split = handle_to_chunks(h)
    return handle_from_chunks(split.manifest, split.chunks.get)


# ------------------------------------------------------------ byte format
def test_round_trip_is_exact_and_deterministic(chain):
    final = chain[-1]
    assert final.batch_size == 2 and {s.kind for s in final.segments} == {"prompt", "latent", "text"}
    assert bool((final.attention_mask == 0).any())  # rows were padded
    for h in chain:
        assert_same(h, round_trip(h))
    assert handle_to_chunks(final) == handle_to_chunks(final)  # deterministic: equal content, equal keys


def test_bf16_round_trip(chain):
    h = chain[-1].to(dtype=torch.bfloat16)
    back = round_trip(h)
    assert back.dtype == torch.bfloat16 and back.latents[0].dtype == torch.bfloat16
    assert_same(h, back)


def test_handle_without_segments_or_last_hidden(llama):
    h = llama.think(None, "hi", steps=0, agent="a")
    empty = dataclasses.replace(h.select_columns([]), last_hidden=None)
    assert empty.seq_len == 0
    assert_same(empty, round_trip(empty))


def test_latents_sharing_storage_are_saved(chain):
    h = chain[0]
    aliased = dataclasses.replace(h, hiddens=h.latents)  # identity realigner: same tensors
    assert_same(aliased, round_trip(aliased))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"garbage",
        lambda b: b[: len(b) // 2],
        lambda b: b[:-1],
        lambda b: _flip(b, len(b) - 100),  # inside tensor data
        lambda b: _flip(b, 20),  # inside the JSON header
    ],
    ids=["empty", "garbage", "half", "minus-one-byte", "flipped-data", "flipped-header"],
)
def test_corrupt_chunk_raises(chain, mangle):
    split = handle_to_chunks(chain[0])
    victim = manifest_chunk_keys(split.manifest)[0]
    chunks = {**split.chunks, victim: mangle(split.chunks[victim])}
    with pytest.raises(HandleFormatError, match="corrupt"):  # its sha256 no longer matches its key
        handle_from_chunks(split.manifest, chunks.get)


def test_unknown_version_and_foreign_safetensors_raise(chain):
    """A chunk whose bytes match its key but are not a latent_graph chunk of a known version is refused by name."""
    split = handle_to_chunks(chain[0])
    victim = manifest_chunk_keys(split.manifest)[0]
    t = {"x": torch.zeros(2)}
    for data, match in [
        (
            st_save(t, metadata={"latent_graph": json.dumps({"format": "latent_graph.handle.chunk", "version": 99})}),
            "version 99",
        ),
        (st_save(t), "metadata"),
    ]:  # a plain safetensors file
        key = chunk_key(data)
        manifest = split.manifest.replace(victim, key)
        body = json.loads(manifest)["body"]
        from latent_graph.persist.chunks import _seal  # re-sealed: only the chunk is wrong

        with pytest.raises(HandleFormatError, match=match):
            handle_from_chunks(_seal(body), {**split.chunks, key: data}.get)
    with pytest.raises(HandleFormatError):
        handle_from_chunks(b"not json", split.chunks.get)


# ------------------------------------------------------------------ chunks
def test_chunk_round_trip_and_prefix_sharing(chain):
    keys = []
    for h in chain:
        split = handle_to_chunks(h)
        assert all(chunk_key(v) == k for k, v in split.chunks.items())
        assert_same(h, handle_from_chunks(split.manifest, split.chunks.get))
        keys.append(manifest_chunk_keys(split.manifest))
    for earlier, later in zip(keys, keys[1:]):
        columns = earlier[:-1]  # last key is the tail (last_hidden), which changes
        assert later[: len(columns)] == columns


def test_chunk_errors(chain):
    split = handle_to_chunks(chain[1])
    store = dict(split.chunks)
    victim = manifest_chunk_keys(split.manifest)[1]
    good = store.pop(victim)
    with pytest.raises(HandleFormatError, match="missing"):
        handle_from_chunks(split.manifest, store.get)
    store[victim] = _flip(good, len(good) - 3)
    with pytest.raises(HandleFormatError, match="corrupt"):
        handle_from_chunks(split.manifest, store.get)
    store[victim] = good
    manifest = split.manifest
    with pytest.raises(HandleFormatError, match="checksum"):
        handle_from_chunks(manifest.replace('"critic"', '"critiq"'), store.get)
    with pytest.raises(HandleFormatError, match="version"):
        handle_from_chunks(manifest.replace('"version":1', '"version":7'), store.get)
    with pytest.raises(HandleFormatError):
        handle_from_chunks(manifest[:-5], store.get)


def test_four_agent_chain_stores_prefix_once(chain):
    """Every intermediate handle saved to one blob store: <= 1.2x the final handle; saving again adds nothing."""
    store = HandleStore(MemoryBlobStore())
    refs = [store.save(h) for h in chain]
    total = store.blobs.nbytes
    final = chain[-1].nbytes
    assert total <= 1.2 * final, (total, final)
    assert sum(h.nbytes for h in chain) > 2.5 * final  # what storing every handle whole would cost
    refs += [HandleStore(store.blobs).save(h) for h in chain]  # another store, same content: same blobs
    assert store.blobs.nbytes == total and refs[:4] == refs[4:]
    for ref, h in zip(refs, chain * 2):
        assert_same(h, HandleStore(store.blobs).load(ref))


def test_sqlite_blob_store_persists(tmp_path):
    path = tmp_path / "blobs.db"
    store = SqliteBlobStore(path)
    key = chunk_key(b"abc")
    store.put(key, b"abc")
    store.put(key, b"abc")
    assert key in store and store.get(key) == b"abc" and store.get(chunk_key(b"nope")) is None
    assert store.nbytes == 3 and store.keys() == [key]
    store.close()
    again = SqliteBlobStore(path)
    assert again.get(key) == b"abc" and again.nbytes == 3
    again.close()
