"""The base model's forward for Llama decoders, without transformers' per-module dispatch.

A latent step on a small model is dominated by Python, not arithmetic: each of the
decoder's layers goes through about fifteen ``nn.Module`` calls, keyword-argument
decorators and an attention-interface lookup (measured in docs/results/engine_notes.md).
:class:`LlamaStack` runs the *same* torch operations in the same order, on the
same weights, calling transformers' own rotary embedding, mask builder and ``apply_rotary_pos_emb``,
and the branches of its ``sdpa_attention_forward`` that apply on a CPU or CUDA device — only the
module plumbing is gone — so its hidden states
and K/V are bit-for-bit those of ``LlamaModel.forward`` (``tests/engine/test_forward_llama.py``
checks prefill, steps, padding and batches on the tiny llama and the default model).

It runs only where that holds: a plain ``LlamaModel`` with plain ``nn.Linear`` weights (not
quantized) on one device and no accelerate hooks, whose first layer passes :func:`probe` on the installed
transformers (both checked when it is built, so a new transformers release is checked, not trusted), and per call
``sdpa`` attention, eval mode (no attention dropout), no forward hook on the model, explicit
positions and no intermediate hidden states asked for. Anything else (another
architecture, the attention probe's recording kernel, ``output_hidden_states``) goes to
the model's own forward unchanged.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple, TypeGuard, cast

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast

try:  # transformers internals this module calls; any missing one turns the fast path off
    from transformers.integrations.sdpa_attention import pack_gqa, repeat_kv
    from transformers.masking_utils import create_causal_mask
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaModel, apply_rotary_pos_emb

    _IMPORTED = True
except ImportError:  # a release that moved one of them: the model's own forward runs
    _IMPORTED = False


def _plain(module: torch.nn.Module) -> bool:
    """No hooks anywhere below ``module`` (accelerate, user forward hooks) and only plain ``nn.Linear`` weights."""
    for m in module.modules():
        if getattr(m, "_hf_hook", None) is not None or m._forward_hooks or m._forward_pre_hooks:
            return False
        if isinstance(m, torch.nn.Linear) and type(m) is not torch.nn.Linear:  # bitsandbytes' Linear4bit/8bitLt
            return False
    return True


def supports(base: torch.nn.Module) -> TypeGuard[LlamaModel]:
    """Whether ``base`` has the structure :class:`LlamaStack` reproduces (plain, one device); :func:`probe` checks the
    arithmetic."""
    if not _IMPORTED or type(base) is not LlamaModel:
        return False
    if any(type(layer) is not LlamaDecoderLayer for layer in base.layers):
        return False
    if len({p.device for p in base.parameters()}) != 1 or next(base.parameters()).device.type not in ("cpu", "cuda"):
        return False  # split over devices (accelerate moves activations), or a device whose sdpa rules differ
    layers = [cast("LlamaDecoderLayer", layer) for layer in base.layers]  # checked above
    return _plain(base) and all(layer.self_attn.is_causal for layer in layers)


def _rms(weight: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    """``LlamaRMSNorm.forward``, the same operations (the float32 round trip only where it is not a no-op)."""
    dtype = x.dtype
    if dtype != torch.float32:
        x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return weight * (x if dtype == torch.float32 else x.to(dtype))


class _Layer(NamedTuple):
    """One decoder layer's tensors and constants, read once (``nn.Module`` attribute lookups are slow)."""

    norm1: tuple[torch.Tensor, float]
    qkvo: tuple[tuple[torch.Tensor, torch.Tensor | None], ...]
    norm2: tuple[torch.Tensor, float]
    mlp: tuple[tuple[torch.Tensor, torch.Tensor | None], ...]
    act: Any
    layer_idx: int  # not ``index``: a NamedTuple field must not shadow ``tuple.index``
    head_dim: int
    groups: int
    scaling: float


def _read(layer: LlamaDecoderLayer) -> _Layer:
    a, m = layer.self_attn, layer.mlp
    wb = lambda lin: (lin.weight, lin.bias)  # noqa: E731
    return _Layer(
        (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
        (wb(a.q_proj), wb(a.k_proj), wb(a.v_proj), wb(a.o_proj)),
        (layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon),
        (wb(m.gate_proj), wb(m.up_proj), wb(m.down_proj)),
        m.act_fn,
        a.layer_idx,
        a.head_dim,
        a.num_key_value_groups,
        a.scaling,
    )


class LlamaStack:
    """Callable like the ``LlamaModel`` it wraps (the keyword arguments the engine passes), same outputs.

    Attributes:
        hf: The wrapped transformers model; every call it cannot reproduce goes there.
        norm: The final norm (read by realigners that normalise an intermediate layer).
    """

    def __init__(self, base: LlamaModel) -> None:
        self.hf = base
        self.norm = base.norm
        self.config = base.config
        layers = base.layers[: self.config.num_hidden_layers]  # a ModuleList: typed as plain Modules
        self._layers = [_read(cast("LlamaDecoderLayer", layer)) for layer in layers]
        self._final = (base.norm.weight, base.norm.variance_epsilon)

    def __call__(
        self,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool | None = None,
        output_hidden_states: bool = False,
    ) -> Any:
        hf = self.hf
        if (
            output_hidden_states
            or position_ids is None
            or hf.training
            or self.config._attn_implementation != "sdpa"
            or hf._forward_hooks
            or hf._forward_pre_hooks
        ):  # a hook added later (a test counting rows) must run
            return hf(
                input_ids=input_ids,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                output_hidden_states=output_hidden_states,
            )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        x = hf.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, n, H)
        if cache is None and (
            self.config.use_cache if use_cache is None else use_cache
        ):  # as the model's config default
            cache = DynamicCache(config=self.config)
        mask = create_causal_mask(
            config=self.config, inputs_embeds=x, attention_mask=attention_mask, cache=cache, position_ids=position_ids
        )
        cos, sin = hf.rotary_emb(x, position_ids=position_ids)
        force_gqa = os.environ.get("TRANSFORMERS_SDPA_FORCE_GQA", "0") == "1"
        for layer in self._layers:
            x = x + _attention(layer, _rms(*layer.norm1, x), cos, sin, mask, cache, force_gqa)
            y = _rms(*layer.norm2, x)
            (wg, bg), (wu, bu), (wd, bd) = layer.mlp
            x = x + F.linear(layer.act(F.linear(y, wg, bg)) * F.linear(y, wu, bu), wd, bd)
        return BaseModelOutputWithPast(last_hidden_state=_rms(*self._final, x), cache=cache)


