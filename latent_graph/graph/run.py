"""Run a graph: the graph-by-name registry and the streaming executor shared by the CLI and bench.

- :data:`GRAPHS` / :func:`build_graph`: the one registry of prebuilt graphs by name
  (plus ``module:attr`` factories), so the CLI, bench and serving agree on names;
- :func:`execute`: run a compiled graph with live per-node progress (stderr:
  agent, latent step k/n, tokens) and streaming of the answering node's tokens.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langgraph.graph import END, START

from latent_graph.errors import InvalidArgumentError
from latent_graph.graph.edges import answer_nodes
from latent_graph.graph.progress import Progress
from latent_graph.graph.prebuilt import build_compact, build_hierarchical, build_sequential, build_single

GraphFactory = Callable[..., Any]
GRAPHS: dict[str, GraphFactory] = {
    "sequential": build_sequential,
    "hierarchical": build_hierarchical,
    "single": build_single,
    "compact": build_compact,
}
"""Prebuilt graphs by name; each factory takes ``(model, *, edges?, **options)``."""


FACTORY_OPTIONS = ("edges", "steps", "memory", "max_new_tokens", "temperature", "top_p", "seed", "task", "inspect")
"""Keyword arguments a graph factory may take; it gets only those its signature declares (all with ``**kwargs``)."""


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


def call_factory(factory: GraphFactory, model: Any, options: Mapping[str, Any]) -> Any:
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
    name: str, model: Any, *, edges: str | Sequence[str] | Mapping[str, str] = "latent", **options: Any
) -> Any:
    """Build the graph called ``name`` (a key of :data:`GRAPHS` or a ``module:attr`` factory, see :func:`call_factory`)."""
    if name == "single":
        return build_single(model, **options)
    if name in GRAPHS:
        return GRAPHS[name](model, edges=edges, **options)
    if ":" in name:
        return call_factory(load_factory(name), model, {"edges": edges, **options})
    raise InvalidArgumentError(f"graph must be one of {tuple(GRAPHS)} or module:attr, got {name!r}")


def execute(graph: Any, inputs: dict[str, Any], *, stream_tokens: bool = False, progress: bool = False) -> dict[str, Any]:
    """Run ``graph`` on ``inputs``: live per-node progress on stderr, answer tokens streamed to stdout.

    Returns:
        The final graph output (``answers``, ``messages``, ``trace``).
    """
    prog = Progress(sum(1 for n in graph.get_graph().nodes if n not in (START, END)), enabled=progress)
    answering = answer_nodes(graph)
    out: dict[str, Any] = {}
    streamed = False
    modes = ["updates", "values"] + (["messages"] if stream_tokens or progress else []) + (["custom"] if progress else [])
    try:
        for mode, chunk in graph.stream(inputs, stream_mode=modes):
            if mode == "updates":
                for node in chunk or {}:
                    if not str(node).startswith("__"):
                        prog.node_done(str(node))
            elif mode == "custom":
                if isinstance(chunk, dict) and chunk.get("event") == "latent_step":
                    prog.latent_step(chunk)
            elif mode == "messages":
                msg, meta = chunk
                if type(msg).__name__ != "AIMessageChunk" or not msg.content:
                    continue
                node = str(meta.get("langgraph_node"))
                if stream_tokens and node in answering:
                    if not streamed:
                        prog.clear()
                        prog.enabled = False  # the answer owns the terminal now
                        streamed = True
                    print(msg.content, end="", flush=True)
                else:
                    prog.token(node)
            else:
                out = chunk
    finally:
        prog.clear()
        if streamed:
            print()
    return out
