"""Example 4 — HTML run reports: one run with the logit lens, and latent vs text side by side.

Writes ``run.json`` (the run trace), ``run.html`` (graph with the executed path,
a panel per node with prompt, figures and logit-lens table, plots, answers, a
selector per question) and ``compare.html`` (latent vs text edges). All files
are self-contained and open offline. The CLI equivalent::

    latent-graph run --inspect 5 --save-trace run.json --report run.html "q1" "q2"
    latent-graph report --compare latent.json text.json -o compare.html

Run: ``python examples/html_report.py`` (writes into ``runs/examples``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_sequential
from latent_graph.present import RunTrace, write_compare, write_report

QUESTIONS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples does she have?"]


def run_once(model: LocalLatentModel, edges: str, **opts: Any) -> RunTrace:
    """Run the sequential graph on :data:`QUESTIONS` and capture its :class:`RunTrace`."""
    graph = build_sequential(model, edges=edges, **opts)
    t0 = time.time()
    out = graph.invoke({"questions": QUESTIONS})
    return RunTrace.from_run(
        out, QUESTIONS, graph=graph, model=model, options={"edges": edges, **opts}, wall_s=time.time() - t0
    )


def main(
    model: LocalLatentModel | None = None,
    steps: int = 4,
    max_new_tokens: int = 64,
    out_dir: str | Path = "runs/examples",
) -> dict[str, Path]:
    """Write run.json, run.html and compare.html into ``out_dir``; returns their paths."""
    model = model or LocalLatentModel.default()
    out_dir = Path(out_dir)
    opts = dict(steps=steps, max_new_tokens=max_new_tokens)
    latent = run_once(model, "latent", inspect=5, **opts)
    text = run_once(model, "text", **opts)
    paths = {
        "trace": latent.save(out_dir / "run.json"),
        "report": write_report(latent, out_dir / "run.html"),
        "compare": write_compare(latent, text, out_dir / "compare.html", labels=["latent edges", "text edges"]),
    }
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths


if __name__ == "__main__":
    main()
