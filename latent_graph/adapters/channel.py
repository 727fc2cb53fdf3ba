"""A trained latent channel: the hidden→input map learned end to end through the frozen model.

Why: the training-free realigners (ridge, soft, kNN, blend) and the (instruction, target)
adapters leave "thoughts only" relays at the no-edge floor: a receiver that keeps only the
sender's latent columns (``memory="latent"``) cannot read the fact back. Here the map is
trained on exactly that condition:

- **sender**: the model prefills its prompt (context + question; no gradient), then takes
  ``steps`` latent steps ``e_i = A(h_i)`` *with* gradient (a differentiable copy of
  :meth:`LocalLatentModel.think`'s loop);
- **receiver**: a fresh reader whose cache is *only* the sender's ``steps`` latent K/V
  columns (positions kept, as :meth:`LatentHandle.with_memory` does), then its own prompt,
  teacher-forced on the gold answer + end-of-turn token;
- **loss**: the receiver's cross-entropy on the answer tokens. Only ``A`` (a
  :class:`~latent_graph.adapters.modules.ChannelAdapter`, started at the ridge W_a) is
  trained; the model stays frozen.

The result is an :class:`AdapterRealigner` (safetensors + model fingerprint) that plugs in
wherever ``realign="ridge"`` does. Prompts are plain strings, so the caller decides the
layout (``benchmarks/train_channel.py`` uses the compact relay layout of relay6).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from latent_graph.adapters.modules import ChannelAdapter
from latent_graph.adapters.trained_realigner import AdapterRealigner
from latent_graph.engine import RidgeRealigner, encode_prompts, from_cache, positions_after
from latent_graph.errors import InvalidArgumentError


@dataclass(frozen=True)
class ChannelExample:
    """One relay: what the sender reads, what the receiver is asked, the gold answer text."""

    sender: str
    receiver: str
    answer: str


@dataclass
class ChannelConfig:
    """Training knobs (all seeded; ``time_budget_s`` stops early and keeps the best weights)."""

    steps: int = 4
    lr: float = 3e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    epochs: int = 3
    eval_every: int = 20
    patience: int = 4
    seed: int = 0
    time_budget_s: float = 600.0


@dataclass
class ChannelResult:
    realigner: AdapterRealigner
    history: list[dict[str, float]]
    val_history: list[dict[str, float]]
    best_val: float
    wall_s: float


def ridge_channel(model: Any) -> ChannelAdapter:
    """A ChannelAdapter equal to ``model``'s ridge realigner (the starting point)."""
    ridge = model.with_realigner("ridge").realigner
    if not isinstance(ridge, RidgeRealigner):
        raise InvalidArgumentError("the channel starts from the ridge realigner")
    module = ChannelAdapter(model.hidden_size, model.hidden_size)
    return module.init_from(ridge.matrix.cpu(), ridge.target_norm).to(model.device)


def _answer_ids(model: Any, answer: str) -> list[int]:
    eos = model.tokenizer.eos_token_id
    eos = eos if eos is not None else min(model.eos_ids)
    return list(model.tokenizer(answer, add_special_tokens=False)["input_ids"]) + [int(eos)]


