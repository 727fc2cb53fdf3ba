"""The judger's generation loop on top of a prefilled :class:`~latent_graph.engine.forward.work.Work`.

Greedy or sampled next tokens from the lm_head of the *last* position only;
finished rows (EOS) leave the batch so they cost nothing more, and the full
batch is reassembled in its original row order at the end (tested equal to
running each row alone). :func:`generate_text` is the one way a decode call ends: it runs the loop
under the call's constraints, records the text segment and returns the :class:`Decoded`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.decode.sampling import sample_next
from latent_graph.engine.forward.feed import Fed
from latent_graph.engine.forward.work import Work
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

    Per token it reads the new ids once (one ``tolist``) and decodes text deltas only when streaming. A character
    whose bytes span several tokens streams whole once complete (never as U+FFFD); text still held back when a row
    ends (bytes that never completed) comes in a last chunk with ``token_id == -1``, so the chunks always join to
    the decoded text.

    Args:
        model: What decoding reads of the model (:class:`~latent_graph.engine.protocols.DecodingModel`).
        work: Prefilled state; grows by the fed tokens.
        h: (B, H) hidden state after the prompt.
        opts: Decoding options.
        constraints: Matchers of the constrained rows (None = no row is constrained): forbidden
            tokens are masked before sampling, so an allowed greedy token is still picked.
    """
    budget = min(opts.max_new_tokens, model.max_context - int(work.next_pos.max()))
    gen = torch.Generator(device=model.device).manual_seed(opts.seed) if opts.seed is not None else None
    greedy = opts.temperature == 0  # the default: the argmax itself, no sampler (``sample_next`` picks the same)
    head = model.hf_model.get_output_embeddings()
    eos = model.eos_ids
    B = work.mask.shape[0]
    rows = list(range(B))  # original batch row of each live row
    parked: dict[int, Any] = {}  # finished rows: ((keys, values, mask, pos), hidden)
    out_ids: list[list[int]] = [[] for _ in range(B)]
    texts = [""] * B
    fed = 0

    def held(r: int) -> str:
        """Text of row ``r`` not streamed yet (held back: the bytes of its last character never completed)."""
        full = model.tokenizer.decode(out_ids[r], skip_special_tokens=True)
        return full[len(texts[r]) :]

    for t in range(budget):
        with torch.no_grad():
            logits = work.logits(h, head)  # (b, V)
            if constraints is not None:
                logits = constraints.mask(logits, rows)
            tok = (
                logits.float().argmax(dim=-1) if greedy else sample_next(logits, opts.temperature, opts.top_p, gen)
            )  # (b,)
        finished = []
        for i, tid in enumerate(tok.tolist()):
            if tid in eos:
                finished.append(i)
                tail = held(rows[i]) if stream else ""
                if tail:
                    yield TokenChunk(rows[i], -1, tail)
                continue
            r = rows[i]
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
        if t == budget - 1:
            ended = {rows[i] for i in finished}
            for r in rows if stream else []:
                tail = "" if r in ended else held(r)
                if tail:
                    yield TokenChunk(r, -1, tail)
            break
        if finished:  # drop finished rows so they cost nothing more
            for i in finished:
                parked[rows[i]] = (work.row(i), h[i : i + 1])
            keep = [i for i in range(len(rows)) if i not in finished]
            if not keep:
                break
            idx = torch.tensor(keep, device=model.device)
            work.take_rows(idx)
            h, tok = h[idx], tok[idx]
            rows = [rows[i] for i in keep]
        with torch.no_grad():
            h = work.forward(model.decoder, work.ones(len(rows)), model.layer, input_ids=tok[:, None])[:, -1]
        fed += 1
    if parked:  # reassemble the full batch in its original row order
        for i, r in enumerate(rows):
            parked[r] = (work.row(i), h[i : i + 1])
        ordered = [parked[r] for r in range(B)]
        work.set_rows([p[0] for p in ordered])
        h = torch.cat([p[1] for p in ordered], dim=0)
    yield out_ids, fed, h


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
