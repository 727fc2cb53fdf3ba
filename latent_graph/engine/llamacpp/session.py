"""One call of the llama.cpp engine on top of a handle: the rows in llama.cpp sequences, frozen into a new handle.

:class:`Session` plays the part :class:`~latent_graph.engine.forward.work.Work` plays for the transformers engine
(same duck type: ``forward`` of one column, ``take_rows``/``row``/``set_rows``, ``add_segment``, ``freeze``), so the
engine's own latent-step loop (``forward/steps.py``) and generation loop (``decode/loop.py``) run on it unchanged.

Why handles hold tensors and not a live sequence: a handle must stay valid after any later call (immutability),
persist and load in another process, and go through memory policies, compressed edges and branch merges, all of
which work on tensors. So a call clears the context, loads each row's real columns into its sequence (row ``b`` is
sequence ``b``; positions kept, so dropped columns never shift RoPE), appends, drops the columns it loaded
(``llama_memory_seq_rm``) and reads back only what it appended (``llama_state_seq_get_data``), laid out like the
transformers engine lays out its columns (each segment left-padded per row, generated text right-padded).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from latent_graph.engine.forward.feed import check_context, column_bytes
from latent_graph.engine.handle import LatentHandle, Segment, SegmentKind
from latent_graph.engine.llamacpp.kvstate import parse_state, row_state, to_heads
from latent_graph.engine.options import limits_of
from latent_graph.errors import BatchSizeMismatchError, InvalidArgumentError, LlamaCppError


class Session:
    """Mutable state of one engine call (see the module docstring); never shared between calls."""

    def __init__(self, model: Any, base: LatentHandle | None, batch: int, logits: bool = False) -> None:
        self.model, self.rt, self.layout = model, model.runtime, model.layout
        limits_of(model).check_rows(batch, "rows")
        if batch > self.rt.n_seq_max:
            raise BatchSizeMismatchError(
                f"a batch of {batch} rows; this llama.cpp model runs at most {self.rt.n_seq_max} "
                "(load it with a larger max_batch)"
            )
        self.base, self.batch, self.want_logits = base, batch, logits
        self.rt.clear()
        start = base.next_positions() if base is not None else torch.zeros(batch, dtype=torch.long)
        self.start = [int(x) for x in start.tolist()]
        self.next_pos = start.clone()  # (live rows,)
        self.live = list(range(batch))  # original row of each live row
        self.new_mask: list[list[int]] = [[] for _ in range(batch)]  # appended columns, per original row
        self.new_pos: list[list[int]] = [[] for _ in range(batch)]
        self.segments: list[Segment] = list(base.segments) if base else []
        self.latents: list[torch.Tensor] = list(base.latents) if base else []
        self.hiddens: list[torch.Tensor] = list(base.hiddens) if base else []
        self.meta: dict[str, str] = dict(base.meta) if base else {}
        self.prompt_tokens = self.latent_steps = self.generated_tokens = 0
        self._ones: dict[int, torch.Tensor] = {}
        self._last: tuple[torch.Tensor, torch.Tensor | None] | None = None
        if base is not None and base.seq_len:
            for b in range(batch):
                cols = base.attention_mask[b].nonzero().squeeze(1)
                if cols.numel():
                    pos = base.position_ids[b, cols]
                    self.rt.import_seq(b, row_state(base.keys, base.values, cols, pos, b, self.layout))

    # ------------------------------------------------------------- shape
    @property
    def base_len(self) -> int:
        return self.base.seq_len if self.base is not None else 0

    @property
    def length(self) -> int:
        return self.base_len + max(len(c) for c in self.new_mask)

    @property
    def mask(self) -> torch.Tensor:
        """(live rows, columns) mask of the live rows (only its shape is read during a call)."""
        width = max(len(c) for c in self.new_mask)
        new = torch.tensor([c + [0] * (width - len(c)) for c in (self.new_mask[r] for r in self.live)])
        base = self.base.attention_mask[self.live] if self.base is not None else torch.zeros((len(self.live), 0))
        return torch.cat([base.long(), new.view(len(self.live), width).long()], dim=1)

    def ones(self, rows: int) -> torch.Tensor:
        col = self._ones.get(rows)
        if col is None:
            col = self._ones[rows] = torch.ones((rows, 1), dtype=torch.long)
        return col

    def add_segment(self, agent: str, kind: SegmentKind, n: int) -> None:
        if n > 0:
            self.segments.append(Segment(agent, kind, self.length - n, self.length))

    # ------------------------------------------------------------- feeding
    def check_room(self, lengths: list[int], reserve: int, agent: str, what: str) -> None:
        """:class:`ContextOverflowError` unless every row's input plus ``reserve`` fits the model's context, and the
        model's ``EngineLimits.max_cache_bytes`` for the columns the new handle will hold (as the transformers
        engine's feed checks them)."""
        need = max(s + n for s, n in zip(self.start, lengths)) + reserve
        check_context(self.model, need, reserve, agent, what)
        room = self.model.max_context - need + reserve
        columns = self.base_len + max(lengths, default=0) + min(reserve, room)
        limits_of(self.model).check_reserve(self.batch, columns, column_bytes(self.model), f"agent {agent!r}")

    def feed_tokens(self, rows: list[list[int]], agent: str, kind: SegmentKind) -> torch.Tensor:
        """Append each row's tokens as one left-padded ``kind`` segment; returns the (B, H) last hidden states
        (a row fed nothing keeps the handle's). Only called on the full batch, before any decoding."""
        n = max((len(r) for r in rows), default=0)
        if n == 0:
            hidden = self._kept_hidden(agent)
            self._set_last(hidden, None, [])
            return hidden
        tokens: list[int] = []
        pos: list[int] = []
        seq: list[int] = []
        out: list[int] = []
        fed: list[int] = []
        for b, r in enumerate(rows):
            p0 = int(self.next_pos[b])
            self.new_mask[b] += [0] * (n - len(r)) + [1] * len(r)
            self.new_pos[b] += [p0] * (n - len(r)) + list(range(p0, p0 + len(r)))
            tokens += r
            pos += range(p0, p0 + len(r))
            seq += [b] * len(r)
            out += [0] * (len(r) - 1) + [1] if r else []
            if r:
                fed.append(b)
        hid, logits = self.rt.decode(
            np.asarray(pos, dtype=np.int32),
            np.asarray(seq, dtype=np.int32),
            np.asarray(out, dtype=np.int8),
            tokens=np.asarray(tokens, dtype=np.int32),
            logits=self.want_logits,
        )
        self.next_pos = self.next_pos + torch.tensor([len(r) for r in rows])
        self.add_segment(agent, kind, n)
        hidden = self._kept_hidden(agent) if len(fed) < self.batch else torch.empty((self.batch, hid.shape[1]))
        hidden[fed] = torch.from_numpy(hid)
        self._set_last(hidden, torch.from_numpy(logits) if logits is not None else None, fed)
        if kind != "latent":
            self.prompt_tokens += len(tokens)
        return hidden

    def _kept_hidden(self, agent: str) -> torch.Tensor:
        if self.base is None or self.base.last_hidden is None:
            raise InvalidArgumentError(
                f"agent {agent!r}: a row with nothing to feed needs the handle's last hidden state"
            )
        return self.base.last_hidden.float().clone()

    def _set_last(self, hidden: torch.Tensor, logits: torch.Tensor | None, fed: list[int]) -> None:
        if self.want_logits:
            full = self.model.head_logits(hidden) if len(fed) < self.batch or logits is None else logits
            if logits is not None and len(fed) < self.batch:
                full[fed] = logits
            logits = full
        self._last = (hidden, logits)

    def forward(
        self,
        decoder: Any,
        new_mask: torch.Tensor,
        layer: int = -1,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One column for every live row (a latent step: ``inputs_embeds`` (b, 1, H); a decode step: ``input_ids``
        (b, 1)); returns the (b, 1, H) hidden states. ``decoder`` and ``layer`` are the transformers engine's
        (unused: llama.cpp runs the model and its hidden state is the final norm's output)."""
        if new_mask.shape[1] != 1:
            raise InvalidArgumentError("the llama.cpp session appends one column per forward")
        rows = len(self.live)
        kw: dict[str, Any] = {}
        if input_ids is not None:
            kw["tokens"] = input_ids[:, 0].to(torch.int32).numpy()
        else:
            assert inputs_embeds is not None
            kw["embeds"] = inputs_embeds[:, 0].float().numpy()
        pos = self.next_pos.to(torch.int32).numpy()
        hid, logits = self.rt.decode(
            pos, np.asarray(self.live, dtype=np.int32), np.ones(rows, dtype=np.int8), logits=self.want_logits, **kw
        )
        for r, p in zip(self.live, pos.tolist()):
            self.new_mask[r].append(1)
            self.new_pos[r].append(p)
        self.next_pos = self.next_pos + 1
        h = torch.from_numpy(hid)
        self._last = (h, torch.from_numpy(logits) if logits is not None else None)
        return h[:, None]

    def logits(self, h: torch.Tensor, head: Any) -> torch.Tensor:
        """Logits of hidden states ``h``: llama.cpp's own when ``h`` is what the last feed returned, else the head's."""
        last = self._last
        if last is not None and last[1] is not None and _same(h, last[0]):
            return last[1]
        return self.model.head_logits(h)

    # ------------------------------------------------------------- rows
    def take_rows(self, idx: torch.Tensor) -> None:
        keep = idx.tolist()
        self.live = [self.live[i] for i in keep]
        self.next_pos = self.next_pos[idx]

    def row(self, i: int, keep: int | None = None, resume: int = 0) -> tuple[int, int]:
        """Live row ``i`` as (its original row, its next position), for :meth:`set_rows`. ``keep``/``resume`` are
        for rows that entered a running batch, which this engine does not do (its ``batch_rows`` is None)."""
        if keep is not None:
            raise InvalidArgumentError("the llama.cpp engine runs every row of a call at once (batch_rows=None)")
        return self.live[i], int(self.next_pos[i])

    def set_rows(self, rows: list[tuple[int, int]]) -> None:
        """The full batch again, in the order given (rows that stopped early are right-padded at freeze)."""
        self.live = [r for r, _ in rows]
        self.next_pos = torch.tensor([p for _, p in rows], dtype=torch.long)
        width = max(len(c) for c in self.new_mask)
        for r in range(self.batch):
            missing = width - len(self.new_mask[r])
            self.new_mask[r] += [0] * missing
            self.new_pos[r] += [0] * missing

    # ------------------------------------------------------------- freeze
    def freeze(self, last_hidden: torch.Tensor | None) -> LatentHandle:
        """The new immutable handle: the handle the call started from + the columns it appended."""
        width = max(len(c) for c in self.new_mask)
        mask = torch.tensor([c + [0] * (width - len(c)) for c in self.new_mask], dtype=torch.long)
        pos = torch.tensor([c + [0] * (width - len(c)) for c in self.new_pos], dtype=torch.long)
        mask, pos = mask.view(self.batch, width), pos.view(self.batch, width)
        lay = self.layout
        keys = [
            torch.zeros((self.batch, lay.n_head_kv, width, lay.head_dim), dtype=torch.float16)
            for _ in range(lay.n_layer)
        ]
        values = [torch.zeros_like(k) for k in keys]
        for b in range(self.batch):
            cols = mask[b].nonzero().squeeze(1)
            if cols.numel() == 0:
                continue
            self.rt.seq_rm(b, 0, self.start[b])  # the columns the call loaded: the handle has them already
            cell_pos, k_rows, v_rows = parse_state(self.rt.export_seq(b), lay)
            order = np.argsort(cell_pos, kind="stable")
            if not np.array_equal(cell_pos[order], pos[b, cols].numpy()):
                raise LlamaCppError(
                    f"llama.cpp sequence {b} holds positions {cell_pos[order][:8]}..., expected {pos[b, cols][:8]}"
                )
            for layer in range(lay.n_layer):
                keys[layer][b, :, cols] = to_heads(k_rows[layer][order], lay)
                values[layer][b, :, cols] = to_heads(v_rows[layer][order], lay)
        b0 = self.base
        if b0 is not None and b0.seq_len:
            keys = [torch.cat([k0.to(torch.float16), k], dim=2) for k0, k in zip(b0.keys, keys)]
            values = [torch.cat([v0.to(torch.float16), v], dim=2) for v0, v in zip(b0.values, values)]
            mask = torch.cat([b0.attention_mask, mask], dim=1)
            pos = torch.cat([b0.position_ids, pos], dim=1)
        return LatentHandle(
            keys=tuple(keys),
            values=tuple(values),
            attention_mask=mask,
            position_ids=pos,
            segments=tuple(self.segments),
            latents=tuple(self.latents),
            hiddens=tuple(self.hiddens),
            fingerprint=self.model.fingerprint,
            last_hidden=last_hidden,
            prompt_tokens=(b0.prompt_tokens if b0 else 0) + self.prompt_tokens,
            latent_steps=(b0.latent_steps if b0 else 0) + self.latent_steps,
            generated_tokens=(b0.generated_tokens if b0 else 0) + self.generated_tokens,
            meta=dict(self.meta),
        )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` is ``b`` or a view of exactly its elements (the loops slice what a forward returned)."""
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
