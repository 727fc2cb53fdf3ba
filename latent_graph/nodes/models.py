"""Which models agent nodes run on: the local engine (also behind its chat face) or a foreign chat model.

Nodes built on a :class:`LocalLatentModel` are remembered by model fingerprint, so a
node on a *foreign* chat model that receives a latent handle can have the handle's
own model decode it into a message (the latent edge becomes a text edge).
"""

from __future__ import annotations

import weakref
from typing import Any

from latent_graph.engine import LocalLatentModel, ModelFingerprint
from latent_graph.errors import InvalidArgumentError
from latent_graph.langchain import LatentChatModel

_ENGINES: weakref.WeakValueDictionary[str, LocalLatentModel] = weakref.WeakValueDictionary()


class StandInModel:
    """A name-only stand-in for a local model: builders accept it, so ``latent-graph draw`` builds
    a graph (and its edge kinds) without loading weights. It cannot run: any use says so.

    Args:
        name: The model it stands for (shown in errors).
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StandInModel({self.name!r})"

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise InvalidArgumentError(f"{self.name!r} is a stand-in without weights (for drawing); it has no "
                                   f"{attr!r}: load the model to run the graph")


def local_engine(model: Any) -> Any:
    """The engine behind ``model`` (itself, the engine of its chat face, or a drawing stand-in); None for a foreign model."""
    if isinstance(model, StandInModel):
        return model
    if isinstance(model, LatentChatModel):
        model = model.engine
    if isinstance(model, LocalLatentModel):
        _ENGINES[model.fingerprint.digest] = model
        return model
    return None


def engine_for(fingerprint: ModelFingerprint) -> LocalLatentModel | None:
    """A live engine (used by some agent node) that built handles with ``fingerprint``."""
    return _ENGINES.get(fingerprint.digest)


def model_name(model: Any) -> str:
    """A readable name of any model."""
    engine = local_engine(model)
    if engine is not None:
        return str(engine.name)
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
