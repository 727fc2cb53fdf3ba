"""LocalLatentModel: the latent engine (torch only, no LangGraph).

Operations on top of an immutable :class:`~latent_graph.engine.handle.LatentHandle`, each a new handle:

- :meth:`LocalLatentModel.think` feeds an agent's chat-formatted prompt on top of the handle's cache
  (``forward/feed.py``), then takes ``steps`` latent steps: last hidden state → realign →
  ``inputs_embeds`` → one forward of the *base* model (no lm_head, no vocab logits);
- :meth:`LocalLatentModel.inject` feeds ready-made input embeddings (another model's thoughts);
- :meth:`LocalLatentModel.decode` is the judger path: feed the prompt, then generate text (``decode/``);
- :meth:`LocalLatentModel.think_after_tools` / :meth:`decode_after_tools` feed a tool turn (the results of
  a decoded call) and go on thinking or decoding.

Batches are left-padded per agent segment; every row keeps its own attention
mask and positions, so a batched run matches running each row alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from latent_graph.engine.decode.constrain import Constraint
from latent_graph.engine.decode.loop import generate_text
from latent_graph.engine.decode.sampling import eos_ids
from latent_graph.engine.faces import EngineFaces
from latent_graph.engine.forward.feed import feed, feed_chats, feed_prompt, feed_tools
from latent_graph.engine.forward.llama import stack_of
from latent_graph.engine.forward.steps import latent_steps
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.kv.prefix import SharedPrefixes
from latent_graph.engine.load.devices import check_placement, context_window, execution_device, layer_devices
from latent_graph.engine.load.fingerprint import compute_fingerprint
from latent_graph.engine.options import (
    DEFAULT_MEMORY,
    DecodeOptions,
    EngineLimits,
    MemoryPolicy,
    check_embeds,
    check_finite,
    check_steps,
)
from latent_graph.engine.prompt.chat import ChatTurn
from latent_graph.engine.protocols import StepCallback
from latent_graph.engine.realign.base import Realigner
from latent_graph.engine.realign.catalog import make_realigner
from latent_graph.engine.results import Decoded, TokenChunk
from latent_graph.errors import InvalidArgumentError


class LocalLatentModel(EngineFaces):
    """A local HF causal LM that agents share to talk in latent space (the LangChain faces wrap it).

    Args:
        model: A loaded ``transformers`` causal LM (any architecture with a KV cache).
        tokenizer: Its tokenizer.
        name: Readable name recorded in the fingerprint.
        realign: A spec of :data:`~latent_graph.engine.REALIGNERS` (``"ridge"``, LatentMAS W_a, default;
            ``"identity"``, ``"soft:k=8"``...) or a :class:`Realigner`.
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
        check_placement(model)
        self.hf_model = model
        self._device = execution_device(model.get_input_embeddings())  # placement is fixed once loaded
        self._layer_devices = layer_devices(model)
        self._max_context = context_window(model.config)
        self.tokenizer = tokenizer
        self.base = model.base_model  # decoder stack + final norm, no lm_head
        # what engine forwards call: the same forward without module dispatch where exact
        self.decoder = stack_of(self.base)
        self.layer = layer
        self.name = name or getattr(model.config, "_name_or_path", None) or model.config.model_type
        self.fingerprint = compute_fingerprint(model, tokenizer, self.name, layer)
        self.ridge_lambda = ridge_lambda
        self.realigner = make_realigner(self, realign)
        self.eos_ids = eos_ids(model, tokenizer)
        # shared prompt prefixes prefilled once; off by default (a split prefill differs from a one-shot one in the
        # last float bits): ``model.prefixes = SharedPrefixes()`` turns it on (bench and serve do)
        self.prefixes = SharedPrefixes(0)
        # most batch rows one forward runs (None: all): a larger batch prefills and steps in slices of this many,
        # and decodes with this many rows live, the next row entering as one finishes (continuous batching)
        self.batch_rows: int | None = None
        self.limits = EngineLimits()
        """Resource caps of every call (rows, text length, K/V reservation, grammar size); replace to change."""

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

    def with_realigner(self, realign: str | Realigner) -> LocalLatentModel:
        """A shallow copy sharing weights but using another realigner (any spec of :func:`make_realigner`)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.realigner = make_realigner(clone, realign)
        return clone

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
        """Context window in positions (read from the model's config at load)."""
        return self._max_context

    def input_embedding_matrix(self) -> torch.Tensor:
        """W_in (V, H) as the model actually sees it (embedding scale applied if any)."""
        emb = self.hf_model.get_input_embeddings()
        scale = getattr(emb, "embed_scale", None)
        w = emb.weight.detach()
        return w * scale if scale is not None else w

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
        """Feed ``prompt`` on top of ``handle``, then take ``steps`` latent steps.

        ``handle``: the previous agent's handle (None: start fresh); ``prompt``: one, or one per batch row;
        ``steps`` >= 0; ``agent``: its name in the segment table; ``system``: an optional system message;
        ``memory``: what of ``handle`` it reads ("all", "last", "latent"); ``on_step``: called after each
        step with a :class:`StepInfo`. Returns a new handle; ``handle`` itself is left untouched.
        """
        check_steps(steps)
        # An agent with 0 latent steps leaves its turn closed (no empty assistant reply in the cache).
        fed = feed_prompt(self, handle, prompt, agent, system, memory, reserve=steps, generation=steps > 0)
        return latent_steps(self, fed, steps, agent, on_step)

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
        """Feed ready-made input embeddings (B, n, H) as a latent segment, then take ``steps`` steps.

        This is how thoughts from *another* model enter this one (through a trained cross-model adapter):
        they are fed like inputs, since that model's cache is meaningless here.
        """
        check_steps(steps)
        check_embeds(embeds, self.hidden_size, handle.batch_size if handle is not None else None)
        embeds = embeds.to(device=self.device, dtype=self.dtype)  # check after the cast: fp64 may overflow it
        check_finite(embeds, f"agent {agent!r}: injected embeddings (as {self.dtype})")
        fed = feed(self, handle, embeds, agent=agent, kind="latent", reserve=steps)
        fed.work.latents.append(embeds)
        fed.work.hiddens.append(torch.zeros_like(embeds))  # their source hidden states live in the other model
        return latent_steps(self, fed, steps, agent, on_step)

    @torch.no_grad()
    def think_after_tools(
        self,
        handle: LatentHandle,
        results: Sequence[Sequence[str]],
        steps: int = 0,
        *,
        agent: str = "agent",
        on_step: StepCallback | None = None,
    ) -> LatentHandle:
        """Append each row's tool turn (``results[b]``: its result texts; empty = none), then take ``steps`` steps.

        ``handle`` is the one :meth:`decode_after_tools` or :meth:`decode` returned with the call; a row with no
        results gets no columns (its turn stays open). Returns a new handle.
        """
        check_steps(steps)
        return latent_steps(self, feed_tools(self, handle, results, agent, steps, steps), steps, agent, on_step)

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

        ``constraint``: a :class:`Constraint` for every row, or one (or None) per row.
        ``messages``: instead of ``prompt`` (pass None), one whole chat per row on a fresh cache, rendered by the
        chat template with ``tools`` (see :mod:`latent_graph.engine.prompt.chat`).
        """
        opts = options or DecodeOptions()
        if messages is not None:
            if handle is not None:
                raise InvalidArgumentError("decoding whole chats (messages=) starts a fresh cache: pass handle=None")
            fed = feed_chats(self, messages, tools, agent, reserve=1, grow=opts.max_new_tokens)
        else:  # room for one token; the generation budget is clamped to the context window
            fed = feed_prompt(self, handle, prompt, agent, system, memory, reserve=1, grow=opts.max_new_tokens)
        yield from generate_text(self, fed, opts, agent=agent, stream=stream, constraint=constraint)

    def decode_after_tools(
        self,
        handle: LatentHandle,
        results: Sequence[Sequence[str]],
        options: DecodeOptions | None = None,
        *,
        agent: str = "agent",
        constraint: Constraint | Sequence[Constraint | None] | None = None,
    ) -> Decoded:
        """Append each row's tool turn (as in :meth:`think_after_tools`), then decode in the new assistant turn
        (e.g. the next tool call). The result's ``prompt_tokens`` are the tool-turn tokens fed per row."""
        opts = options or DecodeOptions()
        fed = feed_tools(self, handle, results, agent, 1, opts.max_new_tokens)
        *_, decoded = generate_text(self, fed, opts, agent=agent, stream=False, constraint=constraint)
        return decoded  # type: ignore[return-value]

    def __repr__(self) -> str:
        fields = f"{self.name!r}, realign={self.realigner.name}, device={self.device}, dtype={self.dtype}"
        return f"LocalLatentModel({fields})"
