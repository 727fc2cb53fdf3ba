"""LatentAgentNode: an agent that thinks in latent space and passes its handle on."""


import time
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.runnables import RunnableConfig

from latent_graph.engine import DEFAULT_STEPS, LatentHandle
from latent_graph.nodes.base import AgentNode
from latent_graph.state.trace import Sends, StepRecord, node_record, prompt_tokens_of


@dataclass
class LatentAgentNode(AgentNode):
    """Reads the incoming handle, runs ``think`` (prompt + ``steps`` latent steps), writes the new handle.

    Attributes:
        steps: Latent steps after the prompt (0 = prompt only).
    """

    steps: int = DEFAULT_STEPS
    sends: ClassVar[Sends] = "latent"

    def think(self, before: LatentHandle | None, state: dict[str, Any], start: float | None = None,
              config: Any = None) -> dict[str, Any]:
        """Think on top of ``before``; returns the state update (output handle, consumed inputs, trace)."""
        start = time.time() if start is None else start
        log: list[StepRecord] = []
        prompts = self.prompts(state)
        after = self.model.think(
            before, prompts, self.steps, agent=self.name, memory=self.memory, on_step=self.step_callback(log, config)
        )
        record = node_record(
            node=self.name, kind=self.sends, start=start, before=before, after=after,
            prompt_tokens=prompt_tokens_of(after), latent_steps=self.steps, generated_tokens=[0] * len(prompts),
            memory=self.memory, steps=log, prompts=prompts, task=self.task(config),
        )
        return {**self.consumed(state), **self.output(after, config, state), "trace": [self.in_turn(record, state)]}

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        return self.think(self.incoming(state, config), state, config=config)
