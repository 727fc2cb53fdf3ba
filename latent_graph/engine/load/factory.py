"""``load_model``: the one model loader the command line, bench and adapter tools share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_graph.errors import InvalidArgumentError

ENGINES: tuple[str, ...] = ("transformers", "llamacpp")
"""The engines a model can run on: the package's own loop over a transformers model, or llama.cpp on a GGUF."""


def engine_for(spec: str | None, engine: str | None = None) -> str:
    """The engine ``spec`` runs on: ``engine`` when given, else llama.cpp for a ``.gguf`` file, else transformers."""
    if engine is not None:
        if engine not in ENGINES:
            raise InvalidArgumentError(f"unknown engine {engine!r}; choose one of {ENGINES}")
        return engine
    return "llamacpp" if spec is not None and Path(spec).suffix.lower() == ".gguf" else "transformers"


def load_model(
    spec: str | None = "default",
    *,
    engine: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    realign: str | None = None,
    quantization: str | None = None,
    threads: int | None = None,
) -> Any:
    """The one loader every command uses: ``"default"``/None = the embedded default model, else an HF path or id,
    or a GGUF file.

    ``engine`` (see :func:`engine_for`): ``"llamacpp"`` runs the GGUF (the default model's own, for "default")
    with llama.cpp on the CPU, in the file's quantization (or requantized once to ``quantization`` "q4_0"/"q8_0",
    whose prompt kernels are faster), on ``threads`` threads (default: the free cores); dtype and device are
    transformers' options, as are the "4bit"/"8bit" quantizations, and there ``threads`` sets torch's threads. Options left at None are not passed, so each
    loader keeps its own defaults.
    """
    if engine_for(spec, engine) == "llamacpp":
        given = ["dtype"] if dtype is not None else []
        if device not in (None, "cpu"):
            given.append("device")
        if given:
            raise InvalidArgumentError(
                f"{', '.join(given)} are options of the transformers engine; the llama.cpp engine runs the "
                "GGUF on the CPU"
            )
        from latent_graph.engine.llamacpp.model import LlamaCppLatentModel  # optional extra: imported on use

        lpairs = (("realign", realign), ("n_threads", threads), ("quantization", quantization))
        lkw: dict[str, Any] = {k: v for k, v in lpairs if v is not None}
        if spec is None or spec == "default":
            return LlamaCppLatentModel.default(**lkw)
        return LlamaCppLatentModel(spec, **lkw)
    if threads is not None:  # the transformers engine computes on torch's threads (one setting per process)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidArgumentError(f"threads must be an int >= 1, got {threads!r}")
        import torch

        torch.set_num_threads(threads)
    from latent_graph.engine.model import LocalLatentModel  # the model class builds on this room: imported on use

    pairs = (("dtype", dtype), ("device", device), ("realign", realign), ("quantization", quantization))
    kwargs = {k: v for k, v in pairs if v is not None}
    if spec is None or spec == "default":
        return LocalLatentModel.default(**kwargs)
    return LocalLatentModel.from_pretrained(spec, **kwargs)
