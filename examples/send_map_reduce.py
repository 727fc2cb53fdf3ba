"""Example — Send map-reduce: one planner, N parallel workers (one ``Send`` each), one judger.

    planner -. latent · Send .-> worker (×N, one branch per Send) ==latent==> judger

The planner thinks once; a router sends the planner's handle to ``worker`` once per
topic with ``Send("worker", {...})``. Every Send task keeps its own branch
(``branches["worker[i]"]``), and the judger reads all of them merged in task order.

Run: ``python examples/send_map_reduce.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent
from latent_graph.present.draw import to_ascii
from latent_graph.state import LatentState

QUESTION = "A farm has 3 pens with 4 sheep each and 2 pens with 5 goats each. How many animals are there?"
TOPICS = ["the sheep", "the goats", "the total"]


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64, topics: list[str] = TOPICS) -> Any:
    """planner -> Send(worker) per topic -> judger."""
    b = StateGraph(LatentState)
    add_agent(
        b,
        LatentAgentNode(
            model=model, name="planner", steps=steps, instruction="You are the Planner. Split the problem into parts."
        ),
    )
    add_agent(
        b,
        LatentAgentNode(
            model=model,
            name="worker",
            steps=steps,
            branch=True,
            instruction="You are a Worker. Solve only your part of the problem.",
        ),
    )
    add_agent(
        b,
        JudgerNode(
            model=model,
            name="judger",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            instruction="You are the Judger. Combine the parts and answer as \\boxed{ANSWER}.",
        ),
    )

    def fan_out(state: dict[str, Any]) -> list[Send]:
        return [
            Send(
                "worker",
                {"questions": [f"{q} (Your part: {t}.)" for q in state["questions"]], "handle": state["handle"]},
            )
            for t in topics
        ]

    b.add_edge(START, "planner")
    b.add_conditional_edges("planner", fan_out, ["worker"])
    b.add_edge("worker", "judger")
    b.add_edge("judger", END)
    return b.compile(name="send-map-reduce")


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Draw the graph, run it and show one trace row per Send task."""
    model = model or LocalLatentModel.default()
    graph = build(model, steps, max_new_tokens)
    print(to_ascii(graph))
    out = graph.invoke({"questions": [QUESTION]})
    for r in out["trace"]:
        print(f"{r.get('branch', r['node']):>10}  kv_len={r['kv_len']}")
    print("answer:", out["answers"][0])
    return {"graph": graph, "out": out}


if __name__ == "__main__":
    main()
