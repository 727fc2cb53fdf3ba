"""Judger tokens in LangGraph's ``stream_mode="messages"`` without going through a chat model.

LangGraph only streams tokens of *chat-model runs*: its handler listens for
``on_chat_model_start`` / ``on_llm_new_token`` / ``on_llm_end`` callbacks. A node
that decodes through the engine directly opens such a run itself with
:class:`ChatRun` (one run per batch row, under the node's callback config) and
forwards the engine's tokens to it. Outside a graph run the callbacks are simply
not listened to.
"""

from __future__ import annotations

from collections.abc import Sequence
from langchain_core.callbacks import CallbackManager
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables import RunnableConfig, ensure_config

from latent_graph.engine import TokenChunk


class ChatRun:
    """A chat-model callback run per batch row, fed by engine tokens.

    Args:
        config: The node's runnable config (carries LangGraph's stream handler).
        name: Run name (the node name).
        prompts: The prompt of each row (recorded as the run's input messages).
        model_name: Reported as the run's model.
    """

    def __init__(self, config: RunnableConfig | None, name: str, prompts: Sequence[str], model_name: str) -> None:
        cfg = ensure_config(config)
        manager = CallbackManager.configure(
            cfg.get("callbacks"), inheritable_tags=cfg.get("tags"), inheritable_metadata=cfg.get("metadata")
        )
        self.listening = bool(manager.handlers)  # else per-token callbacks would reach nobody: skip them
        self.runs = manager.on_chat_model_start(
            {"name": name}, [[HumanMessage(p)] for p in prompts], name=name,
            invocation_params={"model": model_name}, run_name=name,
        )

    def on_token(self, chunk: TokenChunk) -> None:
        """Forward one engine token to its row's run (an ``engine.decode`` ``on_token`` callback)."""
        run = self.runs[chunk.row]
        message = AIMessageChunk(content=chunk.text, id=f"run-{run.run_id}")
        run.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=message))

    def finish(self, texts: Sequence[str], prompt_tokens: Sequence[int], new_tokens: Sequence[int]) -> None:
        """Close every row's run with its full message and token usage."""
        for run, text, n_in, n_out in zip(self.runs, texts, prompt_tokens, new_tokens):
            usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
            message = AIMessage(content=text, id=f"run-{run.run_id}", usage_metadata=usage)  # type: ignore[arg-type]
            run.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))

    def fail(self, error: BaseException) -> None:
        """Close every row's run with an error."""
        for run in self.runs:
            run.on_llm_error(error)

