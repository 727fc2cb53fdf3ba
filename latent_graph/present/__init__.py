"""Presentation layer: the terminal executor, run traces (JSON), drawings and offline HTML run reports.

Example:
    >>> out = graph.invoke({"questions": qs})                                   # doctest: +SKIP
    >>> run = RunTrace.from_run(out, qs, graph=graph, model=model)              # doctest: +SKIP
    >>> run.save("run.json"); write_report(run, "run.html")                     # doctest: +SKIP

Traces and reports load on first use (a plain ``latent-graph run`` needs only ``console``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RunTrace": "latent_graph.present.runtrace",
    "render_compare": "latent_graph.present.html",
    "render_report": "latent_graph.present.html",
    "write_compare": "latent_graph.present.html",
    "write_report": "latent_graph.present.html",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'latent_graph.present' has no attribute {name!r}")


__all__ = ["RunTrace", "render_compare", "render_report", "write_compare", "write_report"]
