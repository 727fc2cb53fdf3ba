"""Tool turns inside an agent's cache: a tool's result enters as a chat-template turn, then the agent goes on.

A latent agent that uses tools (``latent_graph/nodes/tools.py``) decodes a call as text in its
open assistant turn, under :func:`~latent_graph.engine.prompt.tools.tool_call_constraint`; the node
runs the call and hands the results back here as plain text, one list of results per batch row.
They are prefilled on top of the handle as a ``tool`` segment of the agent: the assistant turn is
closed, the results follow as the template's own ``tool`` turns (a template with tool support, e.g.
Qwen's) or as one user turn in ``<tool_response>`` tags (one without, e.g. SmolLM2's: the same
format :mod:`~latent_graph.engine.prompt.chat` writes for whole chats), and a new assistant turn
opens. Result text is data: tokenized literally, so a ``<|im_end|>`` in a tool's output never
becomes a control token. Then the agent decodes its next call (:func:`decode_after_tools`) or takes
its latent steps (:func:`think_after_tools`). A row with no results gets no columns: its turn
stays open and it continues from its own last hidden state.

Tools themselves never run here (the engine imports no LangChain): only their text arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latent_graph.engine.decode import loop as decoding
from latent_graph.engine.forward.work import Work
from latent_graph.engine.prompt.chat import render_tool_turn
from latent_graph.engine.prompt.turn import encode_turn, left_pad, pad_id
from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.options import DecodeOptions, check_steps
from latent_graph.engine.protocols import StepCallback
from latent_graph.engine.results import Decoded
from latent_graph.errors import BatchSizeMismatchError, ContextOverflowError, InvalidArgumentError

def _prefill(model: Any, handle: LatentHandle, rows: Sequence[Sequence[str]], agent: str, reserve: int,
             grow: int) -> tuple[Work, torch.Tensor, list[int]]:
    """Feed each row's tool turn on top of ``handle``: (work, last hidden state (B, H), tool-turn tokens per row).

    ``reserve`` positions must fit in the context after the turn; ``grow`` cache columns are preallocated for
    what follows it.
    """
    if not isinstance(handle, LatentHandle) or handle.last_hidden is None:
        raise InvalidArgumentError("a tool turn follows a decoded tool call: pass the handle that decode returned")
    model.check_handle(handle)
    if handle.meta.get("open_turn", "1") != "1":
        raise InvalidArgumentError("a tool turn follows an open assistant turn (the decoded call); this handle's is closed")
    rows = [list(r) for r in rows]
    if len(rows) != handle.batch_size:
        raise BatchSizeMismatchError(f"{len(rows)} rows of tool results for a handle of batch size {handle.batch_size}")
    tok = model.tokenizer
    ids, mask = left_pad([encode_turn(tok, *render_tool_turn(tok, r)) if r else [] for r in rows], pad_id(tok),
                         model.device)  # (B, n), rows without results all padding
    n = int(ids.shape[1])
    need = int((handle.next_positions().to(mask.device) + mask.sum(dim=1)).max()) + reserve
    if need > model.max_context:
        raise ContextOverflowError(f"agent {agent!r}: cache + tool results + {reserve} reserved positions = {need} "
                                   f"exceeds the context window of {model.name!r} ({model.max_context})")
    work = Work(handle, len(rows), model.device, model.fingerprint, n + min(grow, model.max_context - need + reserve))
    h = handle.last_hidden.to(model.device)  # (B, H)
    if n:
        new = work.forward(model.decoder, mask, model.layer, input_ids=ids)[:, -1]  # (B, H)
        h = torch.where(mask[:, -1].bool()[:, None].to(new.device), new, h.to(new.device))  # left-padded: last column
        work.add_segment(agent, "tool", n)
        work.prompt_tokens += int(mask.sum())
    work.meta["open_turn"] = "1"
    return work, h, [int(x) for x in mask.sum(dim=1)]


@torch.no_grad()
def think_after_tools(model: Any, handle: LatentHandle, rows: Sequence[Sequence[str]], steps: int, *,
                      agent: str = "agent", on_step: StepCallback | None = None) -> LatentHandle:
    """Append each row's tool turn (``rows[b]``: its results; empty = none) and take ``steps`` latent steps.

    Returns a new handle; ``handle`` is left untouched.
    """
    check_steps(steps)
    work, h, _ = _prefill(model, handle, rows, agent, reserve=steps, grow=steps)
    return model._steps(work, h, steps, agent, on_step)  # the engine's one latent-step loop (model.py)


@torch.no_grad()
def decode_after_tools(model: Any, handle: LatentHandle, rows: Sequence[Sequence[str]],
                       options: DecodeOptions | None = None, *, agent: str = "agent",
                       constraint: Constraint | Sequence[Constraint | None] | None = None) -> Decoded:
    """Append each row's tool turn, then decode (e.g. the next tool call) in the new assistant turn.

    The result's ``prompt_tokens`` are the tool-turn tokens fed per row.
    ``constraint`` as in :meth:`~latent_graph.engine.model.LocalLatentModel.decode_iter` (one, or one per row).
    """
    opts = options or DecodeOptions()
    work, h, fed_rows = _prefill(model, handle, rows, agent, reserve=1, grow=opts.max_new_tokens)
    cons = per_row(constraint, len(rows))
    matchers = RowConstraints(model, cons) if any(c is not None for c in cons) else None
    *_, (out_ids, fed, h) = decoding.generate(model, work, h, opts, False, matchers)
    work.add_segment(agent, "text", fed)
    work.generated_tokens += sum(len(x) for x in out_ids)
    texts = [model.tokenizer.decode(x, skip_special_tokens=True) for x in out_ids]
    return Decoded(texts, work.freeze(h), [len(x) for x in out_ids], fed_rows)
