"""The trainable maps themselves: hidden state of model A → input embedding of model B.

Two shapes from the literature:

- :class:`LinearAdapter` — one affine projector (``W h + b``); cheap, and on the
  same model it is the trained counterpart of the ridge matrix W_a;
- :class:`MLPAdapter` — LayerNorm → Linear → GELU → Linear → LayerNorm; the
  output LayerNorm's gain/bias are initialised to the target embedding table's
  scale and mean so outputs start at the right norm;
- :class:`ChannelAdapter` — ``g · normalize(W h + b)``: the ridge realigner with a
  trainable matrix and output norm (start it from W_a, see
  :mod:`latent_graph.adapters.channel`, which trains it end to end through the model).

Both are plain ``nn.Module`` s over the last dimension, ``(..., H_src) → (..., H_dst)``,
and describe themselves with :meth:`config` so a file can rebuild them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from latent_graph.adapters.errors import AdapterFileError

KINDS: tuple[str, ...] = ("linear", "mlp", "channel")


class LinearAdapter(nn.Module):
    """``e = h Wᵀ + b``: (..., src_dim) → (..., dst_dim)."""

    kind = "linear"

    def __init__(self, src_dim: int, dst_dim: int) -> None:
        super().__init__()
        self.src_dim, self.dst_dim = int(src_dim), int(dst_dim)
        self.proj = nn.Linear(self.src_dim, self.dst_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)  # (..., dst_dim)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "src_dim": self.src_dim, "dst_dim": self.dst_dim}


class MLPAdapter(nn.Module):
    """LayerNorm → Linear → GELU → Linear → LayerNorm: (..., src_dim) → (..., dst_dim)."""

    kind = "mlp"

    def __init__(self, src_dim: int, dst_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.src_dim, self.dst_dim = int(src_dim), int(dst_dim)
        self.hidden_dim = int(hidden_dim or 2 * dst_dim)
        self.norm_in = nn.LayerNorm(self.src_dim)
        self.fc1 = nn.Linear(self.src_dim, self.hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(self.hidden_dim, self.dst_dim)
        self.norm_out = nn.LayerNorm(self.dst_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(self.norm_in(hidden)))  # (..., hidden_dim)
        return self.norm_out(self.fc2(x))  # (..., dst_dim)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "src_dim": self.src_dim, "dst_dim": self.dst_dim, "hidden_dim": self.hidden_dim}


class ChannelAdapter(LinearAdapter):
    """``e = g · (W h + b) / ‖W h + b‖``: (..., dim) → (..., dim), one learned output norm ``g``."""

    kind = "channel"

    def __init__(self, src_dim: int, dst_dim: int) -> None:
        super().__init__(src_dim, dst_dim)
        self.gain = nn.Parameter(torch.ones(1))

    def init_from(self, matrix: torch.Tensor, norm: float) -> ChannelAdapter:
        """Start at a ridge realigner: ``matrix`` (src_dim, dst_dim) as in ``e = h @ matrix``, rescaled to ``norm``."""
        with torch.no_grad():
            self.proj.weight.copy_(matrix.float().T)
            self.proj.bias.zero_()
            self.gain.fill_(float(norm))
        return self

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        e = self.proj(hidden)  # (..., dst_dim)
        return e * (self.gain / e.norm(dim=-1, keepdim=True).clamp_min(1e-6))


def build_adapter(kind: str, src_dim: int, dst_dim: int, hidden_dim: int | None = None) -> nn.Module:
    """A fresh adapter module of ``kind`` ("linear", "mlp" or "channel")."""
    if kind == "linear":
        return LinearAdapter(src_dim, dst_dim)
    if kind == "mlp":
        return MLPAdapter(src_dim, dst_dim, hidden_dim)
    if kind == "channel":
        return ChannelAdapter(src_dim, dst_dim)
    raise AdapterFileError(f"unknown adapter kind {kind!r}; choose one of {KINDS}")


def from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a module from :meth:`config` output (weights not loaded)."""
    try:
        return build_adapter(config["kind"], config["src_dim"], config["dst_dim"], config.get("hidden_dim"))
    except (KeyError, TypeError, ValueError) as exc:
        raise AdapterFileError(f"invalid adapter module config {config!r}: {exc}") from exc
