"""Example — a latent team as one node of your own ``MessagesState`` chat graph.

    your graph: START -> latent_team[planner ==> critic ==> refiner ==> judger] -> END

A prebuilt team reads LangGraph's ``messages`` channel when it gets no ``questions``: the last
human message is the question, the turns before it are the first agent's context; the judger's
answer comes back as ``AIMessage(name="judger")``. The parent's checkpointer keeps the
conversation, so the second turn sees the first.

Run: ``python examples/messages_state.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_compact

TURNS = ["What is 12 times 7?", "And what is that number plus 16?"]


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """A MessagesState graph whose only node is a compact latent team."""
    team = build_compact(model, name="latent_team", steps=steps, max_new_tokens=max_new_tokens)
    builder = StateGraph(MessagesState)
    builder.add_node("latent_team", team)
    builder.add_edge(START, "latent_team")
    builder.add_edge("latent_team", END)
    return builder.compile(checkpointer=InMemorySaver())


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Two turns of one conversation; print it."""
    model = model or LocalLatentModel.default()
    graph = build(model, steps, max_new_tokens)
    config = {"configurable": {"thread_id": "chat"}}
    for text in TURNS:
        out = graph.invoke({"messages": [("user", text)]}, config)
    for msg in out["messages"]:
        print(f"{msg.name or msg.type}: {msg.content}")
    return {"graph": graph, "out": out}


if __name__ == "__main__":
    main()
