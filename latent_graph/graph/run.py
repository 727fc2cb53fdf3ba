"""Run a graph: the graph-by-name registry and the streaming executor shared by the CLI and bench.

- :data:`GRAPHS` / :func:`build_graph`: the one registry of prebuilt graphs by name
  (plus ``module:attr`` factories), so the CLI, bench and serving agree on names;
- :func:`execute`: run a compiled graph with optional per-node progress (stderr)
  and streaming of the answering node's tokens.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langgraph.graph import END, START

from latent_graph.engine import LocalLatentModel
from latent_graph.errors import InvalidArgumentError
from latent_graph.graph.edges import answer_nodes
from latent_graph.graph.prebuilt import build_hierarchical, build_sequential, build_single

GraphFactory = Callable[..., Any]
GRAPHS: dict[str, GraphFactory] = {
    "sequential": build_sequential,
    "hierarchical": build_hierarchical,
    "single": build_single,
}
"""Prebuilt graphs by name; each factory takes ``(model, *, edges?, **options)``."""


def build_graph(
    name: str, model: LocalLatentModel, *, edges: str | Sequence[str] | Mapping[str, str] = "latent", **options: Any
) -> Any:
    """Build the graph called ``name`` (a key of :data:`GRAPHS` or a ``module:attr`` factory)."""
    if name == "single":
        return build_single(model, **options)
    if name in GRAPHS:
        return GRAPHS[name](model, edges=edges, **options)
    if ":" in name:
        mod, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidArgumentError(f"graph {name!r}: cannot import {attr!r} from {mod!r}") from exc
        return factory(model, edges=edges, **options)
    raise InvalidArgumentError(f"graph must be one of {tuple(GRAPHS)} or module:attr, got {name!r}")


def execute(graph: Any, inputs: dict[str, Any], *, stream_tokens: bool = False, progress: bool = False) -> dict[str, Any]:
    """Run ``graph`` on ``inputs``; a tqdm bar (stderr) ticks per node, answer tokens stream to stdout.

    Returns:
        The final graph output (``answers``, ``messages``, ``trace``).
    """
    from tqdm import tqdm

    total = sum(1 for n in graph.get_graph().nodes if n not in (START, END))
    answering = answer_nodes(graph)
    n = len(inputs.get("questions") or [])
    bar = tqdm(total=total, unit="node", desc=f"{n} question{'s' if n != 1 else ''}", file=sys.stderr,
               disable=not progress, leave=False, dynamic_ncols=True)
    out: dict[str, Any] = {}
    streamed = False
    modes = ["updates", "values"] + (["messages"] if stream_tokens else [])
    try:
        for mode, chunk in graph.stream(inputs, stream_mode=modes):
            if mode == "updates":
                for node in chunk or {}:
                    if not str(node).startswith("__"):
                        bar.set_postfix_str(f"{node} done")
                        bar.update(1)
            elif mode == "messages":
                msg, meta = chunk
                if meta.get("langgraph_node") in answering and type(msg).__name__ == "AIMessageChunk" and msg.content:
                    if not streamed:
                        bar.clear()
                        streamed = True
                    print(msg.content, end="", flush=True)
            else:
                out = chunk
    finally:
        bar.close()
        if streamed:
            print()
    return out
