"""The model flags every command shares (``--model``, ``--engine``, ``--threads``, ``--dtype``, ``--device``,
``--realign``, ``--quantization``), declared once with one default each, and the one way the CLI loads a model from them;
and the one way a dataclass of options (``GraphOptions``) becomes flags."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any

from latent_graph.engine import ENGINES, GGUF_QUANTIZATIONS, QUANTIZATIONS, REALIGNERS
from latent_graph.engine import load_model as engine_load_model

DEFAULT_MODEL = "default"
"""``--model``'s default: the embedded SmolLM2-135M-Instruct."""


def realigner_specs() -> list[str]:
    """Every realigner spec ``--realign`` offers: each kind of :data:`REALIGNERS`, with its parameters."""
    return [
        kind + (f"[:{','.join(f'{p}=N' for p in sorted(params))}]" if params else "")
        for kind, params in REALIGNERS.items()
    ]


def add_model_args(p: argparse.ArgumentParser, *, realign: bool = True, model_help: str | None = None) -> None:
    """Add the shared model flags to ``p`` (``realign=False``: a command that trains or compares realigners)."""
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=model_help or "HF path or hub id, or a .gguf file (default: embedded SmolLM2-135M-Instruct)",
    )
    p.add_argument(
        "--engine",
        default=None,
        choices=ENGINES,
        help="transformers (the package's own loop) or llamacpp (llama.cpp on a GGUF: the default model's own "
        "GGUF for --model default; needs the llamacpp extra); default: llamacpp for a .gguf file, else transformers",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="compute threads: llama.cpp's (default: the free cores) or torch's (default: torch's choice)",
    )
    p.add_argument(
        "--dtype", default=None, help="float32 | bfloat16 | float16 | auto (default: the loader's: fp32 on the CPU)"
    )
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:0 ... (default: the loader's choice)")
    if realign:
        p.add_argument(
            "--realign",
            default=None,
            metavar="SPEC",
            help=f"realigner: {' | '.join(realigner_specs())} (e.g. soft:k=8,t=0.5; default ridge)",
        )
    p.add_argument(
        "--quantization",
        default=None,
        choices=(*QUANTIZATIONS, *GGUF_QUANTIZATIONS),
        help="transformers engine: load the weights in 4-bit NF4 or 8-bit LLM.int8() through bitsandbytes "
        "(on the CPU or a GPU, wherever the installed bitsandbytes runs it); llama.cpp engine: requantize the GGUF "
        "once (cached) to q4_0 or q8_0, whose prompt kernels are faster on the CPU",
    )


def add_option_flags(p: argparse.ArgumentParser, fields: Iterable[dataclasses.Field[Any]]) -> None:
    """One flag per options field (``kv_keep`` -> ``--kv-keep``): its type, default, choices and help come from the
    field (``metadata["choices"]``, ``metadata["help"]``)."""
    for f in fields:
        kind = {"int": int, "float": float, "str": str}[str(f.type).split("|")[0].strip()]  # "int | None" -> int
        choices = f.metadata.get("choices")
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=kind,
            default=f.default,
            choices=choices,
            metavar=None if choices else f.name.upper(),
            help=f"{f.metadata['help']} (default {f.default})",
        )


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The loader's keyword options given by the shared flags (``--model`` aside)."""
    return {
        "engine": args.engine,
        "threads": args.threads,
        "dtype": args.dtype,
        "device": args.device,
        "realign": getattr(args, "realign", None),
        "quantization": args.quantization,
    }


def load_from_args(args: argparse.Namespace, spec: str | None = None) -> Any:
    """The model the shared flags name (``spec`` instead of ``--model``: e.g. adapter's ``--target-model``).

    Every command loads through here (tests monkeypatch it to inject a tiny model); without ``--debug``
    transformers' per-load "Loading weights" bars stay out of the CLI's output."""
    from transformers.utils import logging as hf_logging

    if not getattr(args, "debug", False):
        hf_logging.disable_progress_bar()
    return engine_load_model(args.model if spec is None else spec, **model_kwargs(args))
