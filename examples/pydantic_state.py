"""Example — latent agents in a graph whose state is a pydantic model.

    planner ==latent==> judger

LangGraph hands each node an instance of your model; latent_graph's nodes read any state type
(dict/TypedDict, pydantic, dataclass) and return plain updates. Declare the keys the nodes need:
``questions`` (what they answer), ``handle`` (the latent edge: a JSON reference to a cache) and
``answers`` (the judger's output); updates to keys your state does not declare are dropped by
LangGraph (``add_agent`` refuses a latent sender whose state has no ``handle``).

Run: ``python examples/pydantic_state.py`` (uses the embedded default model).
"""

# no `from __future__ import annotations` here: pydantic reads the state's annotations when the class is made
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent


class Ask(BaseModel):
    """The graph's state: validated by pydantic on the way in."""

    questions: list[str] = Field(min_length=1)
    handle: dict[str, Any] | None = None
    answers: list[str] = []


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """planner -> judger over the pydantic state."""
    builder = StateGraph(Ask)
    add_agent(builder, LatentAgentNode(model=model, name="planner", instruction="Plan the solution.", steps=steps))
    add_agent(
        builder,
        JudgerNode(
            model=model,
            name="judger",
            instruction="Answer with the final number.",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
        ),
    )
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "judger")
    builder.add_edge("judger", END)
    return builder.compile()


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Ask one question; print the answer and the latent edge's size."""
    model = model or LocalLatentModel.default()
    out = build(model, steps, max_new_tokens).invoke({"questions": ["What is 12 times 7?"]})
    print("answer:", out["answers"][0])
    print("latent edge:", out["handle"]["columns"], "cache columns")
    return {"out": out}


if __name__ == "__main__":
    main()
