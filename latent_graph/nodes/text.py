"""TextAgentNode and JudgerNode: agents that decode text.

Both decode through a langchain-core chat model so LangGraph's
``stream_mode="messages"`` sees their tokens. With a :class:`LocalLatentModel`
they decode on top of the incoming latent handle; any other LangChain chat
model works too, but only on text input (it cannot read a latent handle).
"""


import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from latent_graph.errors import ModelMismatchError
from latent_graph.model import LocalLatentModel
from latent_graph.nodes.base import AgentNode, Sends


@dataclass
class _Decoding(AgentNode):
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def decode(self, state: dict[str, Any], config: Any) -> tuple[list[str], dict[str, Any]]:
        """Decode one text per question; returns (texts, trace record)."""
        start = time.time()
        before = self.incoming(state)
        prompts = self.prompts(state)
        if isinstance(self.model, LocalLatentModel):
            chat = self.model.as_chat_model(
                max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed
            )
            msg = chat.invoke(
                [HumanMessage(prompts[0])], config, handle=before, row_prompts=prompts, agent=self.name, memory=self.memory
            )
            texts = list(msg.response_metadata["texts"])
            generated = sum(msg.response_metadata["new_tokens"])
            rec = self.record(start, before, None, [], generated, prompts=prompts)
            rec["prompt_tokens"] = msg.response_metadata["prompt_tokens"] - (before.prompt_tokens if before else 0)
            rec["kv_len"] = msg.response_metadata.get("kv_len", 0)
            rec["handle_bytes_after"] = msg.response_metadata.get("handle_bytes", 0)
            return texts, rec
        if before is not None:
            raise ModelMismatchError(
                before.fingerprint.name, repr(self.model), what=f"latent handle reaching text agent {self.name!r}"
            )
        replies = self.model.batch([[HumanMessage(p)] for p in prompts], config)
        texts = [str(r.content) for r in replies]
        generated = sum((getattr(r, "usage_metadata", None) or {}).get("output_tokens", 0) for r in replies)
        return texts, self.record(start, None, None, [], generated, prompts=prompts)


@dataclass
class TextAgentNode(_Decoding):
    """Decodes a message and passes it on as text (a TextMAS agent)."""

    sends: Sends = field(default="text", init=False)

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        texts, rec = self.decode(state, config)
        msg = {"agent": self.name, "texts": texts}
        update = self.consumed(state)
        update["inbox"] = [msg]
        update["messages"] = [msg]
        if not self.branch:
            update["handle"] = None  # a text edge carries text only
        update["trace"] = [rec]
        return update


@dataclass
class JudgerNode(_Decoding):
    """Decodes the final answer from the incoming handle (+ any text messages)."""

    sends: Sends = field(default="answer", init=False)

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        texts, rec = self.decode(state, config)
        update = self.consumed(state)
        update["answers"] = texts
        update["messages"] = [{"agent": self.name, "texts": texts}]
        update["trace"] = [rec]
        return update
