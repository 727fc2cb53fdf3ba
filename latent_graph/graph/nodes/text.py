"""TextAgentNode and JudgerNode: agents that decode text.

With a :class:`~latent_graph.engine.LocalLatentModel` they decode on top of the
incoming latent handle through the engine's public ``decode``; the tokens also
reach LangGraph's ``stream_mode="messages"`` through a thin chat-model callback
run (:class:`~latent_graph.graph.streaming.ChatRun`). Any other LangChain chat
model works too, but only on text input (it cannot read a latent handle).
"""


import time
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from latent_graph.engine import DecodeOptions, Decoded, LatentHandle, LocalLatentModel
from latent_graph.errors import ModelMismatchError
from latent_graph.graph.nodes.base import AgentNode
from latent_graph.graph.state import Message
from latent_graph.graph.streaming import ChatRun
from latent_graph.graph.trace import NodeRecord, Sends, node_record

_D = DecodeOptions()


@dataclass
class _Decoding(AgentNode):
    """A node that decodes; decoding options default to :class:`DecodeOptions`' defaults."""

    max_new_tokens: int = _D.max_new_tokens
    temperature: float = _D.temperature
    top_p: float = _D.top_p
    seed: int | None = _D.seed

    @property
    def decoding(self) -> DecodeOptions:
        return DecodeOptions(self.max_new_tokens, self.temperature, self.top_p, self.seed)

    def _engine_decode(self, before: LatentHandle | None, prompts: list[str], config: Any) -> Decoded:
        run = ChatRun(config, self.name, prompts, self.model.name)
        try:
            result = self.model.decode(
                before, prompts, agent=self.name, memory=self.memory, on_token=run.on_token if run.listening else None,
                **self.decoding.as_dict(),
            )
        except BaseException as exc:
            run.fail(exc)
            raise
        run.finish(result.texts, result.prompt_tokens, result.new_tokens)
        return result

    def decode(self, state: dict[str, Any], config: Any) -> tuple[list[str], NodeRecord, LatentHandle | None]:
        """Decode one text per question; returns (texts, trace record, decoded handle or None)."""
        start = time.time()
        before = self.incoming(state)
        prompts = self.prompts(state)
        if isinstance(self.model, LocalLatentModel):
            d = self._engine_decode(before, prompts, config)
            rec = node_record(node=self.name, kind=self.sends, start=start, before=before, after=d.handle,
                              prompt_tokens=d.prompt_tokens, latent_steps=0, generated_tokens=d.new_tokens,
                              memory=self.memory, steps=[], prompts=prompts)
            return d.texts, rec, d.handle
        if before is not None:
            raise ModelMismatchError(
                before.fingerprint.name, repr(self.model), what=f"latent handle reaching text agent {self.name!r}"
            )
        replies = self.model.batch([[HumanMessage(p)] for p in prompts], config)
        texts = [str(r.content) for r in replies]
        usage = [getattr(r, "usage_metadata", None) or {} for r in replies]
        rec = node_record(node=self.name, kind=self.sends, start=start, before=None, after=None,
                          prompt_tokens=[int(u.get("input_tokens", 0)) for u in usage], latent_steps=0,
                          generated_tokens=[int(u.get("output_tokens", 0)) for u in usage],
                          memory=self.memory, steps=[], prompts=prompts)
        return texts, rec, None


@dataclass
class TextAgentNode(_Decoding):
    """Decodes a message and passes it on as text (a TextMAS agent)."""

    sends: ClassVar[Sends] = "text"

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        texts, rec, _ = self.decode(state, config)
        msg = Message(agent=self.name, texts=texts)
        update = self.consumed(state)
        update["inbox"] = [msg]
        update["messages"] = [msg]
        if not self.branch:
            update["handle"] = None  # a text edge carries text only
        update["trace"] = [rec]
        return update


@dataclass
class JudgerNode(_Decoding):
    """Decodes the final answer from the incoming handle (+ any text messages).

    Attributes:
        keep_handle: Also write the decoded handle (cache + answer tokens) to ``handle``.
    """

    keep_handle: bool = False
    sends: ClassVar[Sends] = "answer"

    def __call__(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        texts, rec, decoded = self.decode(state, config)
        update = self.consumed(state)
        update["answers"] = texts
        update["messages"] = [Message(agent=self.name, texts=texts)]
        update["trace"] = [rec]
        if self.keep_handle and decoded is not None:
            update["handle"] = decoded
        return update
