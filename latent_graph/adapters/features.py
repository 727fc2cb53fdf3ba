"""What the frozen models contribute to adapter training and evaluation.

- :func:`source_hiddens`: the sender's hidden state after its chat-formatted
  instruction (exactly what ``think`` would realign first), computed once, no grad;
- :func:`target_ids`: the receiver's tokens of each target, plus EOS;
- :func:`receiver_context`: the receiver's own prefill of the instruction
  (context ``"prompt"``, how a realigner is used inside ``think``) or nothing
  (context ``"none"``: the receiver sees only the adapter output);
- :func:`receiver_logits`: the frozen receiver reading the adapter output *in
  place of the first target token* ``t0`` and then ``t1 … t_{n-2}`` teacher-forced,
  so its logits predict ``t1 … EOS``. Gradients flow to the adapter output only.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from latent_graph.adapters.errors import PairsFormatError
from latent_graph.engine import LatentHandle, positions_after, to_cache
from latent_graph.errors import InvalidArgumentError

CONTEXTS: tuple[str, ...] = ("prompt", "none")


@torch.no_grad()
def source_hiddens(model: Any, instructions: list[str], batch_size: int = 16, progress: bool = False) -> torch.Tensor:
    """Hidden state (N, H_src) of ``model`` after each chat-formatted instruction, fp32."""
    rows = []
    for i in tqdm(range(0, len(instructions), batch_size), desc="source hiddens", disable=not progress, leave=False):
        handle = model.think(None, instructions[i : i + batch_size], steps=0, agent="sender")
        rows.append(handle.last_hidden.float())  # (b, H_src)
    return torch.cat(rows)  # (N, H_src)


def target_ids(model: Any, targets: list[str]) -> list[list[int]]:
    """Receiver token ids of each target (no special tokens) followed by one EOS id."""
    tok = model.tokenizer
    eos = tok.eos_token_id if tok.eos_token_id is not None else min(model.eos_ids)
    out = []
    for t in targets:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        if not ids:
            raise PairsFormatError(f"target {t!r} tokenizes to nothing for model {model.name!r}")
        out.append([*ids, int(eos)])
    return out


def target_embeddings(model: Any, ids: list[list[int]]) -> torch.Tensor:
    """Input embedding (N, H_dst) of each target's first token t0, as the model sees it."""
    w = model.input_embedding_matrix().float()  # (V, H)
    return w[torch.tensor([t[0] for t in ids], device=w.device)]


@torch.no_grad()
def receiver_context(model: Any, instructions: list[str], context: str) -> LatentHandle | None:
    """The receiver's prefix before the adapter output: its own prompt prefill, or None."""
    if context not in CONTEXTS:
        raise InvalidArgumentError(f"context must be one of {CONTEXTS}, got {context!r}")
    return model.think(None, instructions, steps=0, agent="receiver") if context == "prompt" else None


def receiver_logits(
    model: Any, ctx: LatentHandle | None, e: torch.Tensor, ids: list[list[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the receiver reading ``e`` (B, H) as t0 then t1…; returns (logits (B, L, V), labels (B, L)).

    Labels are -100 on right padding. Differentiable with respect to ``e``.
    """
    B, dev = e.shape[0], model.device
    L = max(len(t) for t in ids) - 1  # predictions t1..EOS
    tok_in = torch.zeros((B, max(L - 1, 0)), dtype=torch.long, device=dev)  # (B, L-1) inputs t1..t_{n-2}
    labels = torch.full((B, L), -100, dtype=torch.long, device=dev)  # (B, L)
    mask = torch.zeros((B, L), dtype=torch.long, device=dev)  # (B, L)
    for b, t in enumerate(ids):
        n = len(t) - 1
        labels[b, :n] = torch.tensor(t[1:], device=dev)
        mask[b, :n] = 1
        if n > 1:
            tok_in[b, : n - 1] = torch.tensor(t[1:-1], device=dev)
    embeds = torch.cat([e[:, None].to(dev), model.hf_model.get_input_embeddings()(tok_in).float()], dim=1)  # (B, L, H)
    start = ctx.next_positions() if ctx is not None else torch.zeros(B, dtype=torch.long, device=dev)
    pos = positions_after(start, mask)  # (B, L): the engine's position rule
    full_mask = torch.cat([ctx.attention_mask, mask], dim=1) if ctx is not None else mask  # (B, T + L)
    out = model.hf_model(
        inputs_embeds=embeds.to(model.dtype),
        attention_mask=full_mask,
        position_ids=pos,
        cache=to_cache(ctx) if ctx is not None else None,
        use_cache=ctx is not None,
    )
    return out.logits.float(), labels  # (B, L, V), (B, L)


def continuation_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over non-padding labels."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
