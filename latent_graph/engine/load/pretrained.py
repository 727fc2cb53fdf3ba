"""Load any Hugging Face causal LM into a :class:`LocalLatentModel`.

Handles dtype/device/device_map and optional bitsandbytes 4-bit/8-bit loading
(on the CPU or a GPU, wherever the installed bitsandbytes runs it; see
:mod:`latent_graph.engine.load.quantize`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from latent_graph.engine.load.quantize import quantization_config, target_device
from latent_graph.errors import InvalidArgumentError, ModelLoadError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None, device: str | None) -> torch.dtype | str:
    """None → fp32 on CPU, "auto" elsewhere; strings like "bf16" → torch dtypes."""
    if dtype is None:
        on_cpu = device is None or str(device).startswith("cpu")
        return torch.float32 if on_cpu and not torch.cuda.is_available() else "auto"
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in _DTYPES:
        raise InvalidArgumentError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)} or 'auto'")
    return _DTYPES[dtype]


def load_hf(
    cls: Any,
    name_or_path: str,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    max_memory: dict[Any, Any] | None = None,
    offload_folder: str | None = None,
    quantization: str | None = None,
    gguf_file: str | None = None,
    realign: Any = "ridge",
    ridge_lambda: float = 1e-5,
    layer: int = -1,
    name: str | None = None,
    **hf_kwargs: Any,
) -> Any:
    """Load tokenizer + causal LM and wrap them in ``cls`` (a LocalLatentModel).

    ``device_map`` ("auto" or a module -> device map), ``max_memory`` and ``offload_folder``
    shard the model with accelerate (layers on several GPUs, the CPU or disk); the engine then
    keeps each layer's K/V where that layer runs (see :mod:`latent_graph.engine.load.devices`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    looks_local = str(name_or_path).startswith(("/", "./", "../", "~")) or os.path.isabs(str(name_or_path))
    if looks_local and not Path(name_or_path).expanduser().exists():
        raise ModelLoadError(f"could not load model {name_or_path!r}: no such folder")
    torch_dtype = resolve_dtype(dtype, device)
    qconf = quantization_config(quantization, device, torch_dtype)
    if qconf is not None and device_map is None:  # bitsandbytes quantizes while placing: say where
        device_map = {"": str(target_device(device))}
    extra: dict[str, Any] = dict(hf_kwargs)
    if gguf_file:
        extra["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **extra)
        shard = {k: v for k, v in (("max_memory", max_memory), ("offload_folder", offload_folder)) if v is not None}
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=torch_dtype, device_map=device_map, quantization_config=qconf, **shard, **extra
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load model {name_or_path!r}: {exc}") from exc
    if device is not None and device_map is None and qconf is None:
        model = model.to(device)  # type: ignore[arg-type]  # functools.wraps on a method: its stub takes self first
    return cls(
        model, tokenizer, name=name or str(name_or_path), realign=realign, ridge_lambda=ridge_lambda, layer=layer
    )
