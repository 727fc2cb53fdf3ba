"""Realigners: map a last hidden state back into input-embedding space.

A latent step feeds the model's own output state back as its next input. Output
states live in the lm_head's space, inputs in the embedding table's space, so
LatentMAS maps one to the other with a ridge-regression matrix

    W_a = (W_outᵀ W_out + λ I)⁻¹ W_outᵀ W_in          # (d, d), solved in fp32

and rescales the result to the mean L2 norm of the input embeddings. For
tied-embedding models W_a ≈ I. ``identity`` skips the matrix but keeps the
rescale. Trained adapters (see :mod:`latent_graph.adapters`) plug in through the
same :class:`Realigner` interface.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from latent_graph.engine.load.fingerprint import ModelFingerprint
from latent_graph.errors import CacheDirError, RealignerCacheError
from latent_graph.paths import cache_dir


class Realigner(ABC):
    """Maps hidden states ``(B, H)`` to input embeddings ``(B, H)``."""

    name: str = "realigner"

    @abstractmethod
    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """Return the input embedding for each row of ``hidden`` (B, H)."""

    def to(self, device: torch.device | str) -> Realigner:
        return self


def _rescale(e: torch.Tensor, target_norm: float) -> torch.Tensor:
    norm = e.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 1)
    return e * (target_norm / norm)


class IdentityRealigner(Realigner):
    """e = h, rescaled to the mean input-embedding norm (the reference's 'off' mode)."""

    name = "identity"

    def __init__(self, target_norm: float) -> None:
        self.target_norm = float(target_norm)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return _rescale(hidden.float(), self.target_norm).to(hidden.dtype)


class RidgeRealigner(Realigner):
    """e = h · W_a, rescaled to the mean input-embedding norm."""

    name = "ridge"

    def __init__(self, matrix: torch.Tensor, target_norm: float) -> None:
        self.matrix = matrix.float()  # (H, H)
        self.target_norm = float(target_norm)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        e = hidden.float() @ self.matrix  # (B, H)
        return _rescale(e, self.target_norm).to(hidden.dtype)

    def to(self, device: torch.device | str) -> RidgeRealigner:
        return RidgeRealigner(self.matrix.to(device), self.target_norm)


def ridge_matrix(w_in: torch.Tensor, w_out: torch.Tensor, lam: float = 1e-5) -> torch.Tensor:
    """Closed-form ridge solution W_a (d, d) from W_in (V, d) and W_out (V, d), in fp32."""
    w_in, w_out = w_in.float(), w_out.float()
    gram = w_out.T @ w_out  # (d, d)
    gram = gram + lam * torch.eye(gram.shape[0], device=gram.device)
    rhs = w_out.T @ w_in  # (d, d)
    return torch.linalg.solve(gram, rhs)


def mean_embedding_norm(w_in: torch.Tensor) -> float:
    return float(w_in.float().norm(dim=-1).mean())


def load_or_compute_ridge(
    w_in: torch.Tensor,
    w_out: torch.Tensor,
    fingerprint: ModelFingerprint,
    lam: float = 1e-5,
    directory: Path | None = None,
) -> RidgeRealigner:
    """Ridge realigner for a model, computed once per fingerprint and cached as safetensors."""
    if directory is None:
        try:
            directory = cache_dir() / "realign"
        except CacheDirError as exc:  # no usable cache at all: compute, keep in memory
            warnings.warn(f"{exc}; using the ridge realigner from memory", stacklevel=3)
            return RidgeRealigner(ridge_matrix(w_in, w_out, lam), mean_embedding_norm(w_in))
    path = directory / f"{fingerprint.digest}-lam{lam:g}.safetensors"
    if path.exists():
        try:
            return _load_ridge(path, w_in)
        except (RealignerCacheError, OSError) as exc:  # damaged or foreign cache file: recompute below
            warnings.warn(f"ignoring the cached ridge realigner {path.name}: {exc}; recomputing it", stacklevel=3)
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # read-only cache: the fresh matrix is used from memory
    matrix = ridge_matrix(w_in, w_out, lam)
    norm = mean_embedding_norm(w_in)
    try:
        _save_ridge(path, matrix, norm, {"fingerprint": fingerprint.digest, "lambda": repr(lam)})
    except OSError as exc:  # read-only or full cache: keep the matrix in memory only
        warnings.warn(f"cannot cache the ridge realigner in {directory} ({exc}); using it from memory", stacklevel=3)
    return RidgeRealigner(matrix, norm)


def _load_ridge(path: Path, w_in: torch.Tensor) -> RidgeRealigner:
    """A cached matrix, checked to be ``(H, H)`` floats with a finite scalar norm (else :class:`RealignerCacheError`)."""
    try:
        data = load_file(str(path))
    except Exception as exc:  # safetensors raises its own (unnamed) errors for damaged files
        raise RealignerCacheError(f"unreadable file ({type(exc).__name__})") from None
    matrix, norm = data.get("matrix"), data.get("target_norm")
    h = w_in.shape[1]
    if (
        matrix is None
        or norm is None
        or tuple(matrix.shape) != (h, h)
        or not matrix.is_floating_point()
        or norm.numel() != 1
        or not torch.isfinite(norm).all()
        or not torch.isfinite(matrix).all()
    ):
        shape = None if matrix is None else tuple(matrix.shape)
        raise RealignerCacheError(f"expected a finite ({h}, {h}) float matrix and a scalar norm, got matrix {shape}")
    return RidgeRealigner(matrix.to(w_in.device), float(norm))


def _save_ridge(path: Path, matrix: torch.Tensor, norm: float, metadata: dict[str, str]) -> None:
    """Write atomically through a temporary file of our own (concurrent writers never share one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({"matrix": matrix.cpu().contiguous(), "target_norm": torch.tensor(norm)}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
