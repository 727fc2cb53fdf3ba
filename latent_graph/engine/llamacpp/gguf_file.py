"""What the llama.cpp engine reads of a GGUF file itself (llama.cpp reads the rest).

- the sizes a handle's cache is shaped by (layers, KV heads, head size) and the training context;
- the input embedding and output matrices, dequantized to fp32 with the ``gguf`` package: the same
  ridge realigner as the transformers engine is solved from them, and the logit lens reads them;
- the tokenizer, rebuilt by transformers from the file's metadata, so prompts, tool turns and decoding
  constraints render exactly as on the transformers engine;
- the :class:`~latent_graph.engine.load.fingerprint.ModelFingerprint`: the tokenizer, the raw (quantized)
  bytes of the embedding and output tensors, a sample of every other tensor, the sizes and the engine
  (a llama.cpp cache is not a transformers one: handles of the two engines never mix).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from latent_graph.engine.load.fingerprint import ModelFingerprint
from latent_graph.errors import ModelLoadError

ENGINE = "llamacpp"
"""The fingerprint's ``config["engine"]``: a handle of this engine is refused by the transformers engine."""
SAMPLE_BYTES = 4096
"""Bytes of each tensor's start and end hashed into the fingerprint (the embedding and output: all)."""


@dataclass(frozen=True)
class GGUFInfo:
    """The sizes and names the engine needs from one GGUF file."""

    path: Path
    arch: str
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx_train: int
    vocab_size: int
    rope_theta: float | None
    file_type: int | None
    eos_ids: frozenset[int]


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    value = f.contents()
    return value if value is not None else default


