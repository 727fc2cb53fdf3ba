"""Example — a multi-turn thread: one ``thread_id``, three questions, the latent cache carried as a conversation.

By default a reused ``thread_id`` starts every run with a fresh cache. With
``configurable={"latent_thread": "continue", "latent_window": N}`` each turn
continues on top of the previous turn's final handle (the judger's answer
included), keeping at most N cache columns (the oldest segments are dropped).

Run: ``python examples/multi_turn.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_sequential
from latent_graph.persist import HandleStore, MemoryBlobStore
from latent_graph.present.draw import to_ascii

TURNS = ["Alice has 3 apples.", "She buys 5 more. How many now?", "She eats 2. How many are left?"]


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Ask three questions in one thread; print each turn's answer and cache length."""
    model = model or LocalLatentModel.default()
    # any LangGraph saver stores the thread (its state holds handle references); the tensors go to the blob store
    graph = build_sequential(
        model,
        agents={"planner": "You are the Planner. Think about the question."},
        checkpointer=InMemorySaver(),
        handle_store=HandleStore(MemoryBlobStore()),
        steps=steps,
        max_new_tokens=max_new_tokens,
    )
    print(to_ascii(graph))
    config = {
        "configurable": {"thread_id": "alice", "latent_thread": "continue", "latent_window": model.max_context // 2}
    }
    kv = []
    for question in TURNS:
        out = graph.invoke({"questions": [question]}, config)
        kv.append(out["trace"][-1]["kv_len"])
        print(f"Q: {question}\nA: {out['answers'][0]}  (judger cache: {kv[-1]} columns)")
    return {"graph": graph, "out": out, "kv": kv}


if __name__ == "__main__":
    main()
