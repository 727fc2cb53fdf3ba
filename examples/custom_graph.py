"""Example 1 — a custom 3-agent graph wired by hand with ``StateGraph``, mixing edge kinds.

    analyst ==latent==> skeptic --text--> solver ==latent==> judger

The analyst thinks in latent space and hands its KV cache to the skeptic; the
skeptic *decodes* a short critique and sends it as text (a fresh cache starts
there); the solver reads that message, thinks in latent space and hands its
cache to the judger, which decodes the answer.

Run: ``python examples/custom_graph.py`` (uses the embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, LocalLatentModel
from latent_graph.nodes import JudgerNode, LatentAgentNode, TextAgentNode, add_agent
from latent_graph.present.draw import to_ascii
from latent_graph.state import LatentState

QUESTION = "A shop sells pens at 3 dollars each. Tom buys 4 pens and pays with a 20 dollar bill. What is his change?"


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """Wire analyst → skeptic → solver → judger by hand and compile.

    ``add_agent(b, node)`` is ``b.add_node(node.name, node, metadata=node.metadata)``: the metadata
    declares what the node sends, which drawings and reports read back through ``graph.get_graph()``.
    """
    b = StateGraph(LatentState)
    add_agent(
        b,
        LatentAgentNode(
            model=model,
            name="analyst",
            steps=steps,
            sees_context=True,
            instruction="You are the Analyst. Work out which quantities matter and how they combine.",
        ),
    )
    add_agent(
        b,
        TextAgentNode(
            model=model,
            name="skeptic",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            instruction="You are the Skeptic. In one or two sentences, name the step most likely to go wrong.",
        ),
    )
    add_agent(
        b,
        LatentAgentNode(
            model=model,
            name="solver",
            steps=steps,
            instruction="You are the Solver. Using the Skeptic's warning, solve the problem step by step.",
        ),
    )
    add_agent(
        b,
        JudgerNode(
            model=model,
            name="judger",
            decoding=DecodeOptions(max_new_tokens=max_new_tokens),
            instruction="You are the Judger. Give the final answer as a number in the form \\boxed{ANSWER}.",
        ),
    )
    b.add_edge(START, "analyst")
    b.add_edge("analyst", "skeptic")
    b.add_edge("skeptic", "solver")
    b.add_edge("solver", "judger")
    b.add_edge("judger", END)
    return b.compile(name="custom-mixed")


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Draw the graph, run it on one question and print what crossed each edge."""
    model = model or LocalLatentModel.default()
    graph = build(model, steps, max_new_tokens)
    print(to_ascii(graph))  # edge kinds: what each node declared through add_agent (its node metadata)
    out = graph.invoke({"questions": [QUESTION]})
    for rec in out["trace"]:
        print(f"{rec['node']:>8} [{rec['kind']:>6}] {rec['wall_s']:.2f}s  kv_len={rec['kv_len']}")
    for msg in out["transcript"]:
        print(f"{msg['agent']} said: {msg['texts'][0]!r}")
    print("answer:", out["answers"][0])
    return out


if __name__ == "__main__":
    main()
