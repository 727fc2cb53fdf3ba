"""Example — a tool-using latent agent: it calls ``multiply``, reads the result as a tool turn, thinks on, hands over.

    solver (calls multiply) ==latent==> judger

The solver's reply is decoded under the tool-call grammar (so the call always parses), the
node runs it, the result enters the solver's KV cache as a tool turn of the chat template, and
the solver then takes its latent steps on top of it. The judger reads that cache (tool turn
included) and answers. The handle's segment table, the trace and the drawing show the tool turn.

Run: ``python examples/tool_agent.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, ToolAgentNode, add_agent
from latent_graph.persist import HandleStore
from latent_graph.present.draw import to_ascii
from latent_graph.state import LatentState

QUESTION = "What is 12 times 7?"


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64, store: HandleStore | None = None) -> Any:
    """solver (a ToolAgentNode with ``multiply``) -> judger, compiled."""
    b = StateGraph(LatentState)
    add_agent(
        b,
        ToolAgentNode(
            model=model,
            name="solver",
            steps=steps,
            tools=[multiply],
            handle_store=store,
            instruction="You are the Solver. Use the multiply tool to compute the answer.",
        ),
    )
    add_agent(
        b,
        JudgerNode(
            model=model,
            name="judger",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            handle_store=store,
            instruction="You are the Judger. Using the tool result, give the final answer as a number.",
        ),
    )
    b.add_edge(START, "solver")
    b.add_edge("solver", "judger")
    b.add_edge("judger", END)
    return b.compile(name="tool-agent")


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Draw the graph, run it, print the tool turn, the solver's segment table and the answer."""
    model = model or LocalLatentModel.default()
    store = HandleStore.in_memory()
    graph = build(model, steps, max_new_tokens, store)
    print(to_ascii(graph))
    out = graph.invoke({"questions": [QUESTION]})
    solver = next(r for r in out["trace"] if r["node"] == "solver")
    for call in solver["tool_turns"][0]:
        print(f"tool call: {call['name']}({call['arguments']}) -> {call['result']!r}")
    handle = store.load(out["handle"], model)  # the solver's handle (the judger keeps its own only with keep_handle)
    segments = [(s.agent, s.kind, s.length) for s in handle.segments]
    print("segments:", segments)
    print("answer:", out["answers"][0])
    return {"out": out, "segments": segments}


if __name__ == "__main__":
    main()
