"""Example — a subgraph: a prebuilt sequential team used as one node of a bigger graph.

    scout ==latent==> team[critic ==> judger] ==latent==> editor ==> end

The scout thinks; its handle flows *into* the team (prebuilt graphs accept
``handle`` as input), whose judger answers and, running inside a bigger graph, hands
its answer on: the answer as a message in the inbox, and its decoded handle (the
cache with the answer's tokens) as the latent edge. The editor, a text agent, reads
both and rewrites the team's answer. Trace and transcript merge once (by record id)
across the boundary.

Run: ``python examples/subgraph.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.graphs import build_sequential
from latent_graph.nodes import LatentAgentNode, TextAgentNode, add_agent
from latent_graph.present.draw import to_mermaid
from latent_graph.state import LatentState

QUESTION = "What is 15 percent of 80?"


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """scout -> team (a compiled build_sequential) -> editor."""
    team = build_sequential(
        model,
        agents={"critic": "You are the Critic. Check the reasoning so far."},
        steps=steps,
        max_new_tokens=max_new_tokens,
    )
    b = StateGraph(LatentState)
    add_agent(
        b,
        LatentAgentNode(
            model=model, name="scout", steps=steps, instruction="You are the Scout. Find what the question asks."
        ),
    )
    b.add_node("team", team)  # drawn as what its judger hands on: its handle (and its answer as a message)
    add_agent(
        b,
        TextAgentNode(
            model=model,
            name="editor",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            instruction="You are the Editor. Restate the team's answer in one sentence.",
        ),
    )
    b.add_edge(START, "scout")
    b.add_edge("scout", "team")
    b.add_edge("team", "editor")
    b.add_edge("editor", END)
    return b.compile(name="subgraph")


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Draw the graph (the subgraph as a block), run it and print the trace."""
    model = model or LocalLatentModel.default()
    graph = build(model, steps, max_new_tokens)
    print(to_mermaid(graph))
    out = graph.invoke({"questions": [QUESTION]})
    print(" -> ".join(r["node"] for r in out["trace"]))
    print("team answer:", out["answers"][0])
    print("editor:", out["transcript"][-1]["texts"][0])
    return {"graph": graph, "out": out}


if __name__ == "__main__":
    main()