def open_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` of ``path`` (memory-mapped), or a named :class:`ModelLoadError`."""
    from gguf import GGUFReader

    try:
        return GGUFReader(str(path), "r")
    except Exception as exc:  # gguf raises ValueError/struct.error/OSError on foreign or damaged files
        raise ModelLoadError(f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc})") from exc


def read_info(path: Path, reader: Any | None = None) -> GGUFInfo:
    """The :class:`GGUFInfo` of ``path`` (named :class:`ModelLoadError` for a file that is no usable GGUF)."""
    r = reader if reader is not None else open_gguf(path)
    arch = _field(r, "general.architecture")
    if not isinstance(arch, str):
        raise ModelLoadError(f"{path}: GGUF without general.architecture")

    def num(key: str, default: Any = None) -> Any:
        return _field(r, f"{arch}.{key}", default)

    n_embd, n_head, n_layer = num("embedding_length"), num("attention.head_count"), num("block_count")
    if not all(isinstance(x, int) and x > 0 for x in (n_embd, n_head, n_layer)):
        raise ModelLoadError(f"{path}: {arch} GGUF without embedding_length/attention.head_count/block_count")
    n_head_kv = num("attention.head_count_kv", n_head)
    tokens = r.fields.get("tokenizer.ggml.tokens")
    if tokens is None:
        raise ModelLoadError(f"{path}: GGUF without a tokenizer (tokenizer.ggml.tokens)")
    eos = {_field(r, "tokenizer.ggml.eos_token_id"), _field(r, "tokenizer.ggml.eot_token_id")}
    return GGUFInfo(
        path=path,
        arch=arch,
        name=str(_field(r, "general.name", path.stem)),
        n_layer=int(n_layer),
        n_embd=int(n_embd),
        n_head=int(n_head),
        n_head_kv=int(n_head_kv),
        head_dim=int(num("attention.key_length", n_embd // n_head)),
        n_ctx_train=int(num("context_length", 2048)),
        vocab_size=len(tokens.data),
        rope_theta=num("rope.freq_base"),
        file_type=_field(r, "general.file_type"),
        eos_ids=frozenset(int(e) for e in eos if isinstance(e, int)),
    )


def _tensor(reader: Any, name: str) -> Any:
    return next((t for t in reader.tensors if t.name == name), None)


def _dequantized(t: Any) -> torch.Tensor:
    from gguf.quants import dequantize

    rows = int(t.shape[-1]) if len(t.shape) > 1 else 1  # GGUF shapes run fastest dimension first
    out = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(rows, int(t.shape[0]))
    return torch.from_numpy(out.copy())


def read_matrices(path: Path, reader: Any | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_in, W_out), each (V, H) fp32: the token embedding and the output head (the embedding when tied)."""
    r = reader if reader is not None else open_gguf(path)
    emb = _tensor(r, "token_embd.weight")
    if emb is None:
        raise ModelLoadError(f"{path}: GGUF without token_embd.weight")
    w_in = _dequantized(emb)
    head = _tensor(r, "output.weight")
    return w_in, (_dequantized(head) if head is not None else w_in)


def load_tokenizer(path: Path) -> Any:
    """The Hugging Face tokenizer transformers rebuilds from the file's metadata (vocabulary, merges, template)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # transformers raises many kinds for tokenizers it cannot convert
        raise ModelLoadError(f"{path}: cannot rebuild its tokenizer ({type(exc).__name__}: {exc})") from exc


def _tensor_digest(reader: Any) -> tuple[str, str, str]:
    """(embedding checksum, head checksum, digest of every tensor's name, type, shape and sampled bytes)."""
    h = hashlib.sha256()
    sums = {}
    for t in reader.tensors:
        raw = np.asarray(t.data).view(np.uint8).reshape(-1)
        h.update(json.dumps([t.name, int(t.tensor_type), [int(x) for x in t.shape]]).encode())
        if t.name in ("token_embd.weight", "output.weight"):
            sums[t.name] = hashlib.sha256(raw.tobytes()).hexdigest()[:16]
        else:
            h.update(raw[:SAMPLE_BYTES].tobytes())
            h.update(raw[-SAMPLE_BYTES:].tobytes())
    embed = sums.get("token_embd.weight", "")
    return embed, sums.get("output.weight", embed), h.hexdigest()[:16]


def gguf_fingerprint(info: GGUFInfo, tokenizer: Any, name: str, reader: Any | None = None) -> ModelFingerprint:
    """The identity handles of this engine carry (see the module docstring)."""
    r = reader if reader is not None else open_gguf(info.path)
    embed, head, tensors = _tensor_digest(r)
    vocab = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()).hexdigest()[
        :16
    ]
    config: dict[str, Any] = {
        "engine": ENGINE,
        "model_type": info.arch,
        "hidden_size": info.n_embd,
        "num_hidden_layers": info.n_layer,
        "num_attention_heads": info.n_head,
        "num_key_value_heads": info.n_head_kv,
        "vocab_size": info.vocab_size,
        "tensors": tensors,
    }
    if info.rope_theta is not None:
        config["rope_theta"] = float(info.rope_theta)
    if info.file_type is not None:
        config["file_type"] = int(info.file_type)
    layer = -1
    blob = json.dumps([vocab, embed, head, config, layer], sort_keys=True).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return ModelFingerprint(
        name, digest, vocab, embed, head, config, layer, (info.n_layer, info.n_head_kv, info.head_dim)
    )


class WeightView:
    """The two matrices of a GGUF model seen as a transformers model's embedding and output head, for the code
    that reads those (realigners, decoding constraints' vocabulary size, the logit lens, rows llama.cpp did not
    compute logits for). ``config`` says there is no attention to route (compressed edges score by key norm)."""

    def __init__(self, w_in: torch.Tensor, w_out: torch.Tensor) -> None:
        self._embed = torch.nn.Embedding.from_pretrained(w_in, freeze=True)
        self._head = torch.nn.Linear(w_out.shape[1], w_out.shape[0], bias=False)
        self._head.weight = torch.nn.Parameter(w_out, requires_grad=False)
        self.config = SimpleNamespace(_attn_implementation=None)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self._embed

    def get_output_embeddings(self) -> torch.nn.Linear:
        return self._head
