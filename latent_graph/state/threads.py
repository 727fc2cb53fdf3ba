"""What a reused ``thread_id`` means for the latent cache: a fresh cache per run, or a bounded conversation.

With a checkpointer, a second ``graph.invoke(..., {"configurable": {"thread_id": t}})``
starts from the thread's saved state, which still holds the last ``handle``.
Reading it silently would make every run extend the previous one's cache until
the context window overflows. So a run is a *turn*: answer nodes (the judger)
end it by incrementing ``turn``, every handle is stamped with the turn that wrote
it (``handle_turn``), and a handle from an earlier turn is carried over by the
thread policy, chosen per invoke in the config's ``configurable``:

- ``latent_thread="fresh"`` (default): each run starts a fresh cache (the transcript
  in ``transcript`` still accumulates, as in any LangGraph thread; ``trace`` holds the
  current turn's records, stamped with ``turn``, so checkpoints grow linearly with the
  runs; earlier turns' records stay in the thread's checkpoint history);
- ``latent_thread="continue"``: a multi-turn conversation. The first reader of a turn
  continues on top of the previous turn's final handle (the judger's decoded handle,
  so its answer is in the cache), bounded by ``latent_window`` cache columns (default:
  half the model's context): the oldest segments are dropped until the rest fits.
  Kept columns keep their positions (nothing is re-rotated, so RoPE stays consistent),
  which means positions still advance; the window is also the room reserved for the next
  turn (set it to at least one turn's columns): when ``window`` more positions no longer fit
  after the highest kept one, the conversation cache restarts fresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from latent_graph.engine import LatentHandle
from latent_graph.errors import InvalidArgumentError, InvalidConfigError

THREAD_MODES = ("fresh", "continue")
MODE_KEY = "latent_thread"
WINDOW_KEY = "latent_window"


ID_FIELDS = {"thread_id": 512, "checkpoint_id": 512, "checkpoint_ns": 4096}
"""The config fields every saver keys its rows by, and the most characters each may have."""


def check_config(config: Any) -> None:
    """Refuse a run config whose ids no saver can store, before any saver sees them.

    ``configurable.thread_id``/``checkpoint_id``/``checkpoint_ns`` must each be a str (an int or UUID, which
    LangGraph's savers store as text, passes too) of at most :data:`ID_FIELDS` characters, with no NUL and no
    lone surrogate: otherwise PostgreSQL answers a raw ``DataError``/``ProgramLimitExceeded`` and SQLite stores
    a megabyte key.

    Raises:
        InvalidConfigError: What is wrong and with which field.
    """
    if config is None:
        return
    conf = config.get("configurable") if isinstance(config, Mapping) else config
    if conf is None:
        return
    if not isinstance(conf, Mapping):
        raise InvalidConfigError(f"a run config is a dict with a 'configurable' dict, got {type(conf).__name__}")
    for field, cap in ID_FIELDS.items():
        value = conf.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
            raise InvalidConfigError(f"configurable {field!r} must be a str, got {type(value).__name__}")
        text = str(value)
        if len(text) > cap:
            raise InvalidConfigError(f"configurable {field!r} has {len(text):,} characters; at most {cap} are stored")
        try:
            text.encode("utf-8")  # a lone surrogate has no UTF-8 form
        except UnicodeEncodeError:
            text = "\x00"
        if "\x00" in text:
            raise InvalidConfigError(f"configurable {field!r} holds a NUL or a lone surrogate: {str(value)[:40]!r}")


def thread_mode(config: Mapping[str, Any] | None) -> str:
    """The thread policy of this run (``configurable.latent_thread``; default "fresh")."""
    mode = ((config or {}).get("configurable") or {}).get(MODE_KEY, "fresh")
    if mode not in THREAD_MODES:
        raise InvalidArgumentError(f"configurable {MODE_KEY!r} must be one of {THREAD_MODES}, got {mode!r}")
    return str(mode)


def window_of(config: Mapping[str, Any] | None, max_context: int) -> int:
    """Cache columns a continued conversation keeps (``configurable.latent_window``)."""
    window = ((config or {}).get("configurable") or {}).get(WINDOW_KEY) or max_context // 2
    if not isinstance(window, int) or window <= 0:
        raise InvalidArgumentError(f"configurable {WINDOW_KEY!r} must be a positive int, got {window!r}")
    return min(window, max_context)


def is_stale(state: Mapping[str, Any]) -> bool:
    """Whether ``state['handle']`` was written in an earlier turn of this thread."""
    return state.get("handle") is not None and int(state.get("handle_turn") or 0) != int(state.get("turn") or 0)


def windowed(handle: LatentHandle, window: int, max_context: int) -> LatentHandle | None:
    """The newest whole segments of ``handle`` that fit in ``window`` columns; None when positions run out."""
    keep, total = [], 0
    for seg in reversed(handle.segments):
        if total + seg.length > window:
            break
        keep.insert(0, seg)
        total += seg.length
    if not keep or int(handle.next_positions().max()) + window > max_context:
        return None
    return handle if len(keep) == len(handle.segments) else handle.select_columns(keep)


def carried(state: Mapping[str, Any], config: Mapping[str, Any] | None, max_context: int) -> LatentHandle | None:
    """The handle a node reads from ``state`` under the thread policy."""
    handle = state.get("handle")
    if handle is None or not is_stale(state):
        return handle
    if thread_mode(config) == "fresh":
        return None
    return windowed(handle, window_of(config, max_context), max_context)
