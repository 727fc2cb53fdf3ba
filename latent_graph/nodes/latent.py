"""LatentAgentNode: an agent that thinks in latent space and passes its handle on."""


import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from latent_graph.nodes.base import AgentNode, Sends


@dataclass
class LatentAgentNode(AgentNode):
    """Reads the incoming handle, runs ``think`` (prompt + ``steps`` latent steps), writes the new handle.

    Attributes:
        steps: Latent steps after the prompt (0 = prompt only).
    """

    steps: int = 8
    sends: Sends = field(default="latent", init=False)

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        start = time.time()
        before = self.incoming(state)
        log: list[dict[str, Any]] = []
        prompts = self.prompts(state)
        after = self.model.think(
            before,
            prompts,
            self.steps,
            agent=self.name,
            memory=self.memory,
            on_step=self.step_callback(log),
        )
        update = self.consumed(state)
        if self.branch:
            update["branches"] = {self.name: after}
        else:
            update["handle"] = after
        update["trace"] = [self.record(start, before, after, log, prompts=prompts)]
        return update
