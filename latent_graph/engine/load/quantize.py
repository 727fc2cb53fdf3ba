"""4-bit / 8-bit loading through bitsandbytes, on whatever device the installed build supports.

The one owner of the quantization modes (:data:`QUANTIZATIONS`), their check and
their ``BitsAndBytesConfig``. Support is *detected*, not assumed: bitsandbytes
>= 0.45 has CPU kernels (NF4 4-bit and LLM.int8() 8-bit), older builds need
CUDA. :func:`quantization_support` runs one tiny quantized matmul on the target
device (once per mode and device) and reports why it fails, if it does.

Only the decoder's ``nn.Linear`` layers are quantized; the input embeddings and
the lm_head stay in the load dtype (fp32 on CPU), so hidden states, the ridge
realigner and trained adapters see ordinary float tensors.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

import torch

from latent_graph.errors import InvalidArgumentError, QuantizationUnavailableError

QUANTIZATIONS: tuple[str, ...] = ("4bit", "8bit")
"""Quantization modes: "4bit" = NF4 weights (double-quantized), "8bit" = LLM.int8(); None = not quantized."""

INSTALL_HINT = "pip install 'latent-graph[quant]'"


def check_quantization(quantization: Any) -> str | None:
    """``quantization`` if it is None or a known mode, else :class:`InvalidArgumentError`."""
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise InvalidArgumentError(f"quantization must be one of {QUANTIZATIONS} or None, got {quantization!r}")
    return quantization


def target_device(device: str | None) -> torch.device:
    """Where a quantized model will run: ``device``, else CUDA when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.cache
def quantization_support(quantization: str, device: str) -> str | None:
    """Why ``quantization`` cannot run on ``device`` with the installed bitsandbytes, or None if it can.

    Detected by quantizing a 64x64 matrix and multiplying through it on that device.
    """
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as bnbf
    except ImportError:
        return f"bitsandbytes is not installed: {INSTALL_HINT}"
    dev = torch.device(device)
    try:
        x, w = torch.randn(2, 64, device=dev), torch.randn(64, 64, device=dev)
        if quantization == "4bit":
            q, state = bnbf.quantize_4bit(w, quant_type="nf4")
            y = bnb.matmul_4bit(x, q.t(), quant_state=state)
        else:
            lin = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
            lin.weight = bnb.nn.Int8Params(w.cpu(), requires_grad=False, has_fp16_weights=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = lin.to(dev)(x)
        if y.shape != (2, 64) or not bool(torch.isfinite(y).all()):
            return f"bitsandbytes {bnb.__version__} returned a wrong result on {dev}"
    except Exception as exc:  # any backend failure means "not here"
        return f"bitsandbytes {getattr(bnb, '__version__', '?')} cannot run {quantization} on {dev}: {type(exc).__name__}: {exc}"
    return None


def quantization_config(quantization: str | None, device: str | None = None, dtype: Any = None) -> Any:
    """A ``BitsAndBytesConfig`` for ``quantization`` on ``device`` (None when not quantized).

    Raises:
        InvalidArgumentError: an unknown mode.
        QuantizationUnavailableError: bitsandbytes is missing or cannot run the mode on that device.
    """
    if check_quantization(quantization) is None:
        return None
    dev = target_device(device)
    problem = quantization_support(quantization, str(dev))
    if problem is not None:
        raise QuantizationUnavailableError(
            f"{quantization} loading is not available on {dev}: {problem}. "
            "Load without quantization (quantization=None) or on a device bitsandbytes supports."
        )
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        compute = dtype if isinstance(dtype, torch.dtype) else (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
    _quiet_int8_cast()
    return BitsAndBytesConfig(load_in_8bit=True)


class _DropCastNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("MatMul8bitLt: inputs will be cast")


def _quiet_int8_cast() -> None:
    """LLM.int8() logs "inputs will be cast to float16" at every layer call; the cast *is* the method."""
    log = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropCastNotice) for f in log.filters):
        log.addFilter(_DropCastNotice())


def weight_bytes(hf_model: Any) -> int:
    """Bytes the model's parameters and buffers hold (quantized weights count at their packed size)."""
    return int(hf_model.get_memory_footprint())


def quantization_of(hf_model: Any) -> str | None:
    """The mode a loaded HF model was quantized with ("4bit" / "8bit"), or None."""
    q = getattr(hf_model, "hf_quantizer", None)
    cfg = getattr(q, "quantization_config", None)
    if cfg is None:
        return None
    if getattr(cfg, "load_in_4bit", False):
        return "4bit"
    if getattr(cfg, "load_in_8bit", False):
        return "8bit"
    return None
