"""The llama.cpp engine's feed: a call's input put on top of a handle in a fresh :class:`.session.Session`.

The same checks in the same order as the transformers engine's :mod:`latent_graph.engine.forward.feed` (whose
``EngineLimits`` checks it calls), then one llama.cpp batch of every row's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from latent_graph.engine.forward.feed import WHAT, Fed, prompt_turn
from latent_graph.engine.handle import LatentHandle, SegmentKind
from latent_graph.engine.llamacpp.session import Session
from latent_graph.engine.options import MemoryPolicy, check_finite


def feed(
    model: Any,
    handle: LatentHandle | None,
    rows: list[list[int]],
    *,
    agent: str,
    kind: SegmentKind = "prompt",
    reserve: int = 0,
    open_turn: bool | None = None,
    logits: bool = False,
) -> Fed:
    """Put token ``rows`` on top of ``handle`` as one ``kind`` segment of ``agent`` in a new :class:`Session`
    (checks: the fingerprint, ``EngineLimits``, the context), as :func:`latent_graph.engine.forward.feed.feed`."""
    if handle is not None and handle.fingerprint is not model.fingerprint:
        model.fingerprint.check(handle.fingerprint)
    session = Session(model, handle, len(rows), logits)
    session.check_room([len(r) for r in rows], reserve, agent, WHAT.get(kind, kind))
    if open_turn is not None:
        session.meta["open_turn"] = "1" if open_turn else "0"
    hidden = session.feed_tokens(rows, agent, kind)
    check_finite(hidden, f"agent {agent!r}: hidden state after its {WHAT.get(kind, kind)}")
    return Fed(cast(Any, session), hidden, [len(r) for r in rows])


def feed_prompt(
    model: Any,
    handle: LatentHandle | None,
    prompt: str | Sequence[str],
    agent: str,
    system: str | None,
    memory: MemoryPolicy | str,
    reserve: int,
    generation: bool = True,
    logits: bool = False,
) -> Fed:
    """As :func:`latent_graph.engine.forward.feed.feed_prompt`: the agent's turn on what ``memory`` reads."""
    if handle is not None and handle.fingerprint is not model.fingerprint:
        model.fingerprint.check(handle.fingerprint)  # before its memory view, as the session needs its layout
    handle, rows = prompt_turn(model, handle, prompt, system, memory, generation)
    return feed(model, handle, rows, agent=agent, reserve=reserve, open_turn=generation, logits=logits)
