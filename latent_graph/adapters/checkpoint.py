"""Resumable training state on disk, without pickle.

A checkpoint folder holds:

- ``adapter.safetensors`` / ``best.safetensors``: current and best module weights;
- ``optimizer.safetensors``: AdamW's per-parameter tensors (``step``, ``exp_avg``,
  ``exp_avg_sq``), keyed ``state.<param index>.<name>``;
- ``state.json``: step, loss history, early-stopping state and the config/data
  digest the run belongs to.

Everything is read back with ``safetensors`` and ``json`` only — never
``torch.load`` — so a checkpoint cannot execute code. Loss curves are written
next to it as JSON and CSV (and PNG when matplotlib happens to be installed).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latent_graph.adapters.errors import CheckpointError


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def save_checkpoint(
    folder: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    best: dict[str, torch.Tensor] | None,
) -> None:
    """Write module, optimizer, best weights and JSON state into ``folder`` (each file atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    _save_tensors(dict(module.state_dict()), folder / "adapter.safetensors")
    opt: dict[str, torch.Tensor] = {}
    for idx, slots in optimizer.state_dict()["state"].items():
        for name, value in slots.items():
            opt[f"state.{idx}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    _save_tensors(opt or {"empty": torch.zeros(0)}, folder / "optimizer.safetensors")
    if best is not None:
        _save_tensors(best, folder / "best.safetensors")
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(folder / "state.json")


def load_checkpoint(
    folder: Path, module: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore module and optimizer in place; returns (JSON state, best weights or None)."""
    try:
        state = json.loads((folder / "state.json").read_text())
        module.load_state_dict(load_file(str(folder / "adapter.safetensors")), strict=True)
        flat = load_file(str(folder / "optimizer.safetensors"))
        best_path = folder / "best.safetensors"
        best = load_file(str(best_path)) if best_path.exists() else None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint in {folder} is unreadable ({exc}); delete it or pass resume=False") from exc
    slots = _optimizer_slots(flat, optimizer, folder)
    try:
        optimizer.load_state_dict({"state": slots, "param_groups": optimizer.state_dict()["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state in {folder} does not fit this adapter ({exc})") from exc
    return state, best


ADAMW_SLOTS = ("step", "exp_avg", "exp_avg_sq")


def _optimizer_slots(
    flat: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, folder: Path
) -> dict[int, dict[str, torch.Tensor]]:
    """Per-parameter AdamW slots from ``state.<index>.<name>`` keys, each checked against its parameter.

    A tampered file (unknown keys, indices past the parameters, moments of another shape or dtype,
    non-finite values) raises :class:`CheckpointError` here instead of failing at the next step.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        if key == "empty" and value.numel() == 0:
            continue
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() or parts[2] not in ADAMW_SLOTS:
            raise CheckpointError(f"optimizer state in {folder}: unexpected entry {key[:80]!r}")
        idx, name = int(parts[1]), parts[2]
        if idx >= len(params):
            raise CheckpointError(f"optimizer state in {folder}: entry {key!r} names parameter {idx} of {len(params)}")
        want = () if name == "step" else tuple(params[idx].shape)
        if tuple(value.shape) != want or not value.is_floating_point() or not torch.isfinite(value).all():
            raise CheckpointError(
                f"optimizer state in {folder}: {key} is {value.dtype} {tuple(value.shape)}, "
                f"expected finite floats of shape {want}"
            )
        slots.setdefault(idx, {})[name] = value
    for idx, got in slots.items():
        if set(got) != set(ADAMW_SLOTS):
            raise CheckpointError(
                f"optimizer state in {folder}: parameter {idx} has {sorted(got)}, expected {list(ADAMW_SLOTS)}"
            )
    return slots


def has_checkpoint(folder: Path) -> bool:
    return (folder / "state.json").is_file()


def write_curves(out_dir: Path, history: list[dict[str, float]], val_history: list[dict[str, float]]) -> list[Path]:
    """Write ``loss_curve.json`` and ``loss_curve.csv`` (+ ``loss_curve.png`` if matplotlib is importable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "loss_curve.json", out_dir / "loss_curve.csv"]
    paths[0].write_text(json.dumps({"train": history, "val": val_history}, indent=1))
    val_at = {int(v["step"]): v for v in val_history}
    with paths[1].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "align", "ce", "val_loss", "val_align", "val_ce"])
        for h in history:
            v = val_at.get(int(h["step"]), {})
            w.writerow(
                [
                    h["step"],
                    h["loss"],
                    h["align"],
                    h["ce"],
                    v.get("val_loss", ""),
                    v.get("val_align", ""),
                    v.get("val_ce", ""),
                ]
            )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return paths
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train loss")
    if val_history:
        ax.plot([v["step"] for v in val_history], [v["val_loss"] for v in val_history], "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("hybrid loss")
    ax.legend()
    fig.savefig(out_dir / "loss_curve.png", dpi=100)
    plt.close(fig)
    return [*paths, out_dir / "loss_curve.png"]
