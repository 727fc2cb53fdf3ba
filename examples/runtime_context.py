"""Example — latent agents under LangGraph's ``Runtime``: a run context, ``astream_events``, a node timeout.

- ``context_schema``: plain functions read ``runtime.context`` and call a latent node by hand
  (``return PLANNERS[runtime.context.style](state)``, no config passed down); the node still sends its
  ``latent_step`` events to ``astream_events`` (and the custom stream) and the judger its tokens.
- ``add_node(..., timeout=...)``: latent nodes are natively async ``Runnable``s; under a timeout a run that takes
  too long stops at its next latent step (or decoded token) and LangGraph raises ``NodeTimeoutError``; the model is
  free for the next run.

Run: ``python examples/runtime_context.py``.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode
from latent_graph.state import LatentState

QUESTION = "What is 12 times 7?"


@dataclass
class Style:
    """The run context: how the planner should work."""

    style: str = "brief"


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """planner (chosen by ``runtime.context.style``) ==> judger, both with a 300 s timeout."""
    planners = {
        style: LatentAgentNode(model, "planner", f"You are the Planner. Plan {how}.", steps=steps)
        for style, how in {"brief": "in one step", "careful": "step by step and check each step"}.items()
    }
    judger = JudgerNode(
        model, "judger", "Give the final answer.", decoding=DecodeOptions(max_new_tokens=max_new_tokens)
    )

    def planner(state: LatentState, runtime: Runtime[Style]) -> dict[str, Any]:
        return planners[runtime.context.style](state)  # called by hand: no config, events still reach the streams

    b = StateGraph(LatentState, context_schema=Style)
    b.add_node("planner", planner)
    b.add_node("judger", judger, metadata=judger.metadata, timeout=300)
    b.add_edge(START, "planner")
    b.add_edge("planner", "judger")
    b.add_edge("judger", END)
    return b.compile(name="runtime-context")


async def stream(graph: Any, style: str) -> tuple[list[dict[str, Any]], str]:
    """The ``latent_step`` events (``astream_events``) and the judger's streamed text of one run."""
    steps: list[dict[str, Any]] = []
    text = ""
    async for event in graph.astream_events({"questions": [QUESTION]}, context=Style(style), version="v2"):
        if event["event"] == "on_custom_event" and event["name"] == "latent_step":
            steps.append(event["data"])
            print(
                f"[{event['metadata']['langgraph_node']} step {event['data']['step']}] norm {event['data']['norm'][0]}"
            )
        elif event["event"] == "on_chat_model_stream" and event["metadata"].get("langgraph_node") == "judger":
            text += str(event["data"]["chunk"].content)
    return steps, text


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Run once per planning style; print the latent steps and the streamed answer."""
    graph = build(model or LocalLatentModel.default(), steps, max_new_tokens)
    out: dict[str, Any] = {}
    for style in ("brief", "careful"):
        events, text = asyncio.run(stream(graph, style))
        print(f"{style}: {len(events)} latent steps, answer {text!r}")
        out[style] = {"events": events, "answer": text}
    return out


if __name__ == "__main__":
    main()
