"""Example 2 — stream a latent graph: per-step "thought" events and the judger's tokens.

``stream_mode=["custom", "messages"]`` yields two kinds of chunks:

- ``custom``: one event per latent step, ``{"event": "latent_step", "node", "step",
  "norm", ...}``; with ``inspect=k`` also the top-k logit-lens tokens ("what the
  agent was thinking") and the nearest input-embedding tokens;
- ``messages``: ``(AIMessageChunk, metadata)`` token chunks of decoding nodes.

Run: ``python examples/streaming.py``.
"""

from __future__ import annotations

from typing import Any

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_sequential


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, list[Any]]:
    """Print latent-step events as they happen, then the judger's answer token by token."""
    model = model or LocalLatentModel.default()
    graph = build_sequential(model, steps=steps, max_new_tokens=max_new_tokens, inspect=3)
    events: list[dict[str, Any]] = []
    tokens: list[str] = []
    for mode, chunk in graph.stream({"questions": ["What is 12 times 7?"]}, stream_mode=["custom", "messages"]):
        if mode == "custom" and chunk.get("event") == "latent_step":
            events.append(chunk)
            lens = ", ".join(f"{t!r} {p:.2f}" for t, p in chunk["lens"][0])
            print(
                f"[{chunk['node']} step {chunk['step']}] norm={chunk['norm'][0]:.1f} "
                f"cos={chunk['cosine'][0]:.2f} lens: {lens}"
            )
        elif mode == "messages":
            msg, meta = chunk
            if meta.get("langgraph_node") == "judger" and msg.content:
                tokens.append(str(msg.content))
                print(msg.content, end="", flush=True)
    print()
    return {"events": events, "tokens": tokens}


if __name__ == "__main__":
    main()