def _attention(
    layer: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: Any, cache: Any, force_gqa: bool
) -> torch.Tensor:
    """``LlamaAttention.forward`` with transformers' ``sdpa_attention_forward`` on a CPU or CUDA device
    (inference, no position bias): (B, n, H) -> (B, n, H)."""
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = layer.qkvo
    shape = (*x.shape[:-1], -1, layer.head_dim)
    q = F.linear(x, wq, bq).view(shape).transpose(1, 2)  # (B, heads, n, d)
    k = F.linear(x, wk, bk).view(shape).transpose(1, 2)  # (B, kv heads, n, d)
    v = F.linear(x, wv, bv).view(shape).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    if cache is not None:
        k, v = cache.update(k, v, layer.layer_idx)
    n, extra = q.shape[2], {}
    if layer.groups > 1:
        if force_gqa or (mask is None and k.shape[-1] == v.shape[-1] <= 256):
            extra["enable_gqa"] = True
        elif n == 1:
            q, mask = cast(torch.Tensor, pack_gqa(q, layer.groups)), pack_gqa(mask, layer.groups)  # None only for None
        else:
            k, v = repeat_kv(k, layer.groups), repeat_kv(v, layer.groups)
    causal = n > 1 and mask is None
    if causal and k.shape[2] > n:
        k, v = k[:, :, :n], v[:, :, :n]
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=0.0, scale=layer.scaling, is_causal=causal, **extra
    )
    out = out.reshape(out.shape[0], -1, n, v.shape[-1]).transpose(1, 2).contiguous()  # (B, n, heads, d)
    return F.linear(out.reshape(*x.shape[:-1], -1), wo, bo)


def probe(base: LlamaModel) -> str | None:
    """Why :class:`LlamaStack` is not bit-for-bit ``base``'s own forward on the installed transformers (None: it is).

    Runs ``base`` cut to its first layer (``config.num_hidden_layers`` is what both forwards loop over; restored
    after) both ways on a tiny input: a left-padded prefill and a masked step on its cache, then a dense prefill
    and step (the other sdpa branches), comparing hidden states and K/V with ``torch.equal``. Call it on a model
    that :func:`supports` and that nothing else is running yet (it is called at load).
    """
    cfg: Any = base.config
    layers = cfg.num_hidden_layers
    dev = next(base.parameters()).device
    ids = torch.randint(0, cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(0)).to(dev)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], device=dev)
    calls = [
        dict(input_ids=ids[:, :4], attention_mask=mask[:, :4], position_ids=(mask[:, :4].cumsum(-1) - 1).clamp(min=0)),
        dict(input_ids=ids[:, 4:], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1),
        dict(input_ids=ids[1:, :4], position_ids=torch.arange(4, device=dev)[None]),
        dict(input_ids=ids[1:, 4:], position_ids=torch.tensor([[4]], device=dev)),
    ]
    outs: list[list[torch.Tensor]] = [[], []]
    cfg.num_hidden_layers = 1
    try:
        fns: tuple[Any, Any] = (base, LlamaStack(base))
        for out, fn in zip(outs, fns):
            for prefill, step in (calls[:2], calls[2:]):  # each step goes on its own prefill's cache
                cache = DynamicCache(config=cfg)
                with torch.no_grad():
                    out += [fn(cache=cache, use_cache=True, **kw).last_hidden_state for kw in (prefill, step)]
                kv: Any = cache.layers[0]
                out += [kv.keys, kv.values]
    except Exception as exc:  # any failure of the fast path means it must not run
        return f"the one-layer probe of the fast forward raised {type(exc).__name__}: {exc}"
    finally:
        cfg.num_hidden_layers = layers
    if len(outs[0]) != len(outs[1]) or not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(*outs)):
        return "the fast forward differs from the model's own on a one-layer probe (not bit-equal)"
    return None


def stack_of(base: torch.nn.Module) -> Any:
    """``base`` behind a :class:`LlamaStack` where that is exact, else ``base`` itself (warning when only the probe
    refused it: a Llama model then runs the slower forward the benchmarks did not measure)."""
    if not supports(base):
        return base
    problem = probe(base)
    if problem is None:
        return LlamaStack(base)
    warnings.warn(f"{problem}; using transformers' LlamaModel.forward (slower)", RuntimeWarning, stacklevel=2)
    return base
