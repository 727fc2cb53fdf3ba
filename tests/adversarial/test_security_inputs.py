"""Issue 11 item 7: bad inputs raise named errors (before any large allocation); fuzzed formats too."""

from __future__ import annotations

import json
import resource
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from latent_graph.adapters.errors import AdapterFileError, PairsFormatError
from latent_graph.adapters.modules import build_adapter
from latent_graph.adapters.trained_realigner import AdapterRealigner
from latent_graph.bench.errors import ResumeError
from latent_graph.errors import HandleFormatError, InvalidArgumentError, LatentGraphError, NonFiniteLatentError
from latent_graph.persist import handle_from_chunks, handle_to_chunks

BOMB = "[" * 200_000 + "]" * 200_000
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


# ------------------------------------------------------------ named errors
def test_prompts_must_be_strings(llama):
    for bad in (123, {"What is 2+2?": 1}, [1, 2], None, [None]):
        with pytest.raises(InvalidArgumentError):
            llama.think(None, bad, steps=1)


def test_graph_questions_must_be_a_list_of_strings(llama):
    from latent_graph.graphs import build_sequential

    g = build_sequential(llama, steps=1, max_new_tokens=2)
    for bad in ({"What?": 1}, 7, [b"bytes"], {"q"}):
        with pytest.raises(InvalidArgumentError):
            g.invoke({"questions": bad})
    with pytest.raises(InvalidArgumentError):
        g.invoke({"questions": ["Q?"], "context": {"k": "v"}})


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True])
def test_bad_seeds(llama, seed):
    with pytest.raises(InvalidArgumentError):
        llama.decode(None, "Hi", max_new_tokens=2, temperature=1.0, seed=seed)


def test_inject_rejects_empty_and_overflowing_embeddings(llama):
    h = llama.hidden_size
    for shape in ((0, 2, h), (1, 0, h)):
        with pytest.raises(InvalidArgumentError):
            llama.inject(None, torch.zeros(shape))
    huge = torch.full((1, 2, h), 1e300, dtype=torch.float64)  # finite in fp64, inf in the model's fp32
    with pytest.raises(NonFiniteLatentError):
        llama.inject(None, huge)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_adapter_header_is_validated_before_allocating(tmp_path, llama):
    fp = llama.fingerprint.to_json()
    meta = {
        "format": "latent_graph.adapter",
        "version": "1",
        "source_fingerprint": fp,
        "target_fingerprint": fp,
        "module": json.dumps({"kind": "linear", "src_dim": 22_000, "dst_dim": 22_000}),
    }  # 1.9 GB of fp32
    path = tmp_path / "evil.safetensors"
    save_file({"module.proj.weight": torch.zeros(2, 2)}, str(path), metadata=meta)
    before = _peak_rss_mb()
    with pytest.raises(AdapterFileError, match="do not match"):
        AdapterRealigner.load(path)
    assert _peak_rss_mb() - before < 500
    for bad in (
        {"kind": "linear", "src_dim": -1, "dst_dim": 4},
        {"kind": "mlp", "src_dim": 4, "dst_dim": 4, "hidden_dim": 10**9},
    ):
        save_file({"x": torch.zeros(1)}, str(path), metadata={**meta, "module": json.dumps(bad)})
        with pytest.raises(AdapterFileError):
            AdapterRealigner.load(path)
    save_file({"x": torch.zeros(1)}, str(path), metadata={**meta, "module": BOMB})
    with pytest.raises(AdapterFileError):
        AdapterRealigner.load(path)


def test_json_nesting_bombs_raise_named_errors(tmp_path):
    from latent_graph.adapters.data import load_pairs
    from latent_graph.bench.store import load_results
    from latent_graph.present.runtrace import RunTrace

    (tmp_path / "trace.json").write_text(BOMB)
    with pytest.raises(InvalidArgumentError):
        RunTrace.load(tmp_path / "trace.json")
    (tmp_path / "pairs.jsonl").write_text(BOMB + "\n")
    with pytest.raises(PairsFormatError):
        load_pairs(tmp_path / "pairs.jsonl")
    (tmp_path / "results.jsonl").write_text(BOMB + "\n" + "{}\n")
    with pytest.raises(ResumeError):
        load_results(tmp_path)


# ------------------------------------------------------------ fuzzing
@pytest.fixture(scope="module")
def split(llama):
    return handle_to_chunks(llama.think(None, "Hi there", steps=2))


@FUZZ
@given(data=st.data())
def test_fuzz_handle_chunks(split, data):
    """Random byte edits (and truncation) of the manifest or one chunk: a named error, or the same handle."""
    keys = sorted(split.chunks)
    target = data.draw(st.sampled_from(["manifest", *keys]))
    raw = bytearray(split.manifest.encode() if target == "manifest" else split.chunks[target])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    manifest = bytes(raw) if target == "manifest" else split.manifest
    chunks = split.chunks if target == "manifest" else {**split.chunks, target: bytes(raw)}
    try:
        h = handle_from_chunks(manifest, chunks.get)
    except HandleFormatError:
        return
    same = handle_from_chunks(split.manifest, split.chunks.get)  # only a change that alters nothing may load
    assert h.segments == same.segments and all(torch.equal(a, b) for a, b in zip(h.keys, same.keys))


@pytest.fixture(scope="module")
def adapter_bytes(llama) -> bytes:
    h = llama.hidden_size
    adapter = AdapterRealigner(build_adapter("linear", h, h), llama.fingerprint)
    with tempfile.TemporaryDirectory() as d:
        return Path(adapter.save(Path(d) / "a.safetensors")).read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_adapter_file(adapter_bytes, data):
    raw = bytearray(adapter_bytes)
    header = int.from_bytes(raw[:8], "little") + 8  # aim most flips at the JSON header
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, header - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.safetensors"
        path.write_bytes(bytes(raw))
        try:
            AdapterRealigner.load(path)
        except AdapterFileError:
            pass


VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.binary(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def graph(llama):
    from latent_graph.graphs import build_sequential

    return build_sequential(llama, steps=1, max_new_tokens=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(questions=st.one_of(VALUES, st.lists(st.text(max_size=30), max_size=3)), context=VALUES)
def test_fuzz_graph_inputs(graph, questions, context):
    try:
        out = graph.invoke({"questions": questions, "context": context})
    except LatentGraphError:
        return
    assert isinstance(out["answers"], list) and all(isinstance(a, str) for a in out["answers"])


pytestmark = pytest.mark.reliability("bad_input")  # counted in the reliability summary (tests/conftest.py)
