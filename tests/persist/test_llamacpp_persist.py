"""Handles of the llama.cpp engine persist like any other: blob store round trip, shared chunks, a run paused in one
process and resumed in another, and a prebuilt graph running on the engine unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph import HandleRefError, LlamaCppLatentModel, ModelMismatchError
from latent_graph.engine import load_model
from latent_graph.graphs import build_compact
from latent_graph.persist import FolderBlobStore, HandleStore

from chains import three_agent_chain

pytest.importorskip("llama_cpp", reason="the llama.cpp engine needs the llamacpp extra")

Q = "What is 12 times 7?"
TESTS = Path(__file__).resolve().parents[1]


def test_round_trip_through_a_blob_store_in_a_fresh_store(llamacpp_tiny, tmp_path: Path) -> None:
    m = llamacpp_tiny
    parent = m.think(None, [Q, "Plan."], steps=2, agent="a")
    h = m.think(parent, "Check.", steps=2, agent="b")
    ref = HandleStore(FolderBlobStore(tmp_path)).save(h)
    first = HandleStore(FolderBlobStore(tmp_path)).save(parent)
    shared = set(first["chunks"]) & set(ref["chunks"])
    assert len(shared) == len(parent.segments)  # the parent's segments are stored once (its tail is its own)
    back = HandleStore(FolderBlobStore(tmp_path)).load(ref, model=m)  # nothing cached: read from the blobs
    assert back is not h and back.segments == h.segments and back.fingerprint == h.fingerprint
    assert all(torch.equal(a, b) for a, b in zip(back.keys + back.values, h.keys + h.values))
    assert m.decode(back, "Answer.", max_new_tokens=6).texts == m.decode(h, "Answer.", max_new_tokens=6).texts
    parent_ref = HandleStore(FolderBlobStore(tmp_path)).save(h)
    assert parent_ref["digest"] == ref["digest"]  # stored once


def test_a_reference_of_the_other_engine_is_refused_by_name(llamacpp_tiny, llama, tmp_path: Path) -> None:
    store = HandleStore(FolderBlobStore(tmp_path))
    ref = store.save(llama.think(None, Q, steps=1))
    with pytest.raises((ModelMismatchError, HandleRefError)):
        store.load(ref, model=llamacpp_tiny)


def test_a_prebuilt_graph_runs_on_the_engine_unchanged(llamacpp_tiny, llama) -> None:
    qs = [Q, "Alice has 3 apples and buys 5 more. How many?"]
    out = build_compact(llamacpp_tiny, steps=2, max_new_tokens=6).invoke({"questions": qs})
    ref = build_compact(llama, steps=2, max_new_tokens=6).invoke({"questions": qs})
    assert out["answers"] == ref["answers"]  # the same weights on the other engine: the same greedy answers


def test_load_model_picks_the_engine_from_a_gguf_path(tiny_gguf: Path, llamacpp_tiny) -> None:
    m = load_model(str(tiny_gguf), threads=1)
    assert isinstance(m, LlamaCppLatentModel) and m.fingerprint == llamacpp_tiny.fingerprint
    assert m.runtime.n_threads == 1


RUN = """
import json, sys
sys.path.insert(0, {tests!r})
from langgraph.checkpoint.sqlite import SqliteSaver
import sqlite3
from chains import three_agent_chain
from latent_graph import LlamaCppLatentModel
from latent_graph.persist import FolderBlobStore, HandleStore
model = LlamaCppLatentModel({gguf!r}, n_threads=1)
saver = SqliteSaver(sqlite3.connect({db!r}, check_same_thread=False))
graph = three_agent_chain(model, HandleStore(FolderBlobStore({blobs!r})), saver, interrupt=["a"])
cfg = {{"configurable": {{"thread_id": "t"}}}}
out = graph.invoke({{"questions": [{q!r}]}} if sys.argv[1] == "pause" else None, cfg)
print(json.dumps({{"answers": out.get("answers"), "next": list(graph.get_state(cfg).next)}}))
"""


def test_a_run_paused_in_one_process_resumes_in_another(tiny_gguf: Path, llamacpp_tiny, tmp_path: Path) -> None:
    code = RUN.format(tests=str(TESTS), gguf=str(tiny_gguf), db=str(tmp_path / "db"), blobs=str(tmp_path / "b"), q=Q)

    def step(what: str) -> dict:
        proc = subprocess.run([sys.executable, "-c", code, what], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    paused = step("pause")
    assert paused["next"] == ["b"] and not paused["answers"]
    resumed = step("resume")
    ref = three_agent_chain(llamacpp_tiny, saver=InMemorySaver()).invoke(
        {"questions": [Q]}, {"configurable": {"thread_id": "ref"}}
    )
    assert resumed["next"] == [] and resumed["answers"] == ref["answers"]
