"""Presentation layer: run traces (JSON) and offline, self-contained HTML run reports.

Example:
    >>> out = graph.invoke({"questions": qs})                                   # doctest: +SKIP
    >>> run = RunTrace.from_run(out, qs, graph=graph, model=model)              # doctest: +SKIP
    >>> run.save("run.json"); write_report(run, "run.html")                     # doctest: +SKIP
"""

from latent_graph.present.html import render_compare, render_report, write_compare, write_report
from latent_graph.present.runtrace import RunTrace

__all__ = ["RunTrace", "render_compare", "render_report", "write_compare", "write_report"]
