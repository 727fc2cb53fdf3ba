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

How a node run meets LangGraph's runtime:

- :func:`ambient`: a node called by hand from inside another node (``def planner(state, runtime): return
  NODE(state)``, the ``Runtime``/``context_schema`` idiom) gets no config; it runs under the one LangGraph set for
  the calling node (``langgraph.config.get_config()``), so its events, tokens, branch keys and thread policy
  reach the same streams as when LangGraph calls it directly.
- :func:`in_worker`: a node's ``ainvoke``. The engine's work runs in a worker thread; when the awaiting task is
  cancelled (``add_node(..., timeout=...)`` raises ``NodeTimeoutError`` and cancels it) the worker is told to stop
  and :func:`check_stop`, called at every latent step and decoded token, raises :class:`RunStoppedError` there.
  LangGraph does not wait for a cancelled node, so a run on the same model first waits (:func:`settle`) until
  every stopping run on that model has ended: the model is never shared with a run that is winding down.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.callbacks import CallbackManager
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables import RunnableConfig, ensure_config

from latent_graph.engine import TokenChunk
from latent_graph.errors import RunStoppedError


def writer() -> Callable[[Any], None]:
    """LangGraph's custom stream writer, or a no-op outside a graph run."""
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except Exception:  # RuntimeError/KeyError outside a runnable context
        return lambda _chunk: None


def emitter(config: Mapping[str, Any] | None) -> Callable[[dict[str, Any]], None]:
    """Emit an event dict to the custom stream and to ``astream_events`` (no-ops where nobody listens).

    Without a config (a node called by hand inside another node) it emits under the calling node's
    (:func:`~latent_graph.nodes.streaming.ambient`).
    """
    config = ambient(config)  # type: ignore[arg-type]
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
        cfg = ensure_config(ambient(config))
        manager = CallbackManager.configure(
            cfg.get("callbacks"), inheritable_tags=cfg.get("tags"), inheritable_metadata=cfg.get("metadata")
        )
        self.listening = bool(manager.handlers)  # else per-token callbacks would reach nobody: skip them
        self.wants_tokens = self.listening or cancellable()  # a cancellable run stops at a token boundary
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
        """Forward one engine token to its row's run (an ``engine.decode`` ``on_token`` callback); a cancelled
        async run stops here (:func:`~latent_graph.nodes.streaming.check_stop`)."""
        check_stop()
        if not self.listening:
            return
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


# ---------------------------------------------------------------- runtime
T = TypeVar("T")

_STOP: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("latent_graph_stop", default=None)
_STOPPING: dict[int, set[threading.Event]] = {}  # id(model) -> runs told to stop that have not ended yet
_GUARD = threading.Lock()


def ambient(config: RunnableConfig | None) -> RunnableConfig | None:
    """``config``, or (None given) the config LangGraph runs the calling node under, or None outside a run."""
    if config is not None:
        return config
    try:
        from langgraph.config import get_config

        return get_config()
    except RuntimeError:  # outside a runnable context: a plain call
        return None


def cancellable() -> bool:
    """Whether this thread works for an async run that can be cancelled (it should check at every boundary)."""
    return _STOP.get() is not None


def check_stop() -> None:
    """Raise :class:`RunStoppedError` if the async run this thread works for was cancelled (a step/token boundary)."""
    stop = _STOP.get()
    if stop is not None and stop.is_set():
        raise RunStoppedError("the async node run was cancelled; it stopped at a latent step or token boundary")


def settle(model: Any) -> None:
    """Wait until every cancelled run on ``model`` has stopped (returns at once when none is stopping)."""
    with _GUARD:
        pending = list(_STOPPING.get(id(model), ()))
    for done in pending:
        done.wait()


async def in_worker(model: Any, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (this context copied, so LangGraph's config and stream writer work there);
    cancelled, it tells the worker to stop at its next boundary, marks ``model`` busy until it has, and re-raises."""
    stop, done = threading.Event(), threading.Event()
    context = contextvars.copy_context()
    context.run(_STOP.set, stop)

    def work() -> T:
        try:
            return context.run(fn, *args)
        finally:
            with _GUARD:
                done.set()
                stopping = _STOPPING.get(id(model))
                if stopping is not None:
                    stopping.discard(done)
                    if not stopping:
                        del _STOPPING[id(model)]

    future = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        with _GUARD:
            if not done.is_set():
                _STOPPING.setdefault(id(model), set()).add(done)
        future.add_done_callback(_drain)
        raise


def _drain(future: asyncio.Future[Any]) -> None:
    """Collect a stopped worker's outcome (its RunStoppedError or result) so asyncio does not report it."""
    if not future.cancelled():
        future.exception()
