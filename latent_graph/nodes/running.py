"""How a node run meets LangGraph's runtime: the config it runs under, and async runs that can be cancelled.

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
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig

from latent_graph.errors import RunStoppedError

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
