"""Realignment: how a last hidden state becomes the next latent step's input, and looking inside thoughts.

- :mod:`.base`: the :class:`Realigner` interface, ridge (LatentMAS W_a) and identity;
- :mod:`.catalog`: soft-token, nearest-embedding and blend realigners, :data:`REALIGNERS` and
  :func:`make_realigner`, the one resolver from a spec string to a realigner;
- :mod:`.lens`: logit lens and nearest input tokens.
"""

from latent_graph.engine.realign.base import (
    IdentityRealigner,
    Realigner,
    RidgeRealigner,
    load_or_compute_ridge,
    mean_embedding_norm,
    ridge_matrix,
)
from latent_graph.engine.realign.catalog import (
    REALIGNERS,
    BlendRealigner,
    KnnProjectionRealigner,
    SoftTokenRealigner,
    make_realigner,
)
from latent_graph.engine.realign.lens import logit_lens, nearest_tokens

__all__ = [
    "REALIGNERS",
    "BlendRealigner",
    "IdentityRealigner",
    "KnnProjectionRealigner",
    "Realigner",
    "RidgeRealigner",
    "SoftTokenRealigner",
    "load_or_compute_ridge",
    "logit_lens",
    "make_realigner",
    "mean_embedding_norm",
    "nearest_tokens",
    "ridge_matrix",
]
