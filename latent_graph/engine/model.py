"""LocalLatentModel: the latent engine (torch only, no LangGraph).

Two operations on top of an immutable :class:`~latent_graph.engine.handle.LatentHandle`:

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

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from latent_graph.engine.decode import loop as decoding
from latent_graph.engine.realign import lens
from latent_graph.engine.forward.work import Work
from latent_graph.engine.prompt.turn import encode_prompts
from latent_graph.engine.prompt.chat import ChatTurn, prefill_chats
from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.load.devices import check_devices, execution_device, layer_devices, offloaded
from latent_graph.engine.load.fingerprint import compute_fingerprint
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.protocols import StepCallback, TokenCallback
from latent_graph.engine.options import (
    DEFAULT_MEMORY, DecodeOptions, MemoryPolicy, check_finite, check_memory, check_steps, split_decode_kwargs,
)
from latent_graph.engine.kv.prefix import PrefixCache
from latent_graph.engine.forward.llama import stack_of
from latent_graph.engine.realign.base import IdentityRealigner, Realigner, load_or_compute_ridge, mean_embedding_norm
from latent_graph.engine.results import Decoded, StepInfo, TokenChunk
from latent_graph.engine.decode.sampling import eos_ids
from latent_graph.errors import (
    BatchSizeMismatchError,
    ContextOverflowError,
    DTypeMismatchError,
    InvalidArgumentError,
    ModelLoadError,
)


class LocalLatentModel:
    """A local HF causal LM that agents share to talk in latent space.

    Torch and transformers only: the LangChain faces (``LatentRunnable``, the chat model) wrap it
    from :mod:`latent_graph.langchain` through this public API.

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
        head = model.get_output_embeddings()
        if offloaded(model.get_input_embeddings()) or (head is not None and offloaded(head)):
            raise ModelLoadError(
                "the input embeddings and the lm_head must stay on a device (map them to 'cpu' or a GPU, not "
                "'disk'): the fingerprint and the realigner read them"
            )
        self.hf_model = model
        self._device = execution_device(model.get_input_embeddings())  # placement is fixed once loaded
        self._layer_devices = layer_devices(model)
        self.tokenizer = tokenizer
        self.base = model.base_model  # decoder stack + final norm, no lm_head
        self.decoder = stack_of(self.base)  # what engine forwards call: the same forward without module dispatch where exact
        self.layer = layer
        self.name = name or getattr(model.config, "_name_or_path", None) or model.config.model_type
        self.fingerprint = compute_fingerprint(model, tokenizer, self.name, layer)
        self.ridge_lambda = ridge_lambda
        self.realigner = self._build_realigner(realign)
        self.eos_ids = eos_ids(model, tokenizer)
        # shared prompt prefixes prefilled once; off by default (a split prefill differs from a one-shot one in the
        # last float bits): ``model.prefixes = PrefixCache()`` turns it on (bench and serve do)
        self.prefixes = PrefixCache(0)

    # ------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> LocalLatentModel:
        """Load any HF causal LM path or hub id. See :func:`latent_graph.engine.load.pretrained.load_hf`."""
        from latent_graph.engine.load.pretrained import load_hf

        return load_hf(cls, name_or_path, **kwargs)

    @classmethod
    def default(cls, **kwargs: Any) -> LocalLatentModel:
        """The embedded default model, SmolLM2-135M-Instruct (see :mod:`latent_graph.engine.load.embedded`)."""
        from latent_graph.engine.load.embedded import load_default

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
        """Where inputs enter: the input embedding's execution device (masks and positions live here; read at load)."""
        return self._device

    @property
    def layer_devices(self) -> tuple[torch.device, ...]:
        """Execution device of each decoder layer (where a handle's K/V of that layer must be; read at load)."""
        return self._layer_devices

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
        if handle.fingerprint is not self.fingerprint:  # a handle this model built carries this very object
            self.fingerprint.check(handle.fingerprint)
        if (handle.device, handle.layer_devices) != (self.device, self.layer_devices):  # else nothing to check
            check_devices(handle, self.device, self.layer_devices, self.name)
        if handle.num_layers and handle.dtype != self.dtype:
            raise DTypeMismatchError(
                f"handle cache dtype {handle.dtype} differs from model dtype {self.dtype}; "
                f"use handle.to(dtype={self.dtype})"
            )

    def _prompts(self, handle: LatentHandle | None, prompt: str | Sequence[str]) -> list[str]:
        if not isinstance(prompt, (str, list, tuple)):  # a dict would silently become its keys
            raise InvalidArgumentError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
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
    def _prefill(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        agent: str,
        system: str | None,
        memory: MemoryPolicy | str,
        reserve: int,
        generation: bool = True,
        grow: int | None = None,
    ) -> tuple[Work, torch.Tensor, list[int]]:
        """Feed the agent's chat-formatted prompt; returns (work, last hidden (B, H), real prompt tokens per row).

        ``reserve`` positions must fit in the context after the prompt (else :class:`ContextOverflowError`,
        before anything is allocated); ``grow`` (default ``reserve``) cache columns are preallocated for
        what the call appends after it, clamped to the positions left in the context window.
        """
        check_memory(memory)
        prompts = self._prompts(handle, prompt)
        if handle is not None:
            self.check_handle(handle)
            handle = handle.with_memory(memory)
        first = handle is None or handle.seq_len == 0
        open_turn = handle is not None and handle.meta.get("open_turn", "1") == "1"
        ids, new_mask = encode_prompts(  # (B, n); user text tokenized literally
            self.tokenizer, prompts, system, first, self.device, after_open_turn=open_turn, generation=generation
        )
        shared = 0
        if handle is None and self.prefixes.max_bytes > 0:  # a fresh prefill starts from the shared prefixes
            handle, ids, new_mask, shared = self.prefixes.split(self, ids, new_mask)
        start = handle.next_positions() if handle is not None else torch.zeros(len(prompts), dtype=torch.long)  # (B,)
        need = int((start.to(new_mask.device) + new_mask.sum(dim=1)).max()) + reserve
        if need > self.max_context:  # checked before any buffer is reserved
            raise ContextOverflowError(
                f"agent {agent!r}: cache + prompt + {reserve} reserved positions = {need} "
                f"exceeds the context window of {self.name!r} ({self.max_context})"
            )
        room = self.max_context - need + reserve  # positions left after the prompt: no call can append more
        work = Work(handle, len(prompts), self.device, self.fingerprint, ids.shape[1] + min(reserve if grow is None else grow, room))
        work.meta["open_turn"] = "1" if generation else "0"
        hidden = work.forward(self.decoder, new_mask, self.layer, input_ids=ids)[:, -1]  # (B, H), last column is real
        work.add_segment(agent, "prompt", ids.shape[1] + shared)
        per_row = [int(x) + shared for x in new_mask.sum(dim=1)]
        work.prompt_tokens += sum(per_row)
        check_finite(hidden, f"agent {agent!r}: hidden state after its prompt")
        return work, hidden, per_row

    @torch.no_grad()
    def think(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        steps: int = 0,
        *,
        agent: str = "agent",
        system: str | None = None,
        memory: MemoryPolicy | str = DEFAULT_MEMORY,
        on_step: StepCallback | None = None,
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
        check_steps(steps)
        # An agent with 0 latent steps leaves its turn closed (no empty assistant reply in the cache).
        work, h, _ = self._prefill(handle, prompt, agent, system, memory, reserve=steps, generation=steps > 0)
        return self._steps(work, h, steps, agent, on_step)

    def _steps(
        self, work: Work, h: torch.Tensor, steps: int, agent: str, on_step: StepCallback | None
    ) -> LatentHandle:
        """Take ``steps`` latent steps from hidden state ``h`` (B, H) and freeze the result."""
        ones = work.ones(work.mask.shape[0])
        thoughts, hiddens = [], []
        for i in range(steps):
            e = self.realigner(h.to(self.device))  # (B, H) (h comes from the last layer's device)
            if on_step is not None:  # a callback may look at it: check now (else once at the end, no sync per step)
                check_finite(e, f"agent {agent!r} latent step {i}")
            h_next = work.forward(self.decoder, ones, self.layer, inputs_embeds=e[:, None].to(self.dtype))[:, -1]  # (B, H)
            if on_step is not None:
                on_step(StepInfo(agent, i, h, e))
            thoughts.append(e)
            hiddens.append(h)
            h = h_next
        if steps:
            latents = torch.stack(thoughts, dim=1)  # (B, steps, H)
            check_finite(latents, f"agent {agent!r} latent step", steps_dim=1)
            work.add_segment(agent, "latent", steps)
            work.latents.append(latents)
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
        on_step: StepCallback | None = None,
    ) -> LatentHandle:
        """Prefill ready-made input embeddings (B, n, H) as a latent segment, then take ``steps`` steps.

        This is how thoughts from *another* model enter this one (through a trained
        cross-model adapter): they are fed like inputs, since that model's cache is
        meaningless here.
        """
        check_steps(steps)
        if not isinstance(embeds, torch.Tensor) or embeds.dim() != 3 or embeds.shape[-1] != self.hidden_size or 0 in embeds.shape:
            raise InvalidArgumentError(f"embeds must be a (B >= 1, n >= 1, {self.hidden_size}) tensor, got {getattr(embeds, 'shape', embeds)!r}")
        if handle is not None:
            self.check_handle(handle)
            if embeds.shape[0] != handle.batch_size:
                raise BatchSizeMismatchError(f"{embeds.shape[0]} rows of embeddings for a handle of batch {handle.batch_size}")
        embeds = embeds.to(device=self.device, dtype=self.dtype)  # check after the cast: fp64 may overflow it
        check_finite(embeds, f"agent {agent!r}: injected embeddings (as {self.dtype})")
        n = embeds.shape[1]
        work = Work(handle, embeds.shape[0], self.device, self.fingerprint, n + steps)
        if int(work.next_pos.max()) + n + steps > self.max_context:
            raise ContextOverflowError(f"agent {agent!r}: {n} injected + {steps} steps exceed the context window")
        new_mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)  # (B, n)
        h = work.forward(self.decoder, new_mask, self.layer, inputs_embeds=embeds)[:, -1]
        work.add_segment(agent, "latent", n)
        work.latents.append(embeds)
        work.hiddens.append(torch.zeros_like(embeds))  # their source hidden states live in the other model
        return self._steps(work, h, steps, agent, on_step)

    def decode_iter(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        options: DecodeOptions | None = None,
        *,
        agent: str = "judger",
        system: str | None = None,
        memory: MemoryPolicy | str = DEFAULT_MEMORY,
        stream: bool = True,
        constraint: Constraint | Sequence[Constraint | None] | None = None,
        messages: Sequence[Sequence[ChatTurn]] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Iterator[TokenChunk | Decoded]:
        """Like :meth:`decode`, as a generator: every :class:`TokenChunk` as produced (unless ``stream=False``), then the :class:`Decoded`.

        ``constraint``: a :class:`~latent_graph.engine.decode.constrain.Constraint` for every row, or one (or None) per row.
        ``messages``: instead of ``prompt`` (pass None), one whole chat per row on a fresh cache, rendered by the
        chat template with ``tools`` (see :mod:`latent_graph.engine.prompt.chat`).
        """
        opts = options or DecodeOptions()
        with torch.no_grad():
            if messages is not None:
                if handle is not None:
                    raise InvalidArgumentError("decoding whole chats (messages=) starts a fresh cache: pass handle=None")
                work, h, prompt_rows = prefill_chats(self, messages, tools, agent, opts.max_new_tokens)
            else:
                work, h, prompt_rows = self._prefill(handle, prompt, agent, system, memory, reserve=1, grow=opts.max_new_tokens)  # room for one token; clamped
        rows = [] if constraint is None else per_row(constraint, len(prompt_rows))
        matchers = RowConstraints(self, rows) if any(c is not None for c in rows) else None
        result: Any = None
        for item in decoding.generate(self, work, h, opts, stream, matchers):
            if isinstance(item, TokenChunk):
                yield item
            else:
                result = item
        out_ids, fed, h = result
        work.add_segment(agent, "text", fed)
        work.generated_tokens += sum(len(x) for x in out_ids)
        texts = [self.tokenizer.decode(x, skip_special_tokens=True) for x in out_ids]
        yield Decoded(texts, work.freeze(h), [len(x) for x in out_ids], prompt_rows)

    def decode(
        self,
        handle: LatentHandle | None,
        prompt: str | Sequence[str],
        *,
        on_token: TokenCallback | None = None,
        **kwargs: Any,
    ) -> Decoded:
        """Generate text on top of ``handle`` (the judger path).

        ``kwargs``: ``agent`` (default "judger"), ``system``, ``memory`` (as in
        :meth:`think`) and the :class:`DecodeOptions` fields (max_new_tokens,
        temperature, top_p, seed); unknown names raise :class:`InvalidArgumentError`.
        Greedy when ``temperature == 0``; ``seed`` makes sampling reproducible.
        ``on_token`` receives every generated token as it is produced.
        """
        result: Decoded | None = None
        opts, call = split_decode_kwargs(kwargs)
        for item in self.decode_iter(handle, prompt, opts, stream=on_token is not None, **call):
            if isinstance(item, Decoded):
                result = item
            elif on_token is not None:
                on_token(item)
        assert result is not None
        return result

    def decode_stream(self, handle: LatentHandle | None, prompt: str | Sequence[str], **kwargs: Any) -> Iterator[TokenChunk]:
        """Like :meth:`decode` (same keyword arguments) but yields :class:`TokenChunk` as they are generated."""
        opts, call = split_decode_kwargs(kwargs)
        for item in self.decode_iter(handle, prompt, opts, **call):
            if isinstance(item, TokenChunk):
                yield item

    # ------------------------------------------------------------ inspect
    def logit_lens(self, hidden: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k vocabulary tokens (with probabilities) of hidden states (B, H) through the lm_head."""
        return lens.logit_lens(self, hidden, k)

    def nearest_tokens(self, embedding: torch.Tensor, k: int = 1) -> list[list[tuple[str, float]]]:
        """Input-embedding rows nearest (cosine) to realigned vectors (B, H)."""
        w = self.__dict__.get("_unit_embeddings")
        if w is None:  # normalised once, not at every inspected step
            w = torch.nn.functional.normalize(self.input_embedding_matrix().float(), dim=-1)  # (V, H)
            self._unit_embeddings = w
        return lens.nearest_tokens(self, w, embedding, k)

    def __repr__(self) -> str:
        return f"LocalLatentModel({self.name!r}, realign={self.realigner.name}, device={self.device}, dtype={self.dtype})"


__all__ = ["LocalLatentModel"]
