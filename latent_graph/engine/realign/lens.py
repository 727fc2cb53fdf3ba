"""Looking inside latent thoughts: logit lens of hidden states, nearest input tokens of realigned vectors.

Both need a vocabulary-sized matmul, so they are opt-in (``inspect=k``); a latent
step itself never computes vocab logits.
"""

from __future__ import annotations

from typing import Any

import torch


@torch.no_grad()
def logit_lens(model: Any, hidden: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k vocabulary tokens (with probabilities) of hidden states (B, H) through the lm_head."""
    head = model.hf_model.get_output_embeddings()
    probs = torch.softmax(head(hidden.to(model.dtype)).float(), dim=-1)  # (B, V)
    top = probs.topk(k, dim=-1)
    return [
        [(model.tokenizer.decode([int(i)]), float(p)) for p, i in zip(ps, ids)]
        for ps, ids in zip(top.values, top.indices)
    ]


@torch.no_grad()
def nearest_tokens(model: Any, embedding: torch.Tensor, k: int = 1) -> list[list[tuple[str, float]]]:
    """Input-embedding rows nearest (cosine) to realigned vectors (B, H)."""
    unit = model.__dict__.get("_unit_embeddings")
    if unit is None:  # W_in normalised (V, H) once per model, not at every inspected step
        unit = model.__dict__["_unit_embeddings"] = torch.nn.functional.normalize(
            model.input_embedding_matrix().float(), dim=-1
        )
    e = torch.nn.functional.normalize(embedding.float(), dim=-1)  # (B, H)
    top = (e @ unit.T).topk(k, dim=-1)  # (B, k)
    return [
        [(model.tokenizer.decode([int(i)]), float(c)) for c, i in zip(cs, ids)]
        for cs, ids in zip(top.values, top.indices)
    ]
