"""The one feed: input put on top of a cache (prompt turns, whole chats, tool results, injected embeddings).

Every engine call that adds input to a handle goes through :func:`feed`, which

0. checks the handle: the same weights (fingerprint), each layer's K/V where that layer runs, the model's dtype;
1. left-pads the token rows (or takes ready-made input embeddings), starting a fresh prompt
   from a stored shared prefix when the model's :class:`~latent_graph.engine.kv.SharedPrefixes` are on;
2. checks the context: the fed tokens plus ``reserve`` positions must fit in the model's window,
   else :class:`ContextOverflowError`, before anything is allocated (the one place this is checked);
3. builds the call's :class:`~latent_graph.engine.forward.work.Work` with ``grow`` cache columns
   preallocated for what the call appends afterwards, clamped to the positions the window has left
   (the one rule for the reserve), after checking rows x columns against the model's
   :class:`~latent_graph.engine.options.EngineLimits` (``max_cache_bytes``);
4. forwards, records the segment and counts the fed tokens.

:func:`feed_prompt` (an agent's chat-formatted prompt turn), :func:`feed_chats` (whole chats on a fresh cache)
and :func:`feed_tools` (a tool turn) check their rows and texts against the model's ``EngineLimits``
(``max_rows``, ``max_text_chars``) before rendering or tokenizing anything, then hand their rows to :func:`feed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from latent_graph.engine.forward.work import Work
from latent_graph.engine.handle import LatentHandle, SegmentKind
from latent_graph.engine.load.devices import check_devices
from latent_graph.engine.options import MemoryPolicy, check_finite, check_memory, limits_of
from latent_graph.engine.prompt.chat import ChatTurn, chat_rows, tool_rows
from latent_graph.engine.prompt.turn import left_pad, pad_id, prompt_list, prompt_rows
from latent_graph.errors import ContextOverflowError, DTypeMismatchError, InvalidArgumentError

WHAT: dict[str, str] = {"prompt": "prompt", "tool": "tool results", "latent": "injected embeddings"}
"""How the context-overflow error names what a segment kind feeds."""


@dataclass
class Fed:
    """What :func:`feed` leaves for the rest of the call.

    Attributes:
        work: The call's state, the input appended (latent steps or decoding continue on it).
        hidden: (B, H) last hidden state of every row (a row fed nothing keeps the handle's).
        tokens: Real tokens fed per row (a shared prefix included).
    """

    work: Work
    hidden: torch.Tensor
    tokens: list[int]


def check_handle(model: Any, handle: LatentHandle) -> None:
    """A named error unless ``model`` can extend ``handle`` (same weights, each layer's K/V where it runs, dtype)."""
    if handle.fingerprint is not model.fingerprint:  # a handle this model built carries this very object
        model.fingerprint.check(handle.fingerprint)
    if (handle.device, handle.layer_devices) != (model.device, model.layer_devices):  # else nothing to check
        check_devices(handle, model.device, model.layer_devices, model.name)
    if handle.num_layers and handle.dtype != model.dtype:
        raise DTypeMismatchError(
            f"handle cache dtype {handle.dtype} differs from model dtype {model.dtype}; use handle.to(dtype={model.dtype})"
        )


def check_context(model: Any, need: int, reserve: int, agent: str, what: str) -> None:
    """The context check of every engine: :class:`ContextOverflowError` when the longest row's cache + input +
    ``reserve`` positions (``need``) exceed ``model.max_context``."""
    if need > model.max_context:
        raise ContextOverflowError(
            f"agent {agent!r}: cache + {what} + {reserve} reserved positions = {need} "
            f"exceeds the context window of {model.name!r} ({model.max_context})"
        )


def column_bytes(model: Any) -> int:
    """K/V bytes one cache column takes across all layers (from the model's fingerprint; hidden size if unknown)."""
    itemsize = torch.empty((), dtype=model.dtype).element_size()
    shape = getattr(model.fingerprint, "kv_shape", None)
    if shape is None:
        return 2 * itemsize * model.hidden_size * max(1, len(model.layer_devices))
    layers, heads, dim = shape
    return 2 * itemsize * layers * heads * dim


@torch.no_grad()
def feed(
    model: Any,
    handle: LatentHandle | None,
    rows: Sequence[Sequence[int]] | torch.Tensor,
    *,
    agent: str,
    kind: SegmentKind = "prompt",
    reserve: int = 0,
    grow: int | None = None,
    open_turn: bool | None = None,
    share_prefix: bool = False,
) -> Fed:
    """Put ``rows`` on top of ``handle`` (None: a fresh cache) as one ``kind`` segment of ``agent``.

    Args:
        model: The engine (its tokenizer, decoder, context window, prefix cache).
        handle: The cache to extend (:func:`check_handle`); never modified.
        rows: Token ids per batch row (a row may be empty: it gets only padding and keeps the handle's
            last hidden state), or input embeddings (B, n, H) already on the model's device and dtype.
        agent: Name in the segment table and in errors.
        kind: The segment's kind; ``"latent"`` input is not counted as prompt tokens.
        reserve: Positions that must still fit in the context after the input.
        grow: Cache columns preallocated for what the call appends next (default ``reserve``), clamped
            to the positions left in the context window.
        open_turn: Record whether the cache now ends inside an open assistant turn (None: unchanged).
        share_prefix: A fresh prompt may start from the model's shared prefixes.
    """
    limits = limits_of(model)
    limits.check_rows(len(rows), f"rows of {WHAT.get(kind, kind)}")
    if handle is not None:
        check_handle(model, handle)
    embeds = rows if isinstance(rows, torch.Tensor) else None
    shared = 0
    if embeds is not None:
        batch, n = int(embeds.shape[0]), int(embeds.shape[1])
        ids, mask = None, torch.ones((batch, n), dtype=torch.long, device=model.device)  # (B, n)
        tokens = [n] * batch
    else:
        lists = [list(r) for r in rows]
        if handle is None and share_prefix and model.prefixes.max_bytes > 0:
            handle, lists, shared = model.prefixes.split(model, lists)
        ids, mask = left_pad(lists, pad_id(model.tokenizer), model.device)  # (B, n)
        batch, n = len(lists), int(ids.shape[1])
        tokens = [len(r) + shared for r in lists]
    start = handle.next_positions() if handle is not None else torch.zeros(batch, dtype=torch.long)  # (B,)
    need = int((start.to(mask.device) + mask.sum(dim=1)).max()) + reserve
    check_context(model, need, reserve, agent, WHAT.get(kind, kind))  # before any buffer is reserved
    room = model.max_context - need + reserve  # positions left after the input: no call can append more
    extra = n + min(reserve if grow is None else grow, room)
    held = handle.seq_len if handle is not None else 0
    limits.check_reserve(batch, held + extra, column_bytes(model), f"agent {agent!r}")
    work = Work(handle, batch, model.device, model.fingerprint, extra, model.batch_rows)
    if open_turn is not None:
        work.meta["open_turn"] = "1" if open_turn else "0"
    full = embeds is not None or all(tokens)  # every row's last column is real
    if not full and (handle is None or handle.last_hidden is None):
        raise InvalidArgumentError(f"agent {agent!r}: a row with nothing to feed needs the handle's last hidden state")
    hidden = None if full else handle.last_hidden.to(model.device)  # type: ignore[union-attr]
    if n:
        new = work.forward(model.decoder, mask, model.layer, input_ids=ids, inputs_embeds=embeds)[:, -1]  # (B, H)
        # left-padded rows end in their last real column; a row fed nothing keeps its hidden state
        hidden = (
            new
            if hidden is None
            else torch.where(mask[:, -1].bool()[:, None].to(new.device), new, hidden.to(new.device))
        )
        work.add_segment(agent, kind, n + shared)
        check_finite(hidden, f"agent {agent!r}: hidden state after its {WHAT.get(kind, kind)}")
    if kind != "latent":
        work.prompt_tokens += sum(tokens)
    assert hidden is not None
    return Fed(work, hidden, tokens)


def feed_prompt(
    model: Any,
    handle: LatentHandle | None,
    prompt: str | Sequence[str],
    agent: str,
    system: str | None,
    memory: MemoryPolicy | str,
    reserve: int,
    generation: bool = True,
    grow: int | None = None,
) -> Fed:
    """Feed the agent's chat-formatted prompt (one turn per row) on top of what ``memory`` reads of ``handle``.

    An agent after an open assistant turn closes it first; ``generation`` opens a new one after the prompt.
    """
    handle, rows = prompt_turn(model, handle, prompt, system, memory, generation)
    return feed(model, handle, rows, agent=agent, reserve=reserve, grow=grow, open_turn=generation, share_prefix=True)


def prompt_turn(
    model: Any,
    handle: LatentHandle | None,
    prompt: str | Sequence[str],
    system: str | None,
    memory: MemoryPolicy | str,
    generation: bool,
) -> tuple[LatentHandle | None, list[list[int]]]:
    """What every engine's prompt feed puts on its cache: ``memory``'s view of ``handle`` (the caller's feed checks
    it fits the model) and each row's chat turn as token ids, after the prompts passed ``EngineLimits``."""
    check_memory(memory)
    prompts = prompt_list(prompt, handle.batch_size if handle is not None else None)
    check_prompts(model, prompts, system)
    if handle is not None:
        handle = handle.with_memory(memory)
    first = handle is None or handle.seq_len == 0
    open_turn = handle is not None and handle.meta.get("open_turn", "1") == "1"
    rows = prompt_rows(model.tokenizer, prompts, system, first, after_open_turn=open_turn, generation=generation)
    return handle, rows


def feed_tools(
    model: Any, handle: LatentHandle, results: Sequence[Sequence[str]], agent: str, reserve: int, grow: int
) -> Fed:
    """Feed each row's tool turn (``results[b]``: its result texts) after the call ``handle`` ends with."""
    check_tool_results(model, results)
    rows = tool_rows(model.tokenizer, handle, results)
    return feed(model, handle, rows, agent=agent, kind="tool", reserve=reserve, grow=grow, open_turn=True)


def feed_chats(
    model: Any,
    chats: Sequence[Sequence[ChatTurn]],
    tools: list[dict[str, Any]] | None,
    agent: str,
    reserve: int,
    grow: int,
) -> Fed:
    """Feed one whole chat per row (rendered by the chat template with ``tools``) on a fresh cache."""
    check_chats(model, chats)
    rows = chat_rows(model.tokenizer, chats, tools)
    return feed(model, None, rows, agent=agent, reserve=reserve, grow=grow, open_turn=True)


# the EngineLimits checks of each kind of input, before it is rendered or tokenized (every engine runs these)
def check_prompts(model: Any, prompts: Sequence[str], system: str | None) -> None:
    """``max_rows`` and ``max_text_chars`` of one prompt per row (and the system message)."""
    limits = limits_of(model)
    limits.check_rows(len(prompts), "prompts")
    limits.check_texts([*prompts, system], "prompt", model.max_context)


def check_tool_results(model: Any, results: Any) -> None:
    """``max_rows`` and ``max_text_chars`` of rows of tool result texts."""
    limits = limits_of(model)
    if isinstance(results, (list, tuple)):
        limits.check_rows(len(results), "rows of tool results")
        texts = (t for r in results if isinstance(r, (list, tuple)) for t in r)
        limits.check_texts(texts, "tool result", model.max_context)


def check_chats(model: Any, chats: Any) -> None:
    """``max_rows`` and ``max_text_chars`` of whole chats (message contents and tool calls' arguments)."""
    limits = limits_of(model)
    if isinstance(chats, (list, tuple)):
        limits.check_rows(len(chats), "chats")
        turns = [t for c in chats if isinstance(c, (list, tuple)) for t in c if isinstance(t, dict)]
        limits.check_texts((t.get("content") for t in turns), "chat message", model.max_context)
        calls = [c for t in turns for c in (t.get("tool_calls") or []) if isinstance(c, dict)]
        limits.check_texts((str(c.get("arguments")) for c in calls), "tool call's arguments", model.max_context)
