"""The one registry of prebuilt graphs by name, shared by the CLI, bench and serving.

:data:`GRAPHS` / :func:`build_graph` name every prebuilt graph (plus ``module:attr``
factories), so the CLI, bench and serving agree on names. Running a graph on a
terminal is :func:`latent_graph.present.console.execute`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs.base import OPTION_NAMES
from latent_graph.graphs.compact import build_compact
from latent_graph.graphs.hierarchical import build_hierarchical
from latent_graph.graphs.sequential import build_sequential, build_single
from latent_graph.nodes import NodeModel

GraphFactory = Callable[..., Any]
GRAPHS: dict[str, GraphFactory] = {
    "sequential": build_sequential,
    "hierarchical": build_hierarchical,
    "single": build_single,
    "compact": build_compact,
}
"""Prebuilt graphs by name; each factory takes ``(model, *, edges?, **options)``."""

DEFAULT_GRAPH = "compact"
"""The graph the CLI, serve and bench run when none is named (measured best on the default model,
docs/results/relay_ablation.md)."""


FACTORY_OPTIONS: tuple[str, ...] = ("edges", *OPTION_NAMES)
"""Keyword arguments a graph factory may take (``edges`` and every :class:`GraphOptions` field); it gets only
those its signature declares (all with ``**kwargs``)."""


def load_factory(name: str) -> GraphFactory:
    """The ``module:attr`` graph factory; the current directory is importable (like ``python -m``)."""
    mod, _, attr = name.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgumentError(f"graph {name!r}: cannot import {attr!r} from {mod!r} ({exc})") from exc
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def call_factory(factory: GraphFactory, model: NodeModel, options: Mapping[str, Any]) -> CompiledStateGraph:
    """``factory(model, **options)`` with only the options the factory declares.

    The contract of a ``--graph module:attr`` factory: ``factory(model, **kw) -> compiled graph``,
    where ``kw`` is any subset of :data:`FACTORY_OPTIONS` it names as parameters (a ``**kwargs``
    factory gets them all). ``model`` is the loaded model, or a stand-in for ``draw``.
    """
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return factory(model, **options)
    names = {p.name for p in params}
    return factory(model, **{k: v for k, v in options.items() if k in names})


def build_graph(
    name: str, model: NodeModel, /, *, edges: str | Sequence[str] | Mapping[str, str] = "latent", **options: Any
) -> Any:
    """Build the graph called ``name`` (a key of :data:`GRAPHS` or a ``module:attr`` factory, see :func:`call_factory`);
    ``name=`` among the options names the compiled graph (positional ``name`` is the registry's)."""
    if name == "single":
        return build_single(model, **options)
    if name in GRAPHS:
        return GRAPHS[name](model, edges=edges, **options)
    if ":" in name:
        return call_factory(load_factory(name), model, {"edges": edges, **options})
    raise InvalidArgumentError(f"graph must be one of {tuple(GRAPHS)} or module:attr, got {name!r}")
