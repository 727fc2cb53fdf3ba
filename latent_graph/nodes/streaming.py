"""What a node sends to LangGraph's streams while it runs: custom events and the judger's tokens.

- ``stream_mode="custom"`` (and ``astream_events``): :func:`emitter` sends each event dict
  (a latent step: the CLI's progress line) both to LangGraph's custom stream writer and, as a
  LangChain custom event named by its ``event`` key, to ``astream_events``
  (``on_custom_event``). ``get_stream_writer()`` raises outside a LangGraph run; :func:`writer`
  returns a no-op instead, so nodes work as plain callables too.
- ``stream_mode="messages"``: LangGraph only streams tokens of *chat-model runs*: its handler
  listens for ``on_chat_model_start`` / ``on_llm_new_token`` / ``on_llm_end`` callbacks. A node
  that decodes through the engine directly opens such a run itself with :class:`ChatRun` (one
  run per batch row, under the node's callback config) and forwards the engine's tokens to it.
  Outside a graph run the callbacks are simply not listened to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManager
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables import RunnableConfig, ensure_config

from latent_graph.engine import TokenChunk


def writer() -> Callable[[Any], None]:
    """LangGraph's custom stream writer, or a no-op outside a graph run."""
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except Exception:  # RuntimeError/KeyError outside a runnable context
        return lambda _chunk: None


def emitter(config: Mapping[str, Any] | None) -> Callable[[dict[str, Any]], None]:
    """Emit an event dict to the custom stream and to ``astream_events`` (no-ops where nobody listens)."""
    stream = writer()
    has_run = bool(config and config.get("callbacks"))

    def emit(event: dict[str, Any]) -> None:
        stream(event)
        if has_run:
            try:
                dispatch_custom_event(str(event.get("event", "latent_graph")), event, config=config)  # type: ignore[arg-type]
            except RuntimeError:  # no parent run (a node called by hand with a bare config)
                pass

    return emit


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
            {"name": name},
            [[HumanMessage(p)] for p in prompts],
            name=name,
            invocation_params={"model": model_name},
            run_name=name,
        )

    def message_id(self, row: int) -> str:
        """The id of row ``row``'s message: its tokens and its full reply share it, and so does the reply a node
        appends to ``messages`` (LangGraph's ``messages`` stream then sends it once)."""
        return f"run-{self.runs[row].run_id}"

    def on_token(self, chunk: TokenChunk) -> None:
        """Forward one engine token to its row's run (an ``engine.decode`` ``on_token`` callback)."""
        run = self.runs[chunk.row]
        message = AIMessageChunk(content=chunk.text, id=self.message_id(chunk.row))
        run.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=message))

    def finish(self, texts: Sequence[str], prompt_tokens: Sequence[int], new_tokens: Sequence[int]) -> None:
        """Close every row's run with its full message and token usage."""
        for row, (run, text, n_in, n_out) in enumerate(zip(self.runs, texts, prompt_tokens, new_tokens)):
            usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
            message = AIMessage(content=text, id=self.message_id(row), usage_metadata=usage)  # type: ignore[arg-type]
            run.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))

    def fail(self, error: BaseException) -> None:
        """Close every row's run with an error."""
        for run in self.runs:
            run.on_llm_error(error)
