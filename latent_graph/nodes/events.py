"""Streaming helpers: custom events from inside nodes that never break outside a graph run.

``get_stream_writer()`` raises outside a LangGraph run; :func:`writer` returns a
no-op instead, so nodes work as plain callables too. :func:`emitter` sends each
event both to ``stream_mode="custom"`` and, as a LangChain custom event named by
its ``event`` key, to ``astream_events`` (``on_custom_event``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.callbacks.manager import dispatch_custom_event


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
