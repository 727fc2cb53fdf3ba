"""The three-node latent chain (a -> b -> judger j) the saver tests build, in-process and in fresh processes."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent
from latent_graph.state import LatentState


def three_agent_chain(model, store=None, saver=None, interrupt=None):
    """Two latent agents (2 steps each) and a 4-token judger, compiled on ``saver`` (None: no checkpointer)."""
    b = StateGraph(LatentState)
    add_agent(b, LatentAgentNode(model=model, name="a", instruction="Plan.", steps=2, handle_store=store))
    add_agent(b, LatentAgentNode(model=model, name="b", instruction="Check.", steps=2, handle_store=store))
    add_agent(
        b,
        JudgerNode(
            model=model, name="j", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=4), handle_store=store
        ),
    )
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", "j")
    b.add_edge("j", END)
    return b.compile(checkpointer=saver, interrupt_after=interrupt)
