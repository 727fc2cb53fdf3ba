"""Benchmark harness: single agent vs text-MAS vs latent-MAS on the same questions.

Modules:

- :mod:`~latent_graph.bench.tasks`: :class:`Example` / :class:`Task` and loaders
  (GSM8K, ARC-style multiple choice, HumanEval/MBPP-style code, relay probes);
- :mod:`~latent_graph.bench.extract`: answer extraction (``\\boxed{}``, numbers, letters, code);
- :mod:`~latent_graph.bench.execute`: run generated code against tests in a subprocess;
- :mod:`~latent_graph.bench.sandbox`: the bubblewrap sandbox that contains that subprocess;
- :mod:`~latent_graph.bench.metrics`: Wilson intervals, per-method aggregation, goal ratios;
- :mod:`~latent_graph.bench.config`: :class:`BenchConfig`, every setting of a run (graph settings as a ``GraphOptions``);
- :mod:`~latent_graph.bench.jobs`: a job (one batch on one method), interleaving, cost measurement;
- :mod:`~latent_graph.bench.runner`: :func:`run_bench` (resumable runs, the summary);
- :mod:`~latent_graph.bench.conditions`: the relay-condition loop every relay benchmark script uses;
- :mod:`~latent_graph.bench.store`: resumable per-question JSONL results, config checks, rescoring;
- :mod:`~latent_graph.bench.memory`: peak RSS / CUDA memory sampling and load average;
- :mod:`~latent_graph.bench.report`: JSON summary, markdown table and plot;
- :mod:`~latent_graph.cli.bench`: the ``latent-graph bench`` command (``register(subparsers)``).
"""

from __future__ import annotations

from latent_graph.bench.config import METHODS, BenchConfig
from latent_graph.bench.errors import (
    BenchArgumentError,
    BenchError,
    DataFormatError,
    DataNotFoundError,
    GraphOutputError,
    ResumeError,
    SandboxUnavailableError,
)
from latent_graph.bench.metrics import MethodSummary, Ratio, wilson_interval
from latent_graph.bench.runner import BenchSummary, load_results, run_bench
from latent_graph.bench.tasks import TASKS, Example, Score, Task, load_task, relay_probes

__all__ = [
    "METHODS",
    "TASKS",
    "BenchArgumentError",
    "BenchConfig",
    "BenchError",
    "BenchSummary",
    "DataFormatError",
    "DataNotFoundError",
    "Example",
    "GraphOutputError",
    "MethodSummary",
    "Ratio",
    "ResumeError",
    "SandboxUnavailableError",
    "Score",
    "Task",
    "load_results",
    "load_task",
    "relay_probes",
    "run_bench",
    "wilson_interval",
]
