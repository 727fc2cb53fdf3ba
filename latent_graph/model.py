"""LocalLatentModel: the latent engine (torch only, no LangGraph).

Two operations on top of an immutable :class:`~latent_graph.handle.LatentHandle`:

- :meth:`LocalLatentModel.think` prefills an agent's chat-formatted prompt on
  top of the handle's cache, then takes ``steps`` latent steps: last hidden state
  → realign → ``inputs_embeds`` → one forward of the *base* model (no lm_head, no
  vocab logits). Returns a new handle.
- :meth:`LocalLatentModel.decode` is the judger path: prefill, then generate text
  on top of the cache (also when the handle holds 0 latent steps).

Batches are left-padded per agent segment; every row keeps its own attention
mask and positions, so a batched run matches running each row alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from latent_graph import _kv
from latent_graph._runnable import LatentRunnable
from latent_graph._chat import encode_left_padded, format_prompt
from latent_graph.errors import (
    BatchSizeMismatchError,
    ContextOverflowError,
    DeviceMismatchError,
    DTypeMismatchError,
    InvalidArgumentError,
    InvalidStepsError,
    NonFiniteLatentError,
)
from latent_graph.fingerprint import ModelFingerprint, compute_fingerprint
from latent_graph.handle import MEMORY_POLICIES, LatentHandle, MemoryPolicy, Segment
from latent_graph.realign import IdentityRealigner, Realigner, load_or_compute_ridge, mean_embedding_norm
from latent_graph.sampling import check_sampling, sample_next


@dataclass(frozen=True)
class StepInfo:
    """What one latent step produced (passed to ``on_step`` callbacks)."""

    agent: str
    step: int  # 0-based
    hidden: torch.Tensor  # (B, H) hidden state the step started from
    embedding: torch.Tensor  # (B, H) realigned vector fed as the next input


@dataclass(frozen=True)
class TokenChunk:
    """One generated token of one batch row, with its decoded text delta."""

    row: int
    token_id: int
    text: str


@dataclass(frozen=True)
class Decoded:
    """Result of :meth:`LocalLatentModel.decode`."""

    texts: list[str]
    handle: LatentHandle  # prompt + generated tokens appended as a "text" segment
    new_tokens: list[int]  # generated tokens per row

    @property
    def text(self) -> str:
        return self.texts[0]


class _Work:
    """Mutable scratch state of one think/decode call; frozen into a handle at the end."""

    def __init__(self, base: LatentHandle | None, batch: int, device: torch.device, fp: ModelFingerprint):
        self.cache = _kv.to_cache(base)
        if base is None:
            self.mask = torch.zeros((batch, 0), dtype=torch.long, device=device)  # (B, T)
            self.pos = torch.zeros((batch, 0), dtype=torch.long, device=device)  # (B, T)
        else:
            self.mask, self.pos = base.attention_mask, base.position_ids
        self.base = base
        self.segments: list[Segment] = list(base.segments) if base else []
        self.latents: list[torch.Tensor] = list(base.latents) if base else []
        self.hiddens: list[torch.Tensor] = list(base.hiddens) if base else []
        self.fp = fp
        self.next_pos = base.next_positions() if base else torch.zeros(batch, dtype=torch.long, device=device)
        self.prompt_tokens = self.latent_steps = self.generated_tokens = 0
        self.meta: dict[str, str] = dict(base.meta) if base else {}

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def add_segment(self, agent: str, kind: Any, n: int) -> None:
        if n > 0:
            self.segments.append(Segment(agent, kind, self.length - n, self.length))

    def freeze(self, last_hidden: torch.Tensor | None) -> LatentHandle:
        keys, values = _kv.from_cache(self.cache)
        b = self.base
        return LatentHandle(
            keys=keys,
            values=values,
            attention_mask=self.mask,
            position_ids=self.pos,
            segments=tuple(self.segments),
            latents=tuple(self.latents),
            hiddens=tuple(self.hiddens),
            fingerprint=self.fp,
            last_hidden=last_hidden,
            prompt_tokens=(b.prompt_tokens if b else 0) + self.prompt_tokens,
            latent_steps=(b.latent_steps if b else 0) + self.latent_steps,
            generated_tokens=(b.generated_tokens if b else 0) + self.generated_tokens,
            meta=dict(self.meta),
        )


class LocalLatentModel(LatentRunnable):
    """A local HF causal LM that agents share to talk in latent space.

    It is also a langchain-core ``Runnable`` (see :class:`~latent_graph._runnable.LatentRunnable`)
    and can be exposed as a chat model with :meth:`as_chat_model`.

    Args:
        model: A loaded ``transformers`` causal LM (any architecture with a KV cache).
        tokenizer: Its tokenizer.
        name: Readable name recorded in the fingerprint.
        realign: ``"ridge"`` (LatentMAS W_a, default), ``"identity"``, or a :class:`Realigner`.
        ridge_lambda: λ of the ridge regression.
        layer: Hidden layer fed back in latent steps; -1 = final norm output.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        realign: str | Realigner = "ridge",
        ridge_lambda: float = 1e-5,
        layer: int = -1,
    ) -> None:
        model.eval()
        self.hf_model = model
        self.tokenizer = tokenizer
        self.base = model.base_model  # decoder stack + final norm, no lm_head
        self.layer = layer
        self.name = name or getattr(model.config, "_name_or_path", None) or model.config.model_type
        self.fingerprint = compute_fingerprint(model, tokenizer, self.name, layer)
        self.ridge_lambda = ridge_lambda
        self.realigner = self._build_realigner(realign)
        self.eos_ids = _eos_ids(model, tokenizer)

    # ------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> LocalLatentModel:
        """Load any HF causal LM path or hub id. See :func:`latent_graph.loading.load_hf`."""
        from latent_graph.loading import load_hf

        return load_hf(cls, name_or_path, **kwargs)

    @classmethod
    def default(cls, **kwargs: Any) -> LocalLatentModel:
        """The embedded default model, SmolLM2-135M-Instruct (see :mod:`latent_graph.default_model`)."""
        from latent_graph.default_model import load_default

        return load_default(cls, **kwargs)

    def _build_realigner(self, realign: str | Realigner) -> Realigner:
        w_in = self.input_embedding_matrix()
        if isinstance(realign, Realigner):
            check = getattr(realign, "check_model", None)
            if check is not None:
                check(self.fingerprint)
            return realign.to(self.device)
        if realign == "identity":
            return IdentityRealigner(mean_embedding_norm(w_in))
        if realign == "ridge":
            head = self.hf_model.get_output_embeddings()
            w_out = head.weight if head is not None else w_in
            return load_or_compute_ridge(w_in, w_out, self.fingerprint, self.ridge_lambda).to(self.device)
        raise InvalidArgumentError(f"realign must be 'ridge', 'identity' or a Realigner, got {realign!r}")

    def with_realigner(self, realign: str | Realigner) -> LocalLatentModel:
        """A shallow copy sharing weights but using another realigner."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.realigner = clone._build_realigner(realign)
        return clone

    # ---------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return self.hf_model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.hf_model.get_input_embeddings().weight.dtype

    @property
    def hidden_size(self) -> int:
        return int(self.hf_model.get_input_embeddings().weight.shape[1])

    @property
    def max_context(self) -> int:
        cfg = self.hf_model.config
        for key in ("max_position_embeddings", "n_positions", "seq_length"):
            value = getattr(cfg, key, None)
            if value:
                return int(value)
        return 2048

    def input_embedding_matrix(self) -> torch.Tensor:
        """W_in (V, H) as the model actually sees it (embedding scale applied if any)."""
        emb = self.hf_model.get_input_embeddings()
        scale = getattr(emb, "embed_scale", None)
        w = emb.weight.detach()
        return w * scale if scale is not None else w

    # -------------------------------------------------------------- checks
    def check_handle(self, handle: LatentHandle) -> None:
        """Raise a named error unless ``handle`` can be extended by this model."""
        self.fingerprint.check(handle.fingerprint)
        if handle.device != self.device:
            raise DeviceMismatchError(
                f"handle is on {handle.device} but model {self.name!r} is on {self.device}; "
                f"use handle.to({str(self.device)!r})"
            )
        if handle.num_layers and handle.dtype != self.dtype:
            raise DTypeMismatchError(
                f"handle cache dtype {handle.dtype} differs from model dtype {self.dtype}; "
                f"use handle.to(dtype={self.dtype})"
            )

    def _prompts(self, handle: LatentHandle | None, prompt: str | Sequence[str]) -> list[str]:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise BatchSizeMismatchError("no prompts given")
        if handle is not None and len(prompts) != handle.batch_size:
            if len(prompts) == 1:
                return prompts * handle.batch_size
            raise BatchSizeMismatchError(
                f"{len(prompts)} prompts for a handle of batch size {handle.batch_size}"
            )
        return prompts

    # ---------------------------------------------------------------- core
    def _forward(
        self,
        work: _Work,
        new_mask: torch.Tensor,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Append n columns to ``work``; returns the chosen layer's hidden states (B, n, H)."""
        n = new_mask.shape[1]
        # Real tokens take consecutive positions after the row's last one; pads reuse it (masked).
        pos = work.next_pos[:, None] + (new_mask.cumsum(dim=1) - 1).clamp_min(0)  # (B, n)
        mask = torch.cat([work.mask, new_mask], dim=1)  # (B, T + n)
        out = self.base(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=mask,
            position_ids=pos,
            past_key_values=work.cache,
            use_cache=True,
            output_hidden_states=self.layer != -1,
        )
        work.cache = out.past_key_values
        work.mask = mask
        work.pos = torch.cat([work.pos, pos], dim=1)
        work.next_pos = work.next_pos + new_mask.sum(dim=1)
        assert _kv.cache_len(work.cache) == work.length, "KV cache and mask are out of step"
        hidden = out.last_hidden_state if self.layer == -1 else out.hidden_states[self.layer]
        return hidden[:, -n:]

    def _prefill(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        agent: str,
        system: str | None,
        memory: MemoryPolicy | str,
        reserve: int,
        generation: bool = True,
    ) -> tuple[_Work, torch.Tensor]:
        if memory not in MEMORY_POLICIES:
            raise InvalidArgumentError(f"unknown memory policy {memory!r}; choose one of {MEMORY_POLICIES}")
        prompts = self._prompts(handle, prompt)
        if handle is not None:
            self.check_handle(handle)
            handle = handle.with_memory(memory)
        first = handle is None or handle.seq_len == 0
        open_turn = handle is not None and handle.meta.get("open_turn", "1") == "1"
        texts = [
            format_prompt(self.tokenizer, p, system, first, after_open_turn=open_turn, generation=generation)
            for p in prompts
        ]
        ids, new_mask = encode_left_padded(self.tokenizer, texts, self.device)  # (B, n)
        work = _Work(handle, len(prompts), self.device, self.fingerprint)
        work.meta["open_turn"] = "1" if generation else "0"
        need = int((work.next_pos + new_mask.sum(dim=1)).max()) + reserve
        if need > self.max_context:
            raise ContextOverflowError(
                f"agent {agent!r}: cache + prompt + {reserve} reserved positions = {need} "
                f"exceeds the context window of {self.name!r} ({self.max_context})"
            )
        hidden = self._forward(work, new_mask, input_ids=ids)[:, -1]  # (B, H), last column is real
        work.add_segment(agent, "prompt", ids.shape[1])
        work.prompt_tokens += int(new_mask.sum())
        _check_finite(hidden, f"agent {agent!r}: hidden state after its prompt")
        return work, hidden

    @torch.no_grad()
    def think(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        steps: int = 0,
        *,
        agent: str = "agent",
        system: str | None = None,
        memory: MemoryPolicy | str = "all",
        on_step: Callable[[StepInfo], None] | None = None,
    ) -> LatentHandle:
        """Prefill ``prompt`` on top of ``handle``, then take ``steps`` latent steps.

        Args:
            handle: The previous agent's handle, or None to start fresh.
            prompt: One prompt, or one per batch row (a single one is broadcast).
            steps: Number of latent steps (>= 0).
            agent: Name recorded in the segment table.
            system: Optional system message for the chat template.
            memory: What of ``handle`` this agent reads: "all", "last" or "latent".
            on_step: Called after each latent step with a :class:`StepInfo`.

        Returns:
            A new handle; ``handle`` itself is left untouched.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InvalidStepsError(f"steps must be an int >= 0, got {steps!r}")
        # An agent with 0 latent steps leaves its turn closed (no empty assistant reply in the cache).
        work, h = self._prefill(handle, prompt, agent, system, memory, reserve=steps, generation=steps > 0)
        return self._steps(work, h, steps, agent, on_step)

    def _steps(
        self, work: _Work, h: torch.Tensor, steps: int, agent: str, on_step: Callable[[StepInfo], None] | None
    ) -> LatentHandle:
        """Take ``steps`` latent steps from hidden state ``h`` (B, H) and freeze the result."""
        ones = torch.ones((work.mask.shape[0], 1), dtype=torch.long, device=self.device)
        thoughts, hiddens = [], []
        for i in range(steps):
            e = self.realigner(h)  # (B, H)
            _check_finite(e, f"agent {agent!r} latent step {i}")
            h_next = self._forward(work, ones, inputs_embeds=e[:, None].to(self.dtype))[:, -1]  # (B, H)
            if on_step is not None:
                on_step(StepInfo(agent, i, h, e))
            thoughts.append(e)
            hiddens.append(h)
            h = h_next
        if steps:
            work.add_segment(agent, "latent", steps)
            work.latents.append(torch.stack(thoughts, dim=1))  # (B, steps, H)
            work.hiddens.append(torch.stack(hiddens, dim=1))  # (B, steps, H)
            work.latent_steps += steps
        return work.freeze(h)

    @torch.no_grad()
    def inject(
        self,
        handle: LatentHandle | None,
        embeds: torch.Tensor,
        *,
        agent: str = "inject",
        steps: int = 0,
        on_step: Callable[[StepInfo], None] | None = None,
    ) -> LatentHandle:
        """Prefill ready-made input embeddings (B, n, H) as a latent segment, then take ``steps`` steps.

        This is how thoughts from *another* model enter this one (through a trained
        cross-model adapter): they are fed like inputs, since that model's cache is
        meaningless here.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise InvalidStepsError(f"steps must be an int >= 0, got {steps!r}")
        if embeds.dim() != 3 or embeds.shape[-1] != self.hidden_size:
            raise InvalidArgumentError(f"embeds must be (B, n, {self.hidden_size}), got {tuple(embeds.shape)}")
        if handle is not None:
            self.check_handle(handle)
            if embeds.shape[0] != handle.batch_size:
                raise BatchSizeMismatchError(f"{embeds.shape[0]} rows of embeddings for a handle of batch {handle.batch_size}")
        _check_finite(embeds, f"agent {agent!r}: injected embeddings")
        embeds = embeds.to(device=self.device, dtype=self.dtype)
        work = _Work(handle, embeds.shape[0], self.device, self.fingerprint)
        n = embeds.shape[1]
        if int(work.next_pos.max()) + n + steps > self.max_context:
            raise ContextOverflowError(f"agent {agent!r}: {n} injected + {steps} steps exceed the context window")
        new_mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)  # (B, n)
        h = self._forward(work, new_mask, inputs_embeds=embeds)[:, -1]
        work.add_segment(agent, "latent", n)
        work.latents.append(embeds)
        work.hiddens.append(torch.zeros_like(embeds))  # their source hidden states live in the other model
        return self._steps(work, h, steps, agent, on_step)

    def _decode_iter(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        agent: str,
        system: str | None,
        memory: MemoryPolicy | str,
    ) -> Iterator[TokenChunk | Decoded]:
        check_sampling(temperature, top_p, max_new_tokens)
        with torch.no_grad():
            work, h = self._prefill(handle, prompt, agent, system, memory, reserve=0)
        budget = min(max_new_tokens, self.max_context - int(work.next_pos.max()))
        gen = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        head = self.hf_model.get_output_embeddings()
        B = work.mask.shape[0]
        rows = list(range(B))  # original batch row of each live row
        parked: dict[int, tuple[Any, ...]] = {}  # finished rows: (keys, values, mask, pos, hidden)
        out_ids: list[list[int]] = [[] for _ in range(B)]
        texts = [""] * B
        fed = 0
        for t in range(budget):
            with torch.no_grad():
                logits = head(h)  # (b, V) — last position only, live rows only
                tok = sample_next(logits, temperature, top_p, gen)  # (b,)
            finished = []
            for i, r in enumerate(rows):
                tid = int(tok[i])
                if tid in self.eos_ids:
                    finished.append(i)
                    continue
                out_ids[r].append(tid)
                full = self.tokenizer.decode(out_ids[r], skip_special_tokens=True)
                delta, texts[r] = full[len(texts[r]) :], full
                yield TokenChunk(r, tid, delta)
            if t == budget - 1:
                break
            if finished:  # drop finished rows so they cost nothing more
                keys, values = _kv.from_cache(work.cache)
                for i in finished:
                    parked[rows[i]] = (tuple(k[i : i + 1] for k in keys), tuple(v[i : i + 1] for v in values),
                                       work.mask[i : i + 1], work.pos[i : i + 1], h[i : i + 1])
                keep = [i for i in range(len(rows)) if i not in finished]
                if not keep:
                    break
                idx = torch.tensor(keep, device=self.device)
                work.cache = _kv.take_rows(work.cache, idx)
                work.mask, work.pos = work.mask[idx], work.pos[idx]
                work.next_pos, h, tok = work.next_pos[idx], h[idx], tok[idx]
                rows = [rows[i] for i in keep]
            ones = torch.ones((len(rows), 1), dtype=torch.long, device=self.device)
            with torch.no_grad():
                h = self._forward(work, ones, input_ids=tok[:, None])[:, -1]
            fed += 1
        if parked:  # reassemble the full batch in its original row order
            keys, values = _kv.from_cache(work.cache)
            for i, r in enumerate(rows):
                parked[r] = (tuple(k[i : i + 1] for k in keys), tuple(v[i : i + 1] for v in values),
                             work.mask[i : i + 1], work.pos[i : i + 1], h[i : i + 1])
            ordered = [parked[r] for r in range(B)]
            keys, values, work.mask, work.pos = _kv.stack_rows([p[:4] for p in ordered])
            work.cache = _kv.to_cache_tensors(keys, values)
            h = torch.cat([p[4] for p in ordered], dim=0)
        work.add_segment(agent, "text", fed)
        work.generated_tokens += sum(len(x) for x in out_ids)
        handle_out = work.freeze(h)
        final = [self.tokenizer.decode(x, skip_special_tokens=True) for x in out_ids]
        yield Decoded(final, handle_out, [len(x) for x in out_ids])

    def decode(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        agent: str = "judger",
        system: str | None = None,
        memory: MemoryPolicy | str = "all",
        on_token: Callable[[TokenChunk], None] | None = None,
    ) -> Decoded:
        """Generate text on top of ``handle`` (the judger path).

        Greedy when ``temperature == 0``; ``seed`` makes sampling reproducible.
        ``on_token`` receives every generated token as it is produced.
        """
        result: Decoded | None = None
        for item in self._decode_iter(
            handle,
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            agent=agent,
            system=system,
            memory=memory,
        ):
            if isinstance(item, Decoded):
                result = item
            elif on_token is not None:
                on_token(item)
        assert result is not None
        return result

    def decode_stream(
        self, handle: LatentHandle | None, prompt: str | Sequence[str], **kwargs: Any
    ) -> Iterator[TokenChunk]:
        """Like :meth:`decode` but yields :class:`TokenChunk` as they are generated."""
        for item in self._decode_iter(handle, prompt, **_decode_defaults(kwargs)):
            if isinstance(item, TokenChunk):
                yield item

    # ------------------------------------------------------------ inspect
    @torch.no_grad()
    def logit_lens(self, hidden: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k vocabulary tokens (with probabilities) of hidden states (B, H) through the lm_head."""
        head = self.hf_model.get_output_embeddings()
        probs = torch.softmax(head(hidden.to(self.dtype)).float(), dim=-1)  # (B, V)
        top = probs.topk(k, dim=-1)
        return [
            [(self.tokenizer.decode([int(i)]), float(p)) for p, i in zip(ps, ids)]
            for ps, ids in zip(top.values, top.indices)
        ]

    @torch.no_grad()
    def nearest_tokens(self, embedding: torch.Tensor, k: int = 1) -> list[list[tuple[str, float]]]:
        """Input-embedding rows nearest (cosine) to realigned vectors (B, H)."""
        w = self.__dict__.get("_unit_embeddings")
        if w is None:  # normalised once, not at every inspected step
            w = torch.nn.functional.normalize(self.input_embedding_matrix().float(), dim=-1)  # (V, H)
            self._unit_embeddings = w
        e = torch.nn.functional.normalize(embedding.float(), dim=-1)  # (B, H)
        top = (e @ w.T).topk(k, dim=-1)  # (B, k)
        return [
            [(self.tokenizer.decode([int(i)]), float(c)) for c, i in zip(cs, ids)]
            for cs, ids in zip(top.values, top.indices)
        ]

    def as_chat_model(self, **kwargs: Any) -> Any:
        """This model as a langchain-core ``BaseChatModel`` (text edges, ``stream_mode="messages"``)."""
        from latent_graph.chat_model import LatentChatModel

        return LatentChatModel(engine=self, **kwargs)

    def __repr__(self) -> str:
        return f"LocalLatentModel({self.name!r}, realign={self.realigner.name}, device={self.device}, dtype={self.dtype})"


def _decode_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    base = dict(max_new_tokens=256, temperature=0.0, top_p=1.0, seed=None, agent="judger", system=None, memory="all")
    unknown = set(kwargs) - set(base)
    if unknown:
        raise InvalidArgumentError(f"unknown decode arguments: {sorted(unknown)}")
    base.update(kwargs)
    return base


def _check_finite(t: torch.Tensor, where: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteLatentError(f"{where} contains NaN or infinity")


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(src, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


__all__ = ["Decoded", "LocalLatentModel", "StepInfo", "TokenChunk"]
