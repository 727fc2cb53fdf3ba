"""Example — LangGraph node caching over latent agents: a repeated question is answered from the cache.

Every node gets LangGraph's own ``cache_policy=CachePolicy()`` (its default key: the pickled node input) and the
graph a cache (``InMemoryCache()`` here; ``SqliteCache(path=...)`` shares it between processes, with a folder or
SQLite handle store both processes can read). The second identical invoke serves *every* node from the cache:
the state the package's nodes write pickles by content (:func:`latent_graph.state.canonical`), so a handle
reference read back from the cache gives the next node the same key as the fresh one did.

Run: ``python examples/node_cache.py``.
"""

from __future__ import annotations

from typing import Any

from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode
from latent_graph.state import LatentState

QUESTION = "A shop sells pens at 3 dollars each. Tom buys 4 pens. How much does he pay?"


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """planner ==> critic ==> judger, each node cached with LangGraph's default ``CachePolicy``."""
    nodes = [
        LatentAgentNode(model, "planner", "You are the Planner. Plan how to solve the problem.", steps=steps),
        LatentAgentNode(model, "critic", "You are the Critic. Check the plan.", steps=steps),
        JudgerNode(
            model,
            "judger",
            "You are the Judger. Give the final answer as \\boxed{ANSWER}.",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
        ),
    ]
    b = StateGraph(LatentState)
    for node in nodes:
        b.add_node(node.name, node, metadata=node.metadata, cache_policy=CachePolicy())
    b.add_edge(START, "planner")
    b.add_edge("planner", "critic")
    b.add_edge("critic", "judger")
    b.add_edge("judger", END)
    return b.compile(cache=InMemoryCache(), name="cached-team")


def run(graph: Any) -> tuple[dict[str, Any], dict[str, bool]]:
    """One invoke: the final state and, per node, whether LangGraph served it from the cache."""
    final: dict[str, Any] = {}
    cached: dict[str, bool] = {}
    for mode, chunk in graph.stream({"questions": [QUESTION]}, stream_mode=["updates", "values"]):
        if mode == "values":
            final = chunk
            continue
        for node in chunk:
            if node != "__metadata__":
                cached[node] = bool(chunk.get("__metadata__", {}).get("cached"))
    return final, cached


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Ask the same question twice; print which nodes ran and which came from the cache."""
    graph = build(model or LocalLatentModel.default(), steps, max_new_tokens)
    first, ran = run(graph)
    second, cached = run(graph)
    for node in ran:
        print(
            f"{node:>8}: first run {'cached' if ran[node] else 'ran'}, second run {'cached' if cached[node] else 'ran'}"
        )
    print("answer:", first["answers"][0])
    print("same answer from the cache:", second["answers"] == first["answers"])
    return {"first": first, "second": second, "ran": ran, "cached": cached}


if __name__ == "__main__":
    main()
