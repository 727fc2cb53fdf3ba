"""The judger's generation loop on top of a prefilled :class:`~latent_graph.engine.forward.work.Work`.

Greedy or sampled next tokens from the lm_head of the *last* position only;
at most ``model.batch_rows`` rows decode at once (continuous batching, :mod:`.schedule`): a finished row
(end of sequence or budget) leaves the batch so it costs nothing more, and the next waiting row takes its
slot; the full batch is reassembled in its original row order at the end (tested equal to
running each row alone). :func:`generate_text` is the one way a decode call ends: it runs the loop
under the call's constraints, records the text segment and returns the :class:`Decoded`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.decode.sampling import sample_next
from latent_graph.engine.decode.schedule import RowSchedule
from latent_graph.engine.forward.feed import Fed
from latent_graph.engine.forward.work import Row, Work
from latent_graph.engine.options import DecodeOptions
from latent_graph.engine.protocols import DecodingModel
from latent_graph.engine.results import Decoded, TokenChunk


def generate(
    model: DecodingModel,
    work: Work,
    h: torch.Tensor,
    opts: DecodeOptions,
    stream: bool = True,
    constraints: RowConstraints | None = None,
) -> Iterator[TokenChunk | tuple[list[list[int]], int, torch.Tensor]]:
    """Yield a :class:`TokenChunk` per generated token (if ``stream``), then ``(token ids per row, columns fed, last hidden)``.

    At most ``model.batch_rows`` rows decode at once (continuous batching, :class:`RowSchedule`): a row that
    ends frees its slot and the next waiting row enters it, its cache written into the slot and its first
    column fed masked. Per token it reads the new ids once (one ``tolist``) and decodes text deltas only when
    streaming. A character whose bytes span several tokens streams whole once complete (never as U+FFFD);
    text still held back when a row ends (bytes that never completed) comes in a last chunk with
    ``token_id == -1``, so the chunks always join to the decoded text.

    Args:
        model: What decoding reads of the model (:class:`~latent_graph.engine.protocols.DecodingModel`).
        work: Prefilled state; grows by the fed tokens (rows reassembled in their order at the end).
        h: (B, H) hidden state after the prompt.
        opts: Decoding options; a row's budget is also clamped to the positions its context has left.
        constraints: Matchers of the constrained rows (None = no row is constrained): forbidden
            tokens are masked before sampling, so an allowed greedy token is still picked.
    """
    gen = torch.Generator(device=model.device).manual_seed(opts.seed) if opts.seed is not None else None
    greedy = opts.temperature == 0  # the default: the argmax itself, no sampler (``sample_next`` picks the same)
    head = model.hf_model.get_output_embeddings()
    eos = model.eos_ids
    B, first = work.mask.shape[0], work.length
    room = (model.max_context - work.next_pos).tolist()
    plan = RowSchedule([min(opts.max_new_tokens, int(x)) for x in room], model.batch_rows)
    live = plan.start()
    out_ids: list[list[int]] = [[] for _ in range(B)]
    texts = [""] * B
    if not live:
        yield out_ids, 0, h
        return
    ended_rows: dict[int, tuple[Row, torch.Tensor]] = {}  # row -> (its cache row, its last hidden)
    waiting: dict[int, tuple[Row, torch.Tensor, torch.Tensor]] = {}  # row -> (cache row, hidden, next position)
    entered: dict[int, tuple[int, int]] = {}  # a row that entered late -> (its own columns, first generated column)
    moved = live != list(range(B))
    if moved:  # rows beyond the slots wait (views of the prefilled cache, which no later write reaches)
        for r in range(B):
            if r not in live:
                state = (work.row(r), h[r : r + 1], work.next_pos[r])
                if plan.budgets[r] > 0:
                    waiting[r] = state
                else:
                    ended_rows[r] = state[:2]
        idx = torch.tensor(live, device=model.device)
        work.take_rows(idx)
        h = h[idx]

    def held(r: int) -> str:
        """Text of row ``r`` not streamed yet (held back: the bytes of its last character never completed)."""
        full = model.tokenizer.decode(out_ids[r], skip_special_tokens=True)
        return full[len(texts[r]) :]

    while True:
        with torch.no_grad():
            logits = work.logits(h, head)  # (b, V)
            if constraints is not None:
                logits = constraints.mask(logits, plan.slots)
            tok = (
                logits.float().argmax(dim=-1) if greedy else sample_next(logits, opts.temperature, opts.top_p, gen)
            )  # (b,)
        ended = []
        for i, tid in enumerate(tok.tolist()):
            r = plan.slots[i]
            if tid not in eos:
                out_ids[r].append(tid)
                if constraints is not None:
                    constraints.accept(r, tid)
                if stream:
                    full = model.tokenizer.decode(out_ids[r], skip_special_tokens=True)
                    if full.endswith("\ufffd"):  # a character split across tokens: its bytes are not all here yet
                        delta = ""
                    else:
                        delta, texts[r] = full[len(texts[r]) :], full
                    yield TokenChunk(r, tid, delta)
                if not plan.made_one(i):
                    continue
            ended.append(i)
            tail = held(r) if stream else ""
            if tail:
                yield TokenChunk(r, -1, tail)
        new_mask = work.ones(len(plan.slots))
        hidden_of: dict[int, torch.Tensor] = {}  # slot -> hidden state of the row that entered it
        if ended:
            rows_of = {i: plan.slots[i] for i in ended}
            entering, empty = plan.free(ended)
            for i, r in rows_of.items():  # a slot another row enters is overwritten: keep a copy of the row
                keep, resume = entered.get(r, (None, 0))
                row = work.row(i, keep, resume)
                if i in entering and keep is None:
                    row = (tuple(k.clone() for k in row[0]), tuple(v.clone() for v in row[1]), row[2], row[3])
                ended_rows[r] = (row, h[i : i + 1].clone())
            if not plan.slots:
                break
            moved = True
            if entering:
                new_mask = new_mask.clone()
            for i, r in entering.items():
                row, hr, pos = waiting.pop(r)
                work.put_row(i, row, pos)
                entered[r] = (int(row[2].shape[1]), work.length + 1)  # after the masked column fed below
                tok[i], new_mask[i] = 0, 0  # any token id: the column is masked
                hidden_of[i] = hr
            if empty:
                keep_slots = [i for i in range(len(tok)) if i not in empty]
                idx = torch.tensor(keep_slots, device=model.device)
                work.take_rows(idx)
                h, tok, new_mask = h[idx], tok[idx], new_mask[idx]
                hidden_of = {keep_slots.index(i): x for i, x in hidden_of.items()}
        with torch.no_grad():
            h = work.forward(model.decoder, new_mask, model.layer, input_ids=tok[:, None])[:, -1]
        for i, hr in hidden_of.items():  # an entering row's next token comes from its own prompt's last state
            h[i] = hr[0].to(h.device)
    if moved:  # reassemble the full batch in its original row order
        work.set_rows([ended_rows[r][0] for r in range(B)])
    h = torch.cat([ended_rows[r][1] for r in range(B)], dim=0)
    yield out_ids, work.length - first, h


def generate_text(
    model: Any,
    fed: Fed,
    opts: DecodeOptions,
    *,
    agent: str,
    stream: bool = True,
    constraint: Constraint | Sequence[Constraint | None] | None = None,
) -> Iterator[TokenChunk | Decoded]:
    """Decode on top of ``fed``: every :class:`TokenChunk` (if ``stream``), then the :class:`Decoded`.

    ``constraint``: one :class:`Constraint` for every row, or one (or None) per row. The generated
    tokens become the agent's ``text`` segment of the returned handle.
    """
    work = fed.work
    rows = [] if constraint is None else per_row(constraint, len(fed.tokens))
    matchers = RowConstraints(model, rows) if any(c is not None for c in rows) else None
    result: Any = None
    for item in generate(model, work, fed.hidden, opts, stream, matchers):
        if isinstance(item, TokenChunk):
            yield item
        else:
            result = item
    out_ids, columns, h = result
    work.add_segment(agent, "text", columns)
    work.generated_tokens += sum(len(x) for x in out_ids)
    texts = [model.tokenizer.decode(x, skip_special_tokens=True) for x in out_ids]
    yield Decoded(texts, work.freeze(h), [len(x) for x in out_ids], fed.tokens)
