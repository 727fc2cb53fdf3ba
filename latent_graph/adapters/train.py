"""Train an adapter against frozen model(s) with a hybrid loss.

    loss = align_weight · align(e, E_dst[t0]) + ce_weight · CE(receiver | e, t1…EOS)

``e = adapter(h_src)`` where ``h_src`` is the sender's hidden state after the
instruction; ``align`` is MSE normalised by the mean squared norm of the
receiver's input embeddings (or ``1 - cosine``); CE is the frozen receiver's
next-token loss when it reads ``e`` in place of the target's first token (see
:mod:`latent_graph.adapters.features`). AdamW at a constant learning rate;
early stopping on a seeded validation split with patience / min-delta; the best
weights are kept. Batches depend only on (seed, step), so a run resumed from its
checkpoint gives bit-identical weights to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from latent_graph.adapters import checkpoint as ckpt
from latent_graph.adapters.data import Pair
from latent_graph.adapters.errors import CheckpointError
from latent_graph.adapters.features import (
    CONTEXTS,
    continuation_ce,
    receiver_context,
    receiver_logits,
    source_hiddens,
    target_embeddings,
    target_ids,
)
from latent_graph.adapters.modules import KINDS, build_adapter
from latent_graph.adapters.trained_realigner import AdapterRealigner
from latent_graph.errors import InvalidArgumentError

# Fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = {"steps", "save_every"}


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_adapter` (all JSON-able)."""

    kind: str = "linear"  # "linear" | "mlp"
    hidden_dim: int | None = None  # MLP width (default 2·H_dst)
    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    align_weight: float = 1.0
    align_loss: str = "mse"  # "mse" | "cosine"
    ce_weight: float = 1.0
    context: str = "prompt"  # receiver prefix: its own prompt prefill, or "none"
    init: str = "lstsq"  # linear only: "lstsq" (ridge fit on training features) | "random"
    val_fraction: float = 0.1
    eval_every: int = 20
    patience: int = 3
    min_delta: float = 1e-3
    save_every: int = 20
    seed: int = 0

    def validate(self) -> None:
        checks = [
            (self.kind in KINDS, f"kind must be one of {KINDS}"),
            (self.align_loss in ("mse", "cosine"), "align_loss must be 'mse' or 'cosine'"),
            (self.context in CONTEXTS, f"context must be one of {CONTEXTS}"),
            (self.init in ("lstsq", "random"), "init must be 'lstsq' or 'random'"),
            (self.steps >= 0 and self.batch_size >= 1, "steps must be >= 0 and batch_size >= 1"),
            (self.lr > 0 and self.align_weight >= 0 and self.ce_weight >= 0, "lr > 0 and loss weights >= 0"),
            (self.align_weight + self.ce_weight > 0, "at least one loss weight must be > 0"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (
                self.eval_every >= 1 and self.patience >= 1 and self.save_every >= 1,
                "eval_every, patience, save_every >= 1",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise InvalidArgumentError(f"bad TrainConfig: {msg}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    """What :func:`train_adapter` produced."""

    adapter: AdapterRealigner
    path: Path  # the saved adapter file
    step: int  # optimizer steps done
    history: list[dict[str, float]] = field(default_factory=list)
    val_history: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    finished: bool = False


class _Problem:
    """Frozen-model tensors of one training run (features, targets, split)."""

    def __init__(self, src: Any, dst: Any, pairs: list[Pair], cfg: TrainConfig, out_dir: Path, progress: bool):
        self.src, self.dst, self.cfg = src, dst, cfg
        self.instructions = [p.instruction for p in pairs]
        self.ids = target_ids(dst, [p.target for p in pairs])
        self.t_emb = target_embeddings(dst, self.ids)  # (N, H_dst)
        w = dst.input_embedding_matrix().float()  # (V, H_dst)
        self.emb_mean, self.emb_std = w.mean(0), w.std(0)  # (H_dst,)
        self.norm2 = float(w.pow(2).sum(-1).mean())
        blob = json.dumps([src.fingerprint.digest, dst.fingerprint.digest, [(p.instruction, p.target) for p in pairs]])
        self.digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.feats = _cached_features(src, self.instructions, out_dir / "features.safetensors", self.digest, progress)
        n = len(pairs)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
        n_val = min(n - 1, round(n * cfg.val_fraction)) if cfg.val_fraction > 0 else 0
        self.val_idx, self.train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values

    def batch(self, step: int) -> torch.Tensor:
        bs = min(self.cfg.batch_size, len(self.train_idx))
        per_epoch = math.ceil(len(self.train_idx) / bs)
        epoch, i = divmod(step, per_epoch)
        perm = torch.randperm(
            len(self.train_idx), generator=torch.Generator().manual_seed(self.cfg.seed + 7919 * (epoch + 1))
        )
        return self.train_idx[perm[i * bs : (i + 1) * bs]]

    def losses(self, module: torch.nn.Module, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(hybrid loss, align, ce) on rows ``idx``; differentiable w.r.t. the module."""
        cfg = self.cfg
        e = module(self.feats[idx])  # (b, H_dst)
        tgt = self.t_emb[idx]  # (b, H_dst)
        if cfg.align_loss == "mse":
            align = (e - tgt).pow(2).sum(-1).mean() / self.norm2
        else:
            align = (1 - torch.nn.functional.cosine_similarity(e, tgt, dim=-1)).mean()
        ce = torch.zeros((), device=e.device)
        if cfg.ce_weight > 0:
            rows = idx.tolist()
            ctx = receiver_context(self.dst, [self.instructions[i] for i in rows], cfg.context)
            logits, labels = receiver_logits(self.dst, ctx, e, [self.ids[i] for i in rows])
            ce = continuation_ce(logits, labels)
        return cfg.align_weight * align + cfg.ce_weight * ce, align, ce

    @torch.no_grad()
    def validate(self, module: torch.nn.Module) -> dict[str, float]:
        tot = {"val_loss": 0.0, "val_align": 0.0, "val_ce": 0.0}
        for chunk in self.val_idx.split(self.cfg.batch_size):
            parts = self.losses(module, chunk)
            for key, v in zip(tot, parts):
                tot[key] += float(v) * len(chunk) / len(self.val_idx)
        return tot

    def init_module(self, module: torch.nn.Module) -> None:
        with torch.no_grad():
            if self.cfg.kind == "mlp":
                module.norm_out.weight.copy_(self.emb_std)
                module.norm_out.bias.copy_(self.emb_mean)
            elif self.cfg.init == "lstsq":
                x = self.feats[self.train_idx]  # (n, H_src)
                x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1)  # (n, H_src + 1)
                gram = x1.T @ x1
                lam = 1e-2 * float(gram.diagonal().mean())
                sol = torch.linalg.solve(gram + lam * torch.eye(len(gram)), x1.T @ self.t_emb[self.train_idx])
                module.proj.weight.copy_(sol[:-1].T)
                module.proj.bias.copy_(sol[-1])


def _cached_features(model: Any, instructions: list[str], path: Path, digest: str, progress: bool) -> torch.Tensor:
    if path.is_file():
        try:
            data = load_file(str(path))
            if data.get("digest_check") is not None and bytes(data["digest_check"].tolist()).decode() == digest:
                return data["feats"]
        except Exception:
            pass  # stale or corrupt cache: recompute
    feats = source_hiddens(model, instructions, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"feats": feats.contiguous(), "digest_check": torch.tensor(list(digest.encode()), dtype=torch.uint8)}, str(path)
    )
    return feats


def train_adapter(
    model: Any,
    pairs: list[Pair],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    target_model: Any = None,
    resume: bool = True,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train an adapter from ``model``'s hidden space into ``target_model``'s input space.

    Args:
        model: Source (sender) LocalLatentModel, frozen.
        pairs: Training pairs; a seeded ``val_fraction`` of them drives early stopping.
        out_dir: Folder for ``adapter.safetensors``, loss curves, features and ``checkpoint/``.
        config: Hyper-parameters (default :class:`TrainConfig`).
        target_model: Receiver model (default: ``model`` itself → a same-model realigner).
        resume: Continue from ``out_dir/checkpoint`` if present.
        stop_at: Stop (checkpointed, unfinished) once this global step is reached — as if interrupted.
        progress: Show tqdm progress bars.

    Returns:
        A :class:`TrainResult`; the adapter holds the best-validation weights (last ones without validation).
    """
    cfg = config or TrainConfig()
    cfg.validate()
    if not pairs:
        raise InvalidArgumentError("no training pairs")
    out_dir = Path(out_dir)
    dst = target_model or model
    prob = _Problem(model, dst, pairs, cfg, out_dir, progress)
    torch.manual_seed(cfg.seed)
    module = build_adapter(cfg.kind, model.hidden_size, dst.hidden_size, cfg.hidden_dim).to(dst.device)
    prob.init_module(module)
    params = list(module.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    folder = out_dir / "checkpoint"
    state: dict[str, Any] = {
        "step": 0,
        "history": [],
        "val_history": [],
        "best_val": None,
        "best_step": None,
        "bad_evals": 0,
        "stopped_early": False,
        "config": asdict(cfg),
        "data_digest": prob.digest,
    }
    best: dict[str, torch.Tensor] | None = None
    if resume and ckpt.has_checkpoint(folder):
        saved, best = ckpt.load_checkpoint(folder, module, opt)
        _check_same_run(saved, state, folder)
        state.update({k: v for k, v in saved.items() if k not in ("config",)})
    module.train()
    bar = tqdm(total=cfg.steps, initial=state["step"], desc=f"train {cfg.kind} adapter", disable=not progress)
    while state["step"] < cfg.steps and not state["stopped_early"]:
        if stop_at is not None and state["step"] >= stop_at:
            break
        loss, align, ce = prob.losses(module, prob.batch(state["step"]))
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        opt.step()
        state["step"] += 1
        state["history"].append({"step": state["step"], "loss": loss.item(), "align": align.item(), "ce": ce.item()})
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if len(prob.val_idx) and (state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps):
            best = _early_stopping(prob, module, cfg, state, best)
        if state["step"] % cfg.save_every == 0:
            ckpt.save_checkpoint(folder, module, opt, state, best)
    bar.close()
    finished = state["step"] >= cfg.steps or state["stopped_early"]
    state["finished"] = finished
    ckpt.save_checkpoint(folder, module, opt, state, best)
    if best is not None:
        module.load_state_dict(best)
    module.eval()
    info = {
        "config": asdict(cfg),
        "step": state["step"],
        "best_step": state["best_step"],
        "best_val": state["best_val"],
        "stopped_early": state["stopped_early"],
        "n_train": len(prob.train_idx),
        "n_val": len(prob.val_idx),
        "data_digest": prob.digest,
    }
    adapter = AdapterRealigner(module, model.fingerprint, dst.fingerprint, info)
    path = adapter.save(out_dir / "adapter.safetensors")
    ckpt.write_curves(out_dir, state["history"], state["val_history"])
    return TrainResult(
        adapter,
        path,
        state["step"],
        state["history"],
        state["val_history"],
        state["best_step"],
        state["stopped_early"],
        finished,
    )


def _early_stopping(
    prob: _Problem,
    module: torch.nn.Module,
    cfg: TrainConfig,
    state: dict[str, Any],
    best: dict[str, torch.Tensor] | None,
) -> dict[str, torch.Tensor] | None:
    module.eval()
    val = prob.validate(module)
    module.train()
    state["val_history"].append({"step": state["step"], **val})
    if state["best_val"] is None or val["val_loss"] < state["best_val"] - cfg.min_delta:
        state.update(best_val=val["val_loss"], best_step=state["step"], bad_evals=0)
        return {k: v.detach().clone() for k, v in module.state_dict().items()}
    state["bad_evals"] += 1
    if state["bad_evals"] >= cfg.patience:
        state["stopped_early"] = True
    return best


def _check_same_run(saved: dict[str, Any], now: dict[str, Any], folder: Path) -> None:
    old = {k: v for k, v in saved.get("config", {}).items() if k not in _RESUMABLE_CHANGES}
    new = {k: v for k, v in now["config"].items() if k not in _RESUMABLE_CHANGES}
    if old != new or saved.get("data_digest") != now["data_digest"]:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        what = f"config fields {diff}" if diff else "training data or models"
        raise CheckpointError(
            f"checkpoint in {folder} belongs to another run ({what} differ); use a new output folder or resume=False"
        )
