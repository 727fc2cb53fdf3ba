"""``load_model``: the one model loader the command line, bench and adapter tools share."""

from __future__ import annotations

from typing import Any


def load_model(
    spec: str | None = "default",
    *,
    dtype: str | None = None,
    device: str | None = None,
    realign: str | None = None,
    quantization: str | None = None,
) -> Any:
    """The one loader every command uses: ``"default"``/None = the embedded default model, else an HF path or id.

    Options left at None are not passed, so each loader keeps its own defaults.
    """
    from latent_graph.engine.model import LocalLatentModel  # the model class builds on this room: imported on use

    pairs = (("dtype", dtype), ("device", device), ("realign", realign), ("quantization", quantization))
    kwargs = {k: v for k, v in pairs if v is not None}
    if spec is None or spec == "default":
        return LocalLatentModel.default(**kwargs)
    return LocalLatentModel.from_pretrained(spec, **kwargs)
