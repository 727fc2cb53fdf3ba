"""CrossModelAgentNode: a latent edge between agents on *different* models.

A KV cache is meaningless to another model, so this node receives the sender's
latent hidden states through a trained cross-model adapter
(:func:`latent_graph.adapters.cross_handoff`), injects them into its own model as a
latent segment, then thinks on top like any latent agent. Measured quality is low
(see docs/adapters.md): prefer a text edge across models unless you trained a good adapter.
"""

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from latent_graph.errors import InvalidArgumentError
from latent_graph.nodes.base import Sends
from latent_graph.nodes.latent import LatentAgentNode


@dataclass
class CrossModelAgentNode(LatentAgentNode):
    """Latent agent on ``model`` reading a handle built by ``source_model``.

    Attributes:
        source_model: The sender's LocalLatentModel.
        adapter: AdapterRealigner trained from ``source_model`` to ``model``.
    """

    source_model: Any = None
    adapter: Any = None
    sends: Sends = field(default="latent", init=False)

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        from latent_graph.adapters import cross_handoff

        if self.source_model is None or self.adapter is None:
            raise InvalidArgumentError(f"cross-model node {self.name!r} needs source_model and adapter")
        start = time.time()
        incoming = self.incoming(state)
        base = None
        if incoming is not None:
            base = cross_handoff(self.source_model, incoming, self.model, self.adapter, agent=f"{self.name}:received")
        prompts = self.prompts(state)
        log: list[dict[str, Any]] = []
        after = self.model.think(base, prompts, self.steps, agent=self.name, memory=self.memory,
                                 on_step=self.step_callback(log))
        update = self.consumed(state)
        update["branches" if self.branch else "handle"] = {self.name: after} if self.branch else after
        update["trace"] = [self.record(start, base, after, log, prompts=prompts)]
        return update
