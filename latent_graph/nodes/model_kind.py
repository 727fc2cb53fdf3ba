"""Which model a node runs on: a :class:`~latent_graph.engine.LatentModel` (also behind its chat face) or a
foreign LangChain chat model, decided from the model's type alone (no registry).

A node on a *foreign* chat model that receives a latent handle needs a latent model to
decode the handle into a message first: it is passed to the node explicitly
(``TextAgentNode(..., handoff_model=local)``), never looked up.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from latent_graph.engine import LatentModel
from latent_graph.errors import InvalidArgumentError
from latent_graph.langchain import LatentChatModel


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
        raise InvalidArgumentError(
            f"{self.name!r} is a stand-in without weights (for drawing); it has no "
            f"{attr!r}: load the model to run the graph"
        )


NodeModel = LatentModel | BaseChatModel | StandInModel
"""What a node accepts as its model: a latent model, a LangChain chat model, or a drawing stand-in."""


def engine_of(model: Any) -> LatentModel | None:
    """The latent model behind ``model`` (itself, its chat face's engine, or a drawing stand-in);
    None for a foreign chat model.

    Raises:
        InvalidArgumentError: ``model`` is neither a latent model nor a LangChain chat model.
    """
    if isinstance(model, LatentChatModel):
        return model.engine
    if isinstance(model, StandInModel):
        return model  # type: ignore[return-value]
    if isinstance(model, BaseChatModel):
        return None
    if isinstance(model, LatentModel):
        return model
    raise InvalidArgumentError(
        f"a node's model must be a LatentModel (e.g. LocalLatentModel) or a LangChain chat "
        f"model, got {type(model).__name__}"
    )


def model_name(model: Any) -> str:
    """A readable name of any node model."""
    engine = engine_of(model)
    if engine is not None:
        return str(engine.name)
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
