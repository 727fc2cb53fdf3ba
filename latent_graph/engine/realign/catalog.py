"""Training-free realigners beyond ridge: soft tokens, nearest-embedding projection, blends.

Why: for a tied-embedding model the ridge map is ≈ identity, and a latent thought
fed back that way is an off-distribution input a small model may not read well
(what was measured on the default model: docs/results/engine_notes.md). These maps keep
the fed-back vector *on* the input-embedding manifold without any training:

- :class:`SoftTokenRealigner` — "soft thinking" / mixture of inputs: top-k tokens of
  the lm_head logits, softmax at a temperature, the probability-weighted mix of
  their input embeddings. k=1 is exactly the greedy token's embedding.
- :class:`KnnProjectionRealigner` — map with a base realigner (ridge), then project
  onto the span of the k input embeddings nearest to it (cosine), rescaled to the
  mean input-embedding norm.
- :class:`BlendRealigner` — ``(1-α)·a(h) + α·b(h)`` of two realigners (e.g. ridge and
  soft); α=0 and α=1 give the endpoints exactly.

:func:`make_realigner` builds any of them for a model from a short spec string
("soft:k=8,t=0.5", "knn:k=4", "blend:alpha=0.5,k=8", "ridge", "identity"); plug the
result in with ``model.with_realigner(r)`` or a graph's ``realign=`` argument. The model resolves its own
``realign=`` argument here too, so every spec works wherever a realigner is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from latent_graph.engine.realign.base import IdentityRealigner, Realigner, load_or_compute_ridge, mean_embedding_norm
from latent_graph.errors import InvalidArgumentError

Pre = Callable[[torch.Tensor], torch.Tensor]


def _rescaled(e: torch.Tensor, target_norm: float) -> torch.Tensor:
    return e * (target_norm / e.norm(dim=-1, keepdim=True).clamp_min(1e-6))  # (B, H)


class SoftTokenRealigner(Realigner):
    """e = Σ_i p_i · W_in[t_i] over the top-k tokens t_i of h's logits, p = softmax(logits_topk / T).

    Args:
        w_in: Input embeddings (V, H), as the model sees them.
        w_out: lm_head weight (V, H); ``bias`` its bias (V,) if any.
        k: Tokens in the mixture (>= 1).
        temperature: Softmax temperature (> 0); lower is closer to the greedy token.
        pre: Applied to h before the lm_head (e.g. the final norm when an inner layer is fed back).
    """

    name = "soft"

    def __init__(
        self,
        w_in: torch.Tensor,
        w_out: torch.Tensor,
        *,
        k: int = 8,
        temperature: float = 1.0,
        bias: torch.Tensor | None = None,
        pre: Pre | None = None,
    ) -> None:
        if k < 1 or not temperature > 0:
            raise InvalidArgumentError(f"soft realigner needs k >= 1 and temperature > 0, got k={k}, t={temperature}")
        self.w_in, self.w_out, self.bias, self.pre = w_in, w_out, bias, pre
        self.k, self.temperature = int(k), float(temperature)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.pre(hidden) if self.pre is not None else hidden
        logits = h.float() @ self.w_out.float().T  # (B, V)
        if self.bias is not None:
            logits = logits + self.bias.float()
        top = logits.topk(self.k, dim=-1)  # (B, k)
        probs = torch.softmax(top.values / self.temperature, dim=-1)  # (B, k)
        e = (probs[..., None] * self.w_in[top.indices].float()).sum(dim=1)  # (B, H)
        return e.to(hidden.dtype)

    def to(self, device: torch.device | str) -> SoftTokenRealigner:
        bias = self.bias.to(device) if self.bias is not None else None
        return SoftTokenRealigner(
            self.w_in.to(device), self.w_out.to(device), k=self.k, temperature=self.temperature, bias=bias, pre=self.pre
        )


class KnnProjectionRealigner(Realigner):
    """e = projection of base(h) onto span{k nearest input embeddings}, rescaled to ``target_norm``.

    Args:
        w_in: Input embeddings (V, H).
        base: Realigner applied first (ridge by default in :func:`make_realigner`).
        k: Neighbours spanning the subspace (>= 1).
        target_norm: Output L2 norm (the mean input-embedding norm if None).
    """

    name = "knn"

    def __init__(
        self,
        w_in: torch.Tensor,
        base: Realigner,
        *,
        k: int = 4,
        target_norm: float | None = None,
        unit: torch.Tensor | None = None,
    ) -> None:
        if k < 1:
            raise InvalidArgumentError(f"knn realigner needs k >= 1, got {k}")
        self.w_in, self.base, self.k = w_in, base, int(k)
        self.unit = unit if unit is not None else torch.nn.functional.normalize(w_in.float(), dim=-1)  # (V, H)
        self.target_norm = float(target_norm) if target_norm is not None else mean_embedding_norm(w_in)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        e0 = self.base(hidden).float()  # (B, H)
        idx = (torch.nn.functional.normalize(e0, dim=-1) @ self.unit.T).topk(self.k, dim=-1).indices  # (B, k)
        basis = self.w_in[idx].float()  # (B, k, H)
        gram = basis @ basis.transpose(1, 2)  # (B, k, k)
        gram = gram + 1e-6 * gram.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] * torch.eye(
            self.k, device=gram.device
        )
        coef = torch.linalg.solve(gram, (basis @ e0[..., None]))  # (B, k, 1)
        proj = (coef * basis).sum(dim=1)  # (B, H)
        return _rescaled(proj, self.target_norm).to(hidden.dtype)

    def to(self, device: torch.device | str) -> KnnProjectionRealigner:
        return KnnProjectionRealigner(
            self.w_in.to(device),
            self.base.to(device),
            k=self.k,
            target_norm=self.target_norm,
            unit=self.unit.to(device),
        )


class BlendRealigner(Realigner):
    """e = (1 - alpha) · a(h) + alpha · b(h); no rescale, so alpha 0 / 1 are exactly a / b."""

    name = "blend"

    def __init__(self, a: Realigner, b: Realigner, alpha: float = 0.5) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise InvalidArgumentError(f"blend alpha must be in [0, 1], got {alpha}")
        self.a, self.b, self.alpha = a, b, float(alpha)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.alpha == 0.0:
            return self.a(hidden)
        if self.alpha == 1.0:
            return self.b(hidden)
        return ((1.0 - self.alpha) * self.a(hidden).float() + self.alpha * self.b(hidden).float()).to(hidden.dtype)

    def to(self, device: torch.device | str) -> BlendRealigner:
        return BlendRealigner(self.a.to(device), self.b.to(device), self.alpha)


def _parse(spec: str) -> tuple[str, dict[str, float]]:
    """ "soft:k=8,t=0.5" -> ("soft", {"k": 8.0, "t": 0.5})."""
    kind, _, rest = spec.partition(":")
    params: dict[str, float] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise InvalidArgumentError(f"bad realigner parameter {item!r} in {spec!r}; expected key=number") from None
    return kind.strip(), params


def _bias(head: torch.nn.Module | None) -> torch.Tensor | None:
    bias = getattr(head, "bias", None)
    return bias.detach() if isinstance(bias, torch.Tensor) else None


REALIGNERS: dict[str, frozenset[str]] = {
    "ridge": frozenset(),
    "identity": frozenset(),
    "soft": frozenset({"k", "t"}),
    "knn": frozenset({"k"}),
    "blend": frozenset({"alpha", "k", "t"}),
}
"""Every training-free realigner by spec name, with the parameters its spec takes (the one list the CLI offers)."""


def make_realigner(model: Any, spec: str | Realigner) -> Realigner:
    """The one resolver from a realigner spec (or a ready :class:`Realigner`) to the realigner ``model`` uses.

    Specs: ``ridge``, ``identity``, ``soft[:k=8,t=1]``, ``knn[:k=4]``, ``blend[:alpha=0.5,k=8,t=1]``
    (ridge blended with soft). When the model feeds back an inner layer (``layer != -1``), soft
    tokens pass h through the base model's final norm first (if it has one named ``norm``). A
    :class:`Realigner` is checked against the model (``check_model``, if it has one) and moved to its device.
    """
    if isinstance(spec, Realigner):
        check = getattr(spec, "check_model", None)
        if check is not None:
            check(model.fingerprint)
        return spec.to(model.device)
    if not isinstance(spec, str):
        raise InvalidArgumentError(f"realign must be a spec string ({list(REALIGNERS)}) or a Realigner, got {spec!r}")
    kind, p = _parse(spec)
    if kind not in REALIGNERS:
        raise InvalidArgumentError(f"unknown realigner {kind!r}; choose one of {list(REALIGNERS)}")
    if set(p) - REALIGNERS[kind]:
        raise InvalidArgumentError(f"realigner {kind!r} takes {sorted(REALIGNERS[kind])}, got {sorted(p)}")
    w_in = model.input_embedding_matrix()  # (V, H)
    if kind == "identity":
        return IdentityRealigner(mean_embedding_norm(w_in))
    head = model.hf_model.get_output_embeddings()
    if kind != "soft":
        w_out = head.weight if head is not None else w_in
        ridge = load_or_compute_ridge(w_in, w_out, model.fingerprint, model.ridge_lambda).to(model.device)
        if kind == "ridge":
            return ridge
        if kind == "knn":
            return KnnProjectionRealigner(w_in, ridge, k=int(p.get("k", 4)))
    norm = getattr(model.base, "norm", None) if model.layer != -1 else None
    soft = SoftTokenRealigner(
        w_in,
        head.weight.detach() if head is not None else w_in,
        k=int(p.get("k", 8)),
        temperature=p.get("t", 1.0),
        bias=_bias(head),
        pre=norm,
    )
    return soft if kind == "soft" else BlendRealigner(ridge, soft, p.get("alpha", 0.5))


__all__ = ["REALIGNERS", "BlendRealigner", "KnnProjectionRealigner", "SoftTokenRealigner", "make_realigner"]
