"""Which models agent nodes run on: the local engine (also behind its chat face) or a foreign chat model.

Nodes built on a :class:`LocalLatentModel` are remembered by model fingerprint, so a
node on a *foreign* chat model that receives a latent handle can have the handle's
own model decode it into a message (the latent edge becomes a text edge).
"""

from __future__ import annotations

import weakref
from typing import Any

from latent_graph.engine import LocalLatentModel, ModelFingerprint
from latent_graph.langchain import LatentChatModel

_ENGINES: weakref.WeakValueDictionary[str, LocalLatentModel] = weakref.WeakValueDictionary()


def local_engine(model: Any) -> LocalLatentModel | None:
    """The engine behind ``model`` (itself, or the engine of its chat face); None for a foreign model."""
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
        return engine.name
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
