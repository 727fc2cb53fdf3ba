"""Example — a latent team as a named agent of ``langgraph_supervisor.create_supervisor``.

    supervisor --transfer_to_latent_team--> latent_team[planner ==> critic ==> refiner ==> judger] --> supervisor

The supervisor passes its ``MessagesState`` to the team as is; the team reads the user's
question from the messages and returns its answer as ``AIMessage(name="judger")``, no adapter
in between. ``name=`` names the agent (the supervisor's handoff tool is ``transfer_to_<name>``).
The supervisor's model here is the same local model behind its LangChain chat face: with tools
bound it answers a human turn with a tool call (see ``LatentChatModel.auto_tool_choice``).

Needs ``pip install langgraph-supervisor``. Run: ``python examples/supervisor.py`` (embedded default model).
"""

from __future__ import annotations

from typing import Any

from langgraph_supervisor import create_supervisor

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_compact
from latent_graph.langchain import as_chat_model

ROUTER_TOKENS = 256
"""The supervisor's reply budget: room for a whole handoff call."""


def build(model: LocalLatentModel, steps: int = 4, max_new_tokens: int = 64) -> Any:
    """A supervisor with one agent: the latent team."""
    team = build_compact(model, name="latent_team", steps=steps, max_new_tokens=max_new_tokens)
    router = as_chat_model(model, max_new_tokens=ROUTER_TOKENS)
    return create_supervisor([team], model=router, prompt="Hand every math question to latent_team.").compile()


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64) -> dict[str, Any]:
    """Ask the supervisor one question; print the conversation."""
    model = model or LocalLatentModel.default()
    out = build(model, steps, max_new_tokens).invoke({"messages": [("user", "What is 12 times 7?")]})
    for msg in out["messages"]:
        calls = ", ".join(c["name"] for c in getattr(msg, "tool_calls", None) or [])
        print(f"{msg.name or msg.type}: {msg.content}" + (f" [calls {calls}]" if calls else ""))
    return {"out": out}


if __name__ == "__main__":
    main()
