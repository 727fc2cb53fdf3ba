"""Shared machinery of agent nodes: prompt assembly, inputs from state, trace records.

A node is a plain callable ``node(state, config=None) -> dict`` usable in any
``StateGraph``. It never mutates the handle it reads: engine calls return new ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from latent_graph.handle import LatentHandle
from latent_graph.merge import merge_branches
from latent_graph.model import LocalLatentModel, StepInfo
from latent_graph.nodes.events import writer
from latent_graph.nodes.state import CLEAR, contexts_of, questions_of

Sends = Literal["latent", "text", "answer"]


def compose_prompt(instruction: str, question: str, context: str | None, inbox: list[dict[str, Any]], row: int) -> str:
    """Role instruction + private context + question + text received over text edges."""
    parts = [instruction.strip()]
    if context:
        parts.append(f"Context (only you have seen this): {context}")
    parts.append(f"Question: {question}")
    for msg in inbox:
        parts.append(f"Message from {msg['agent']}:\n{msg['texts'][row]}")
    return "\n\n".join(parts)


@dataclass
class AgentNode:
    """Base of latent, text and judger nodes.

    Attributes:
        model: The shared local model (a LangChain chat model for external text agents).
        name: Agent name (segment table, trace, events).
        instruction: Role prompt; the question (and messages) are appended.
        sees_context: Whether this agent sees the per-question private ``context``.
        memory: Memory policy applied to the incoming handle ("all", "last", "latent").
        branch: Write the output handle to ``branches[name]`` (parallel fan-out) instead of ``handle``.
        inspect: Top-k nearest tokens / logit-lens per latent step (0 = off; costs a vocab matmul).
    """

    model: Any
    name: str
    instruction: str
    sees_context: bool = False
    memory: str = "all"
    branch: bool = False
    inspect: int = 0
    sends: Sends = field(default="latent", init=False)

    # ---------------------------------------------------------------- inputs
    def incoming(self, state: dict[str, Any]) -> LatentHandle | None:
        """The handle this agent reads: merged branches if any, else ``state['handle']``."""
        prefix = state.get("handle")
        branches = state.get("branches") or {}
        if branches and not self.branch:
            return merge_branches(prefix, [branches[k] for k in sorted(branches)])
        return prefix

    def prompts(self, state: dict[str, Any]) -> list[str]:
        qs = questions_of(state)
        ctx = contexts_of(state, len(qs)) if self.sees_context else None
        inbox = state.get("inbox") or []
        return [compose_prompt(self.instruction, q, ctx[i] if ctx else None, inbox, i) for i, q in enumerate(qs)]

    def consumed(self, state: dict[str, Any]) -> dict[str, Any]:
        """State updates that mark this agent's inputs as read."""
        update: dict[str, Any] = {}
        if state.get("inbox"):
            update["inbox"] = CLEAR
        if state.get("branches") and not self.branch:
            update["branches"] = None
        return update

    # ------------------------------------------------------------ latent steps
    def step_callback(self, steps_log: list[dict[str, Any]]) -> Any:
        emit = writer()
        model: LocalLatentModel = self.model

        def on_step(info: StepInfo) -> None:
            record: dict[str, Any] = {
                "step": info.step,
                "norm": [round(float(x), 4) for x in info.hidden.float().norm(dim=-1)],
            }
            if self.inspect:
                near = model.nearest_tokens(info.embedding, k=self.inspect)
                record["nearest"] = [[t for t, _ in row] for row in near]
                record["cosine"] = [round(row[0][1], 4) for row in near]
                record["lens"] = [[[t, round(p, 4)] for t, p in row] for row in model.logit_lens(info.hidden, k=self.inspect)]
            steps_log.append(record)
            emit({"event": "latent_step", "node": self.name, **record})

        return on_step

    # ------------------------------------------------------------------ trace
    def record(
        self,
        start: float,
        before: LatentHandle | None,
        after: LatentHandle | None,
        steps_log: list[dict[str, Any]],
        generated: int = 0,
        prompts: list[str] | None = None,
    ) -> dict[str, Any]:
        """The node's trace record (JSON-serialisable); ``prompts`` = composed prompt per question."""
        b_prompt = before.prompt_tokens if before is not None else 0
        b_steps = before.latent_steps if before is not None else 0
        end = time.time()
        return {
            "node": self.name,
            "kind": self.sends,
            "start": start,
            "end": end,
            "wall_s": round(end - start, 4),
            "prompt_tokens": (after.prompt_tokens - b_prompt) if after is not None else 0,
            "latent_steps": (after.latent_steps - b_steps) if after is not None else 0,
            "generated_tokens": generated,
            "handle_bytes_before": before.nbytes if before is not None else 0,
            "handle_bytes_after": after.nbytes if after is not None else 0,
            "kv_len": after.seq_len if after is not None else 0,
            "memory": self.memory,
            "steps": steps_log,
            "prompts": list(prompts) if prompts is not None else [],
        }
