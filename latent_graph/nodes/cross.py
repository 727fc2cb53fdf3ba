"""CrossModelAgentNode: a latent edge between agents on *different* models.

A KV cache is meaningless to another model, so this node receives the sender's
latent hidden states through a trained cross-model adapter
(:func:`latent_graph.adapters.cross_handoff`), injects them into its own model as a
latent segment, then thinks on top like any latent agent. Measured quality is low
(see docs/adapters.md): prefer a text edge across models unless you trained a good adapter.
"""

import time
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from latent_graph.errors import InvalidArgumentError
from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.state.access import values_of


@dataclass
class CrossModelAgentNode(LatentAgentNode):
    """Latent agent on ``model`` reading a handle built by ``source_model``.

    Attributes:
        source_model: The sender's LocalLatentModel.
        adapter: AdapterRealigner trained from ``source_model`` to ``model``.
    """

    source_model: Any = None
    adapter: Any = None

    def _reader(self, ref: Any) -> Any:
        """References reaching this node were built by ``source_model``: resolve them for it."""
        return self.source_model if self.source_model is not None else super()._reader(ref)

    def __call__(self, state: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        state = values_of(state)
        if self.source_model is None or self.adapter is None:
            raise InvalidArgumentError(f"cross-model node {self.name!r} needs source_model and adapter")
        config = self.begin(config)
        start = time.time()
        incoming = self.incoming(state, config)
        base = None
        if incoming is not None:
            from latent_graph.adapters.cross import cross_handoff  # training code loads only when a cross edge runs

            base = cross_handoff(self.source_model, incoming, self.model, self.adapter, agent=f"{self.name}:received")
        return self.think(base, state, start, config=config)
