"""Graph factories for LangGraph Server / Studio (``langgraph dev``): the prebuilt graphs on the default model.

``langgraph.json`` at the repository root names one factory per prebuilt graph. The
server supplies its own checkpointer (configured with ``pickle_fallback: false``): graph
state holds JSON handle references only, so the stock serializer stores it and Studio
shows the handle as JSON; the tensors live in the default folder blob store
(:func:`latent_graph.persist.default_handle_store`).

Per-run options come from ``configurable`` (Studio's "Manage assistants" / ``config``):
any of :data:`RUN_OPTIONS`, e.g. ``{"configurable": {"steps": 2, "max_new_tokens": 32}}``.
"""

from __future__ import annotations

from typing import Any

from latent_graph.engine import LocalLatentModel
from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs.registry import FACTORY_OPTIONS, build_graph
from latent_graph.persist import default_handle_store

__all__ = ["RUN_OPTIONS", "compact", "hierarchical", "sequential", "single"]

RUN_OPTIONS = FACTORY_OPTIONS
"""``configurable`` keys a Studio run may set (``edges`` and the :class:`GraphOptions` fields)."""


MODEL = LocalLatentModel.default()
"""The default model, loaded when the server imports this module (factories then do no I/O on its event loop)."""

STORE = default_handle_store()
"""The folder blob store, opened (its folder created) at import: the server calls factories on its event loop,
where a blocking call such as ``os.mkdir`` is refused (``BlockingError``, a 500 on ``assistants.get_schemas``)."""


def _build(name: str, config: Any) -> Any:
    conf = dict((config or {}).get("configurable") or {})
    options = {k: conf[k] for k in RUN_OPTIONS if k in conf}
    if name == "single":
        options.pop("edges", None)
    try:
        # the server supplies the checkpointer later: keep the tensors in the persistent folder store
        return build_graph(name, MODEL, handle_store=STORE, **options)
    except TypeError as exc:
        raise InvalidArgumentError(f"bad run options {sorted(options)} for graph {name!r}: {exc}") from exc


def sequential(config: Any = None) -> Any:
    """planner -> critic -> refiner -> judger."""
    return _build("sequential", config)


def hierarchical(config: Any = None) -> Any:
    """Parallel experts merged by the judger."""
    return _build("hierarchical", config)


def compact(config: Any = None) -> Any:
    """The default graph (measured best on the default model)."""
    return _build("compact", config)


def single(config: Any = None) -> Any:
    """One agent: the single-model baseline."""
    return _build("single", config)
