"""QuietAgentNode: the compact layout's latent agent, whose prompt need not restate the question."""

from dataclasses import dataclass
from typing import Any

from latent_graph.nodes.latent import LatentAgentNode
from latent_graph.state.schema import questions_of


@dataclass
class QuietAgentNode(LatentAgentNode):
    """A latent agent whose prompt does not restate the question (``restate=False``)."""

    restate: bool = True

    def prompts(self, state: dict[str, Any]) -> list[str]:
        if self.restate:
            return super().prompts(state)
        ctx = self.contexts(state, len(questions_of(state, self.max_questions)))
        return [f"{self.instruction}\n\nContext (only you have seen this): {c}" if c else self.instruction for c in ctx]
