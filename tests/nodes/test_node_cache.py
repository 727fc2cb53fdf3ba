"""LangGraph node caching over latent nodes (issue 30, item 3): ``add_node(..., cache_policy=CachePolicy())`` with
the *default* key serves every node of a repeated invoke from the cache (latent, text and judger nodes), with the
same answers, in one process (``InMemoryCache``) and across processes (``SqliteCache`` + a folder handle store).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from latent_graph.engine import DecodeOptions
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode
from latent_graph.persist import HandleStore
from latent_graph.state import LatentState, canonical

Q = {"questions": ["What is 12 times 7?", "Alice has 3 apples and buys 5 more."]}
NODES = ["planner", "critic", "skeptic", "solver", "judger"]


def build(model, store, cache):
    """planner ==> critic ==> skeptic --text--> solver ==> judger, every node cached with the default policy."""
    short = DecodeOptions(max_new_tokens=4)
    nodes = [
        LatentAgentNode(model, "planner", "Plan.", steps=2, handle_store=store),
        LatentAgentNode(model, "critic", "Criticise.", steps=2, inspect=2, handle_store=store),
        TextAgentNode(model, "skeptic", "Doubt.", decoding=short, handle_store=store),
        LatentAgentNode(model, "solver", "Solve.", steps=2, handle_store=store),
        JudgerNode(model, "judger", "Answer.", decoding=short, handle_store=store),
    ]
    b = StateGraph(LatentState)
    for node in nodes:
        b.add_node(node.name, node, cache_policy=CachePolicy())
    for a, z in zip([START, *NODES], [*NODES, END]):
        b.add_edge(a, z)
    return b.compile(cache=cache)


def run(graph):
    """(final state, {node: served from the cache?}) of one invoke."""
    cached, final = {}, None
    for mode, chunk in graph.stream(Q, stream_mode=["updates", "values"]):
        if mode == "values":
            final = chunk
        else:
            for node in chunk:
                if node != "__metadata__":
                    cached[node] = bool(chunk.get("__metadata__", {}).get("cached"))
    return final, cached


def test_default_cache_policy_serves_every_node_of_a_repeated_invoke(llama):
    graph = build(llama, HandleStore.in_memory(), InMemoryCache())
    first, cached_first = run(graph)
    second, cached_second = run(graph)
    assert cached_first == dict.fromkeys(NODES, False)
    assert cached_second == dict.fromkeys(NODES, True)
    assert second["answers"] == first["answers"] and second["handle"] == first["handle"]
    assert second["trace"] == first["trace"]  # the recorded runs, not new ones


def test_canonical_values_pickle_by_content_only():
    import pickle

    shared = "planner-agent"
    fresh = {"node": shared, "segments": [[shared, "latent", 0, 3]], "pair": ("a", 1)}
    read_back = json.loads(json.dumps(fresh))  # every string a new object, the tuple a list
    assert pickle.dumps(fresh) != pickle.dumps(read_back)  # why the default key missed
    assert (
        pickle.dumps(canonical(fresh))
        == pickle.dumps(canonical(read_back))
        == pickle.dumps(canonical(canonical(fresh)))
    )


WORKER = """
import json, sys
sys.path[:0] = [{tests!r}, {here!r}]
from conftest import make_model
from langgraph.cache.sqlite import SqliteCache
from latent_graph.persist import FolderBlobStore, HandleStore
from test_node_cache import build, run

graph = build(make_model("llama", seed=3), HandleStore(FolderBlobStore({blobs!r})), SqliteCache(path={db!r}))
final, cached = run(graph)
print(json.dumps({{"answers": final["answers"], "cached": cached, "handle": final["handle"]}}))
"""


def test_sqlite_cache_is_shared_across_processes(tmp_path: Path):
    here = Path(__file__).resolve().parent
    paths = dict(tests=str(here.parent), here=str(here), blobs=str(tmp_path / "blobs"), db=str(tmp_path / "c.sqlite"))
    script = WORKER.format(**paths)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parents[1]), os.environ.get("PYTHONPATH", "")])}

    def process() -> dict:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    writer, reader = process(), process()
    assert writer["cached"] == dict.fromkeys(NODES, False)
    assert reader["cached"] == dict.fromkeys(NODES, True)
    assert reader["answers"] == writer["answers"] and reader["handle"] == writer["handle"]
