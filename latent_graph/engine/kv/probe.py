"""Attention weights of a few probe queries, without changing what any other forward computes.

Fused attention kernels (``sdpa``, flash) return no weights. To score cache columns we
need the softmax weights a handful of *probe* queries put on them, so the model's
attention dispatch is routed once through :func:`_delegate`, a function registered with
transformers' ``AttentionInterface`` (its supported extension point) that calls the
model's own implementation unchanged and, only inside :func:`recording` on the calling
thread, also computes ``softmax(q k^T * scale + mask)`` of the last few query rows. Every
other forward (other threads, other calls) runs the original kernel with the original
mask function: outputs stay bit-identical (tested).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

_PREFIX = "latent_graph_probe:"
_local = threading.local()
_lock = threading.Lock()


def _last_rows_weights(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, scaling: float, rows: int
) -> torch.Tensor:
    """Softmax weights of the last ``rows`` queries over every key (the sink column left out and the rest renormalised),
    max over heads, summed over those rows: (B, T)."""
    n = min(rows, query.shape[2])
    q = query[:, :, -n:].float()  # (B, Hq, n, D)
    k = key.float()  # (B, Hkv, T, D)
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1) if groups > 1 else k  # (B, Hq, T, D)
    t = k.shape[2]
    w = (q @ k.transpose(2, 3)) * scaling  # (B, Hq, n, T)
    if mask is not None:
        m = mask[:, :, -n:, :t]
        w = w.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else w + m.float()
    else:  # no mask given: plain causal attention over the cache
        qpos = torch.arange(t - n, t, device=w.device)[:, None]  # (n, 1) column index of each query
        w = w.masked_fill(torch.arange(t, device=w.device)[None, :] > qpos, float("-inf"))
    p = torch.softmax(w, dim=-1).nan_to_num(0.0)  # (B, Hq, n, T)
    p = p[..., 1:] / p[..., 1:].sum(dim=-1, keepdim=True).clamp_min(1e-9)  # the first column (a sink) left out
    p = torch.nn.functional.pad(p, (1, 0))
    return p.amax(dim=1).sum(dim=1)  # (B, T): the most attentive head, summed over the query rows


def _delegate(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """The model's own attention (unchanged); inside :func:`recording`, also the last query's weights."""
    original = str(module.config._attn_implementation).removeprefix(_PREFIX)
    fn = ALL_ATTENTION_FUNCTIONS[original]
    out = fn(module, query, key, value, attention_mask, *args, **kwargs)
    store = getattr(_local, "store", None)
    if store is not None:
        scaling = kwargs.get("scaling") or getattr(module, "scaling", query.shape[-1] ** -0.5)
        store.append(_last_rows_weights(query, key, attention_mask, float(scaling), _local.rows))
    return out


def _configs(model: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for mod in model.modules():
        cfg = getattr(mod, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            seen.setdefault(id(cfg), cfg)
    return list(seen.values())


def supports_probe(model: Any) -> bool:
    """Whether the attention implementation can be routed through :func:`_delegate` (a registered kernel)."""
    impl = str(getattr(model.config, "_attn_implementation", None)).removeprefix(_PREFIX)
    return impl in ALL_ATTENTION_FUNCTIONS and impl in ALL_MASK_ATTENTION_FUNCTIONS


def route(model: Any) -> None:
    """Route ``model``'s attention through :func:`_delegate` (idempotent; outputs are unchanged)."""
    with _lock:
        for cfg in _configs(model):
            impl = str(cfg._attn_implementation)
            if impl.startswith(_PREFIX) or impl not in ALL_ATTENTION_FUNCTIONS:
                continue
            name = _PREFIX + impl
            if name not in ALL_ATTENTION_FUNCTIONS:
                ALL_ATTENTION_FUNCTIONS.register(name, _delegate)
                ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[impl])
            cfg._attn_implementation = name


@contextmanager
def recording(rows: int = 1) -> Iterator[list[torch.Tensor]]:
    """Collect, for every attention call on this thread, the weights (B, T) the last ``rows`` queries pay to each
    key (summed over heads and rows). Route the model first (:func:`route`)."""
    store: list[torch.Tensor] = []
    previous = getattr(_local, "store", None), getattr(_local, "rows", 1)
    _local.store, _local.rows = store, rows
    try:
        yield store
    finally:
        _local.store, _local.rows = previous