def sender_latents(
    model: Any, module: nn.Module, prompts: Sequence[str], steps: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Prefill ``prompts`` (no grad), take ``steps`` latent steps through ``module`` (with grad).

    Returns the latent K/V columns per layer, each ``(B, H_kv, steps, D)``, and the position
    of each row's first latent column ``(B,)``.
    """
    dev = model.device
    ids, mask = encode_prompts(model.tokenizer, list(prompts), None, True, dev)  # (B, n) left-padded
    pos = positions_after(mask.new_zeros(mask.shape[0]), mask)  # (B, n)
    with torch.no_grad():
        out = model.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    cache, h = out.cache, out.last_hidden_state[:, -1]  # (B, H)
    start = mask.sum(dim=1)  # (B,)
    n0 = ids.shape[1]
    for i in range(steps):
        e = module(h.float()).to(model.dtype)  # (B, H)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        out = model.base(
            inputs_embeds=e[:, None],
            attention_mask=mask,
            position_ids=(start + i)[:, None],
            cache=cache,
            use_cache=True,
        )
        cache, h = out.cache, out.last_hidden_state[:, -1]
    keys, values = from_cache(cache)
    return [(k[:, :, n0 : n0 + steps], v[:, :, n0 : n0 + steps]) for k, v in zip(keys, values)], start


def channel_loss(model: Any, module: nn.Module, batch: Sequence[ChannelExample], steps: int) -> torch.Tensor:
    """Mean receiver cross-entropy on the answer tokens, reading only the sender's latent columns."""
    if model.layer != -1:
        raise InvalidArgumentError("channel training feeds back the final hidden state (layer=-1) only")
    dev = model.device
    latent_kv, start = sender_latents(model, module, [b.sender for b in batch], steps)
    rows, labels = [], []
    for b in batch:
        ids, _ = encode_prompts(model.tokenizer, [b.receiver], None, False, dev)  # after the sender's open turn
        prompt = [int(x) for x in ids[0]]
        ans = _answer_ids(model, b.answer)
        rows.append(prompt + ans)
        labels.append([-100] * (len(prompt) - 1) + ans + [-100])  # label of column j is token j + 1
    n = max(len(r) for r in rows)
    pid = model.tokenizer.pad_token_id or 0
    ids = torch.tensor([r + [pid] * (n - len(r)) for r in rows], device=dev)
    lab = torch.tensor([lb[:n] + [-100] * (n - len(lb[:n])) for lb in labels], device=dev)
    rmask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows], device=dev)
    mask = torch.cat([rmask.new_ones((len(rows), steps)), rmask], dim=1)
    pos = positions_after(start + steps, rmask)  # (B, n)
    cache = DynamicCache(ddp_cache_data=latent_kv)
    out = model.base(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
    hidden = out.last_hidden_state  # (B, n, H)
    sel = lab != -100
    logits = model.hf_model.get_output_embeddings()(hidden[sel]).float()  # (N, V)
    return nn.functional.cross_entropy(logits, lab[sel])


def _batches(data: Sequence[ChannelExample], size: int, rng: random.Random) -> list[list[ChannelExample]]:
    order = list(range(len(data)))
    rng.shuffle(order)
    return [[data[j] for j in order[i : i + size]] for i in range(0, len(order), size)]


def evaluate_channel(
    model: Any, module: nn.Module, data: Sequence[ChannelExample], steps: int, batch_size: int = 16
) -> float:
    """Mean receiver CE over ``data`` (no grad)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            chunk = data[i : i + batch_size]
            total += float(channel_loss(model, module, chunk, steps)) * len(chunk)
            count += len(chunk)
    return total / max(count, 1)


def train_channel(
    model: Any,
    train: Sequence[ChannelExample],
    val: Sequence[ChannelExample],
    config: ChannelConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> ChannelResult:
    """Train a ChannelAdapter (from ridge) on ``train``, keep the weights with the best ``val`` loss."""
    cfg = config or ChannelConfig()
    if not train or not val or cfg.steps < 1:
        raise InvalidArgumentError("channel training needs train and validation examples and steps >= 1")
    frozen = [(p, p.requires_grad) for p in model.hf_model.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        return _train(model, train, val, cfg, log)
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)


def _train(
    model: Any,
    train: Sequence[ChannelExample],
    val: Sequence[ChannelExample],
    cfg: ChannelConfig,
    log: Callable[[str], None] | None,
) -> ChannelResult:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    module = ridge_channel(model)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    best = evaluate_channel(model, module, val, cfg.steps)
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    history: list[dict[str, float]] = []
    val_history = [{"step": 0, "val_loss": best, "wall_s": time.perf_counter() - t0}]
    step, bad, stop = 0, 0, False
    for epoch in range(cfg.epochs):
        for batch in _batches(train, cfg.batch_size, rng):
            loss = channel_loss(model, module, batch, cfg.steps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            history.append({"step": step, "epoch": epoch, "loss": loss.item()})
            if step % cfg.eval_every == 0:
                v = evaluate_channel(model, module, val, cfg.steps)
                val_history.append({"step": step, "val_loss": v, "wall_s": time.perf_counter() - t0})
                if log:
                    recent = history[-cfg.eval_every :]
                    log(f"step {step} train {sum(h['loss'] for h in recent) / len(recent):.3f} val {v:.3f}")
                if v < best - 1e-4:
                    best, bad = v, 0
                    best_state = {k: t.detach().clone() for k, t in module.state_dict().items()}
                else:
                    bad += 1
                stop = bad >= cfg.patience or time.perf_counter() - t0 > cfg.time_budget_s
            if stop or not math.isfinite(history[-1]["loss"]):
                break
        if stop:
            break
    module.load_state_dict(best_state)
    wall = time.perf_counter() - t0
    info = {
        "objective": "relay",
        "config": asdict(cfg),
        "best_val": best,
        "train_steps": step,
        "wall_s": wall,
        "n_train": len(train),
        "n_val": len(val),
    }
    realigner = AdapterRealigner(module.cpu().eval(), model.fingerprint, info=info)
    return ChannelResult(realigner, history, val_history, best, wall)


__all__ = [
    "ChannelConfig",
    "ChannelExample",
    "ChannelResult",
    "channel_loss",
    "evaluate_channel",
    "ridge_channel",
    "sender_latents",
    "train_channel",
]
