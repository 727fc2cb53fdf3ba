"""TextAgentNode and JudgerNode: agents that decode text.

With a :class:`~latent_graph.engine.LocalLatentModel` they decode on top of the
incoming latent handle through the engine's public ``decode``; the tokens also
reach LangGraph's ``stream_mode="messages"`` through a thin chat-model callback
run (:class:`~latent_graph.nodes.streaming.ChatRun`). Any other LangChain chat
model works too, but only on text input (it cannot read a latent handle).
"""

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from latent_graph.engine import Decoded, DecodeOptions, LatentHandle, LatentModel
from latent_graph.errors import ModelMismatchError
from latent_graph.nodes.base import AgentNode, compose_prompt
from latent_graph.nodes.model_kind import model_name
from latent_graph.nodes.streaming import ChatRun
from latent_graph.state.access import reply, values_of
from latent_graph.state.branches import nested
from latent_graph.state.schema import Message, new_message, questions_of, unread
from latent_graph.state.threads import thread_mode
from latent_graph.state.trace import NodeRecord, Sends

HANDOFF = "Write a short message that passes your work so far on to the next agent."
"""What the sender's model is asked when a latent edge enters a foreign chat model."""


@dataclass
class _Decoding(AgentNode):
    """A node that decodes, with the engine's :class:`DecodeOptions` (budget, sampler, seed; their one owner)."""

    decoding: DecodeOptions = field(default_factory=DecodeOptions)
    handoff_model: LatentModel | None = None
    """On a foreign chat model: the latent model that decodes an incoming latent handle into a message."""

    def _engine_decode(
        self, before: LatentHandle | None, prompts: list[str], config: Any
    ) -> tuple[Decoded, list[str | None]]:
        run = ChatRun(config, self.name, prompts, self.model.name)
        try:
            result = self.model.decode(
                before,
                prompts,
                agent=self.name,
                memory=self.memory,
                on_token=run.on_token if run.wants_tokens else None,
                **self.decoding.as_dict(),
            )
        except BaseException as exc:
            run.fail(exc)
            raise
        run.finish(result.texts, result.prompt_tokens, result.new_tokens)
        return result, [run.message_id(i) for i in range(len(prompts))]

    def decode(
        self, state: dict[str, Any], config: Any
    ) -> tuple[list[str], NodeRecord, LatentHandle | None, list[Message], list[str | None]]:
        """Decode one text per question.

        Returns:
            (texts, trace record, decoded handle or None, handoff messages: the message a latent
            sender's model decoded when its edge entered this foreign chat model, if any; the id of each
            row's reply, shared by its streamed tokens).
        """
        start = time.time()
        before = self.incoming(state, config)
        if not self.foreign:
            prompts = self.prompts(state)
            d, ids = self._engine_decode(before, prompts, config)
            rec = self.trace_record(
                config,
                start=start,
                before=before,
                after=d.handle,
                prompt_tokens=d.prompt_tokens,
                latent_steps=0,
                generated_tokens=d.new_tokens,
                steps=[],
                prompts=prompts,
            )
            return d.texts, rec, d.handle, [], ids
        converted, handoffs = None, []
        if before is not None:
            handoff, converted = self.handoff(state, before, config)
            handoffs = [handoff]
            state = {**state, "inbox": [*(state.get("inbox") or []), handoff]}
        prompts = self.prompts(state)
        replies = self.model.batch([[HumanMessage(p)] for p in prompts], config)
        texts = [str(r.content) for r in replies]
        usage = [getattr(r, "usage_metadata", None) or {} for r in replies]
        rec = self.trace_record(
            config,
            start=start,
            before=before,
            after=None,
            prompt_tokens=[int(u.get("input_tokens", 0)) for u in usage],
            latent_steps=0,
            generated_tokens=[int(u.get("output_tokens", 0)) for u in usage],
            steps=[],
            prompts=prompts,
        )
        if converted:
            rec["converted"] = converted
        return texts, rec, None, handoffs, [r.id for r in replies]

    def handoff(self, state: dict[str, Any], handle: LatentHandle, config: Any) -> tuple[Message, str]:
        """Turn a latent edge into a text edge: the handle's own model decodes the sender's message."""
        sender = handle.segments[-1].agent if handle.segments else "sender"
        engine = self.handoff_model
        if engine is None or engine.fingerprint != handle.fingerprint:
            found = "none" if engine is None else engine.name
            raise ModelMismatchError(
                found,
                handle.fingerprint.name,
                what=f"latent handle reaching text agent {self.name!r} on {model_name(self.model)} "
                f"(pass handoff_model=<the model that built it> to decode it into a message)",
            )
        qs = questions_of(state, self.max_questions)
        prompts = [compose_prompt(HANDOFF, q, None, [], i) for i, q in enumerate(qs)]
        d = engine.decode(handle, prompts, agent=f"{sender}:handoff", memory=self.memory, **self.decoding.as_dict())
        why = f"latent->text: {sender}'s handle decoded by {engine.name} for {model_name(self.model)}"
        return new_message(sender, d.texts), why


@dataclass
class TextAgentNode(_Decoding):
    """Decodes a message and passes it on as text (a TextMAS agent)."""

    sends: ClassVar[Sends] = "text"

    def __call__(self, state: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        config = self.begin(config)
        state = values_of(state)
        texts, rec, _, handoffs, ids = self.decode(state, config)
        msg = new_message(self.name, texts)
        update = self.consumed(state)
        update["transcript"] = [*handoffs, msg]
        update["inbox"] = [msg]
        if not self.branch:
            update["handle"] = None  # a text edge carries text only
        update["trace"] = [self.in_turn(rec, state)]
        return {**update, **reply(state, self.name, texts, ids)}


@dataclass
class JudgerNode(_Decoding):
    """Decodes the final answer from the incoming handle (+ any text messages).

    Inside a bigger graph (a team used as a subgraph, or invoked by a parent graph's node) the judger hands
    its answer on: the answer goes to ``inbox`` (the next agent reads it as a message) and the decoded
    handle (cache + answer tokens) to ``handle`` (the next latent reader continues after the answer).

    Attributes:
        keep_handle: Also write the decoded handle to ``handle`` when the graph runs on its own
            (always done when the thread continues as a conversation).
    """

    keep_handle: bool = False
    sends: ClassVar[Sends] = "answer"

    def __call__(self, state: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        config = self.begin(config)
        state = values_of(state)
        texts, rec, decoded, handoffs, ids = self.decode(state, config)
        msg = new_message(self.name, texts)
        update = self.consumed(state)
        update["answers"] = texts
        update["transcript"] = [*handoffs, msg]
        update["trace"] = [self.in_turn(rec, state)]
        update["turn"] = 1  # the answer ends this run's turn (see latent_graph.state.threads)
        hand_on = nested(config)
        if hand_on:  # what it read stays read (a list update marks by flag), its answer is the next reader's
            update["inbox"] = [*({**m, "read": True} for m in unread(state.get("inbox"))), msg]
        if (self.keep_handle or hand_on or thread_mode(config) == "continue") and decoded is not None:
            update.update(self.output(decoded, None, state))
        return {**update, **reply(state, self.name, texts, ids)}
