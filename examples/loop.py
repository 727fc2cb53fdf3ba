"""Example — a loop with a conditional edge: planner and critic iterate until the critic is done.

    planner ==latent==> critic -. latent · again .-> planner
                        critic -. latent · done  .-> judger

A router after the critic sends the handle back to the planner for another round
(``again``) until ``rounds`` rounds ran, then on to the judger (``done``). The
handle keeps growing through the loop: every round sees all earlier rounds.

Run: ``python examples/loop.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent
from latent_graph.present.draw import to_ascii
from latent_graph.state import LatentState

QUESTION = "Alice has 3 apples and buys 5 more, then eats 2. How many apples does she have?"


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64, rounds: int = 2) -> Any:
    """planner -> critic -> (again: planner | done: judger)."""
    b = StateGraph(LatentState)
    add_agent(
        b,
        LatentAgentNode(
            model=model,
            name="planner",
            steps=steps,
            instruction="You are the Planner. Improve the plan using the feedback so far.",
        ),
    )
    add_agent(
        b,
        LatentAgentNode(
            model=model,
            name="critic",
            steps=steps,
            instruction="You are the Critic. Check the plan and point out mistakes.",
        ),
    )
    add_agent(
        b,
        JudgerNode(
            model=model,
            name="judger",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            instruction="You are the Judger. Answer as \\boxed{ANSWER}.",
        ),
    )

    def route(state: dict[str, Any]) -> str:
        done = sum(1 for r in state.get("trace", []) if r["node"] == "critic")
        return "done" if done >= rounds else "again"

    b.add_edge(START, "planner")
    b.add_edge("planner", "critic")
    b.add_conditional_edges("critic", route, {"again": "planner", "done": "judger"})
    b.add_edge("judger", END)
    return b.compile(name="loop")


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Draw the loop, run it and print the rounds."""
    model = model or LocalLatentModel.default()
    graph = build(model, steps, max_new_tokens)
    print(to_ascii(graph))
    out = graph.invoke({"questions": [QUESTION]})
    print(" -> ".join(f"{r['node']}({r['kv_len']})" for r in out["trace"]))
    print("answer:", out["answers"][0])
    return {"graph": graph, "out": out}


if __name__ == "__main__":
    main()
