"""Streaming helpers: custom events from inside nodes that never break outside a graph run.

``get_stream_writer()`` raises outside a LangGraph run; :func:`writer` returns a
no-op instead, so nodes work as plain callables too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def writer() -> Callable[[Any], None]:
    """LangGraph's custom stream writer, or a no-op outside a graph run."""
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except Exception:  # RuntimeError/KeyError outside a runnable context
        return lambda _chunk: None
