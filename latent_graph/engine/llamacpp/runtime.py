"""One llama.cpp model and context, driven through llama-cpp-python's low-level (ctypes) API.

The context has ``embeddings=True`` with pooling NONE, so every output position gives both its
final-norm hidden state (``llama_get_embeddings_ith``: the latent step's input to the realigner)
and its logits (``llama_get_logits_ith``: decoding). Its KV cells are one unified pool shared by
parallel sequences: batch row ``b`` of a call is sequence ``b``. Batches take either token ids or
input embeddings (``embd``: a latent step's realigned vector enters there).

llama-cpp-python is an optional extra, imported when a model is loaded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latent_graph.engine.load.quantize import QUANTIZATIONS
from latent_graph.errors import ContextOverflowError, InvalidArgumentError, LlamaCppError, ModelLoadError

GGUF_QUANTIZATIONS: tuple[str, ...] = ("q4_0", "q8_0")
"""Types a GGUF can be requantized to at first load (``LlamaCppLatentModel(quantization=...)``): llama.cpp's CPU
backend has fast prompt kernels for these (Q4_0 is repacked for AVX2/AVX-512 at load, Q8_0 goes through its
tinyBLAS matmul), while K-quants and Q4_1 prefill on the slower generic path. Q8_0 of a 4-bit file keeps its
values almost exactly; Q4_0 of a Q4_1 file rounds them again (outputs may differ)."""
INSTALL_HINT = 'pip install -e ".[llamacpp]"  (builds llama-cpp-python==0.3.36 from source)'


def free_cores() -> int:
    """Cores this process may use minus the 1-minute load average, at least 1 and never more than the cores:
    llama.cpp's threads spin, so more threads than free cores make every token slower."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the span of an engine call: its ops here are small (realign, argmax, copies), and
    on a busy CPU its OpenMP workers wait for each other (a 30 ms barrier for a microsecond copy was measured) and
    spin on the cores llama.cpp computes on. The previous setting comes back afterwards."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a named :class:`ModelLoadError` saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(f"the llama.cpp engine needs llama-cpp-python: {INSTALL_HINT} ({exc})") from exc
    return llama_cpp


def requantize(path: Path, kind: str, folder: Path) -> Path:
    """``path`` requantized to ``kind`` (one of :data:`GGUF_QUANTIZATIONS`) as ``folder/<kind>.gguf``, written once
    (through a temporary file renamed into place, so a concurrent loader sees all of it or nothing)."""
    if kind not in GGUF_QUANTIZATIONS:
        raise InvalidArgumentError(
            f"a GGUF can be requantized to one of {GGUF_QUANTIZATIONS}, not {kind!r} (the quantizations "
            f"{QUANTIZATIONS} are the transformers engine's)"
        )
    out = folder / f"{kind}.gguf"
    if out.is_file():
        return out
    llama_cpp = import_llama_cpp()
    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)  # its per-tensor log lines
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}")
    params.allow_requantize = True
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{kind}.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            if int(llama_cpp.llama_model_quantize(str(path).encode(), tmp.encode(), ctypes.byref(params))) != 0:
                raise ModelLoadError(f"llama.cpp could not requantize {path} to {kind}")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise ModelLoadError(f"cannot write the {kind} copy of {path} in {folder}: {exc}") from exc
    return out


