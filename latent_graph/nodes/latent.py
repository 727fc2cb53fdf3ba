"""LatentAgentNode: an agent that thinks in latent space and passes its handle on."""

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.runnables import RunnableConfig

from latent_graph.engine import DEFAULT_STEPS, KVPolicy, LatentHandle, compress, kept_total, observing
from latent_graph.nodes.base import AgentNode
from latent_graph.state.access import values_of
from latent_graph.state.trace import NodeRecord, Sends, StepRecord, prompt_tokens_of


@dataclass
class LatentAgentNode(AgentNode):
    """Reads the incoming handle, runs ``think`` (prompt + ``steps`` latent steps), writes the new handle.

    Attributes:
        steps: Latent steps after the prompt (0 = prompt only).
        kv_keep: Fraction in (0, 1] of the columns this agent wrote that its outgoing edge adds to each row
            (1 = all, the handle is passed on unchanged): ``ceil(kv_keep * n)`` of its ``n``, chosen by score
            over the row's every column, the earlier senders' kept ones included (``KVPolicy.scope="chain"``).
        kv_budget: At most this many real columns per row cross its edge (None = no cap).
    """

    steps: int = DEFAULT_STEPS
    kv_keep: float = 1.0
    kv_budget: int | None = None
    sends: ClassVar[Sends] = "latent"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kv = KVPolicy(keep=self.kv_keep, budget=self.kv_budget)  # validates both
        self.compresses = self.kv.active  # decided once, here: an uncompressed edge never calls into compression

    def edge(self, before: LatentHandle | None, after: LatentHandle, record: list[Any]) -> LatentHandle:
        """What crosses the outgoing edge: ``after`` with only the columns :attr:`kv` keeps: the columns this call
        wrote set how many a row adds, and they compete with the earlier senders' kept ones (``KVPolicy.scope``)."""
        if not self.compresses:
            return after
        read = 0 if before is None else len(before.with_memory(self.memory).segments)
        start = after.segments[read].start if read < len(after.segments) else after.seq_len
        out = compress(self.model, after, self.kv, start, record)
        assert out is not None
        return out

    def latent_record(
        self,
        config: Any,
        start: float,
        before: LatentHandle | None,
        after: LatentHandle,
        tokens: list[int],
        generated: list[int],
        log: list[StepRecord],
        prompts: list[str],
    ) -> NodeRecord:
        """The trace record of a run that fed ``tokens`` per row, took :attr:`steps` latent steps (``log``) and
        generated ``generated`` tokens per row."""
        return self.trace_record(
            config,
            start=start,
            before=before,
            after=after,
            prompt_tokens=tokens,
            latent_steps=self.steps,
            generated_tokens=generated,
            steps=log,
            prompts=prompts,
        )

    def think(
        self, before: LatentHandle | None, state: dict[str, Any], start: float | None = None, config: Any = None
    ) -> dict[str, Any]:
        """Think on top of ``before``; returns the state update (output handle, consumed inputs, trace)."""
        start = time.time() if start is None else start
        log: list[StepRecord] = []
        prompts = self.prompts(state)
        with observing(self.model, self.kv) if self.compresses else nullcontext([]) as record:
            after = self.model.think(
                before,
                prompts,
                self.steps,
                agent=self.name,
                memory=self.memory,
                on_step=self.step_callback(log, config),
            )
        tokens = prompt_tokens_of(after)
        after = self.edge(before, after, record)
        record = self.latent_record(config, start, before, after, tokens, [0] * len(prompts), log, prompts)
        if self.compresses:
            record["kv_kept"], record["kv_total"] = kept_total(after)
        return {**self.consumed(state), **self.output(after, config, state), "trace": [self.in_turn(record, state)]}

    def __call__(self, state: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        config = self.begin(config)
        state = values_of(state)
        return self.think(self.incoming(state, config), state, config=config)
