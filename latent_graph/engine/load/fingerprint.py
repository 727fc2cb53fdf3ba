"""Model fingerprints: the identity a latent handle carries.

Latent state (KV cache, hidden states) only means something to the exact model
that produced it. A :class:`ModelFingerprint` summarises that identity —
tokenizer vocabulary, embedding and head weights, architecture config and the
hidden layer used for latent steps — into one short digest that handles and
adapters carry and check before use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from latent_graph.engine.load.quantize import quantization_of
from latent_graph.errors import ModelMismatchError

_CONFIG_KEYS = (
    "model_type",
    "hidden_size",
    "n_embd",
    "num_hidden_layers",
    "n_layer",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "rope_theta",
    "tie_word_embeddings",
)


@dataclass(frozen=True)
class ModelFingerprint:
    """Identity of a model as far as latent state is concerned.

    Attributes:
        name: Human-readable model name (not part of the digest).
        digest: Short hex digest over everything below.
        vocab_hash: sha256 of the tokenizer vocabulary.
        embed_checksum: sha256 of (strided rows of) the input embedding matrix.
        head_checksum: sha256 of (strided rows of) the output head.
        config: The architecture fields that matter (model_type, sizes..., and the
            quantization mode of a 4-bit/8-bit model).
        layer: Hidden layer used for latent steps (-1 = final norm output).
        kv_shape: (layers, KV heads, head_dim) of the KV cache the model reads and writes, None when
            unknown; what persistence checks a stored handle against before reading it. Not part of the
            digest (the config fields already are) nor of equality.
    """

    name: str
    digest: str
    vocab_hash: str
    embed_checksum: str
    head_checksum: str
    config: dict[str, Any]
    layer: int = -1
    kv_shape: tuple[int, int, int] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kv_shape is not None:  # JSON (handle headers, adapter files) gives a list
            object.__setattr__(self, "kv_shape", tuple(int(x) for x in self.kv_shape))

    def __str__(self) -> str:
        return f"'{self.name}' (fingerprint {self.digest})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelFingerprint:
        return cls(**json.loads(text))

    def check(self, other: ModelFingerprint, what: str = "latent handle") -> None:
        """Raise :class:`ModelMismatchError` unless ``other`` is the same model."""
        if self.digest != other.digest:
            raise ModelMismatchError(str(self), str(other), what)


def _tensor_checksum(weight: torch.Tensor, max_rows: int = 4096) -> str:
    """sha256 over at most ``max_rows`` evenly strided rows, in fp32, on CPU."""
    w = weight.detach()
    stride = max(1, w.shape[0] // max_rows)
    rows = w[::stride].to(device="cpu", dtype=torch.float32).contiguous()
    return hashlib.sha256(rows.numpy().tobytes()).hexdigest()[:16]


def _vocab_hash(tokenizer: Any) -> str:
    vocab = tokenizer.get_vocab()
    payload = json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def kv_shape(cfg: Any) -> tuple[int, int, int] | None:
    """(layers, KV heads, head_dim) from a transformers text config, None when it does not say."""
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", None)
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    hidden = getattr(cfg, "hidden_size", None)
    head_dim = getattr(cfg, "head_dim", None) or (hidden // heads if heads and hidden else None)
    return (int(layers), int(kv), int(head_dim)) if layers and kv and head_dim else None


def compute_fingerprint(model: Any, tokenizer: Any, name: str, layer: int = -1) -> ModelFingerprint:
    """Fingerprint a loaded HF causal LM and its tokenizer."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    config = {k: getattr(cfg, k) for k in _CONFIG_KEYS if getattr(cfg, k, None) is not None}
    quantized = quantization_of(model)
    if quantized is not None:  # same embeddings and head, other decoder weights: other latent state
        config["quantization"] = quantized
    embed = _tensor_checksum(model.get_input_embeddings().weight)
    head_module = model.get_output_embeddings()
    head = _tensor_checksum(head_module.weight) if head_module is not None else embed
    vocab = _vocab_hash(tokenizer)
    blob = json.dumps([vocab, embed, head, config, layer], sort_keys=True, default=str).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return ModelFingerprint(name, digest, vocab, embed, head, config, layer, kv_shape(cfg))