class Runtime:
    """A loaded GGUF with one context (see the module docstring). Not thread-safe: the engine serialises calls.

    Args:
        path: The GGUF file.
        n_ctx: KV cells in the context, shared by all rows of a call.
        n_threads: Threads per decode (default :func:`free_cores`).
        n_seq_max: Most parallel sequences (batch rows) of one call.
        n_batch: Most tokens per ``llama_decode``; longer inputs go in several.
    """

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None, n_seq_max: int, n_batch: int) -> None:
        llama_cpp = import_llama_cpp()
        from llama_cpp import _internals

        # llama.cpp's logs: llama-cpp-python 0.3.36 maps ggml's WARN to logging.ERROR, so only CRITICAL keeps
        # its load and context chatter out of the CLI's output (failures surface as this engine's named errors)
        logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)

        self.lib = llama_cpp
        mparams = llama_cpp.llama_model_default_params()
        try:
            self.model = _internals.LlamaModel(path_model=str(path), params=mparams, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(f"llama.cpp cannot load {path}: {exc}") from exc
        self.n_threads = int(n_threads) if n_threads is not None else free_cores()
        if self.n_threads < 1:
            raise InvalidArgumentError(f"n_threads must be >= 1, got {n_threads!r}")
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, n_batch, n_batch, n_seq_max
        cp.n_threads = cp.n_threads_batch = self.n_threads
        cp.embeddings = True
        cp.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_NONE
        cp.kv_unified = True
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama_cpp.Llama's default
        try:
            self.context = _internals.LlamaContext(model=self.model, params=cp, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(f"llama.cpp cannot create a context for {path}: {exc}") from exc
        self.ctx = self.context.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.n_embd = int(llama_cpp.llama_model_n_embd(self.model.model))
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.model.vocab))
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_batch = n_batch
        self.n_seq_max = n_seq_max
        self._tokens = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._embeds = _internals.LlamaBatch(n_tokens=n_batch, embd=self.n_embd, n_seq_max=1, verbose=False)

    # ------------------------------------------------------------------ memory
    def clear(self) -> None:
        """Empty every sequence (each engine call starts from a clean pool: its cell layout is reproducible)."""
        self.lib.llama_memory_clear(self.mem, False)  # the cells' metadata: their data is overwritten when used

    def seq_rm(self, seq: int, p0: int, p1: int) -> None:
        """Drop sequence ``seq``'s cells at positions [p0, p1) (-1: open end)."""
        self.lib.llama_memory_seq_rm(self.mem, seq, p0, p1)

    def export_seq(self, seq: int) -> np.ndarray:
        """Sequence ``seq``'s cache in llama.cpp's sequence-state format (``llama_state_seq_get_data``)."""
        size = int(self.lib.llama_state_seq_get_size(self.ctx, seq))
        buf = np.empty(size, dtype=np.uint8)
        got = int(self.lib.llama_state_seq_get_data(self.ctx, _u8(buf), size, seq))
        return buf[:got]

    def probe_state(self) -> np.ndarray:
        """The exported state of one token (id 0) fed alone: what a sequence state of this model looks like."""
        self.clear()
        one = np.zeros(1, dtype=np.int32)
        self.decode(one, one, np.ones(1, dtype=np.int8), tokens=one)
        state = self.export_seq(0)
        self.clear()
        return state

    def import_seq(self, seq: int, data: np.ndarray) -> None:
        """Load a sequence state into (empty) sequence ``seq``."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if int(self.lib.llama_state_seq_set_data(self.ctx, _u8(data), data.size, seq)) == 0:
            raise ContextOverflowError(
                f"llama.cpp could not restore a cache of sequence {seq} ({data.size} bytes): "
                f"its {self.n_ctx} KV cells are full (load the model with a larger n_ctx)"
            )

    # ------------------------------------------------------------------ decode
    def decode(
        self,
        pos: np.ndarray,
        seq: np.ndarray,
        out: np.ndarray,
        *,
        tokens: np.ndarray | None = None,
        embeds: np.ndarray | None = None,
        logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Feed ``n`` entries (token ids, or input embeddings (n, H)) at positions ``pos`` of sequences ``seq``.

        Returns the (k, H) hidden states of the entries flagged in ``out`` (in order) and, with ``logits``,
        their (k, V) logits. With embeddings on, llama.cpp outputs every entry (an lm_head row each), so the
        entries not flagged go first in a pass with embeddings off and no outputs (every sequence's flagged
        entries are its last ones).
        """
        hidden = np.empty((int(out.sum()), self.n_embd), dtype=np.float32)
        scores = np.empty((hidden.shape[0], self.n_vocab), dtype=np.float32) if logits else None
        if tokens is not None and not out.all():
            rest = out == 0
            self.lib.llama_set_embeddings(self.ctx, False)
            try:
                self._run(pos[rest], seq[rest], out[rest], tokens[rest], None, hidden, scores)
            finally:
                self.lib.llama_set_embeddings(self.ctx, True)
            keep = ~rest
            pos, seq, out, tokens = pos[keep], seq[keep], out[keep], tokens[keep]
        self._run(pos, seq, out, tokens, embeds, hidden, scores)
        return hidden, scores

    def _run(
        self,
        pos: np.ndarray,
        seq: np.ndarray,
        out: np.ndarray,
        tokens: np.ndarray | None,
        embeds: np.ndarray | None,
        hidden: np.ndarray,
        scores: np.ndarray | None,
    ) -> None:
        n, k = int(pos.shape[0]), 0
        batch = (self._embeds if embeds is not None else self._tokens).batch
        for lo in range(0, n, self.n_batch):
            hi = min(n, lo + self.n_batch)
            m = hi - lo
            batch.n_tokens = m
            if embeds is not None:
                dst = np.ctypeslib.as_array(batch.embd, shape=(self.n_batch * self.n_embd,))
                dst[: m * self.n_embd] = np.ascontiguousarray(embeds[lo:hi], dtype=np.float32).reshape(-1)
            else:
                assert tokens is not None
                np.ctypeslib.as_array(batch.token, shape=(self.n_batch,))[:m] = tokens[lo:hi]
            np.ctypeslib.as_array(batch.pos, shape=(self.n_batch,))[:m] = pos[lo:hi]
            np.ctypeslib.as_array(batch.n_seq_id, shape=(self.n_batch,))[:m] = 1
            np.ctypeslib.as_array(batch.logits, shape=(self.n_batch,))[:m] = out[lo:hi]
            for i, s in enumerate(seq[lo:hi].tolist()):
                batch.seq_id[i][0] = s
            rc = int(self.lib.llama_decode(self.ctx, batch))
            if rc == 1:
                raise ContextOverflowError(
                    f"llama.cpp found no free KV cells for {m} more tokens: the context's {self.n_ctx} cells "
                    "hold every row of the batch (load the model with a larger n_ctx)"
                )
            if rc != 0:
                raise LlamaCppError(f"llama_decode failed with code {rc} on a batch of {m} entries")
            for i in np.flatnonzero(out[lo:hi]).tolist():
                ptr = self.lib.llama_get_embeddings_ith(self.ctx, i)
                hidden[k] = np.ctypeslib.as_array(ptr, shape=(self.n_embd,))
                if scores is not None:
                    row = self.lib.llama_get_logits_ith(self.ctx, i)
                    scores[k] = np.ctypeslib.as_array(row, shape=(self.n_vocab,))
                k += 1

    def set_threads(self, n_threads: int) -> None:
        self.n_threads = int(n_threads)
        self.lib.llama_set_n_threads(self.ctx, self.n_threads, self.n_threads)


def _u8(buf: np.ndarray) -> Any:
    return buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
