"""``BenchConfig``: every setting of one benchmark run, in one frozen object.

The graph settings are a :class:`~latent_graph.graphs.GraphOptions` (their one owner: names,
defaults, checks); the bench sets two of them itself per job: ``seed`` (one pass per entry of
:attr:`BenchConfig.seeds`) and ``task`` (the answer format of the benchmark task).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from latent_graph.bench.errors import BenchArgumentError
from latent_graph.bench.task_types import Task
from latent_graph.graphs import GraphOptions

METHODS: tuple[str, ...] = ("single", "text-seq", "text-hier", "latent-seq", "latent-hier")
EXTRA_METHODS: tuple[str, ...] = ("latent-compact",)
"""Methods run only when named ("all" means :data:`METHODS`): the compact prompt layout."""
_ALIASES = {
    "textmas-seq": "text-seq",
    "textmas-hier": "text-hier",
    "latentmas-seq": "latent-seq",
    "latentmas-hier": "latent-hier",
}
GENERATED_EXAMPLES = 20
"""Examples a generated task (relay probes, relay6) has when no ``limit`` is given."""
PER_JOB = ("seed", "task")
""":class:`GraphOptions` fields the bench sets per job (from ``seeds`` and the task), never from ``graph``."""


def normalize_methods(methods: str | Iterable[str]) -> tuple[str, ...]:
    """Method names, deduplicated, validated; accepts "a,b" strings, ``_`` for ``-`` and "all"."""
    items = methods.split(",") if isinstance(methods, str) else list(methods)
    out: list[str] = []
    for raw in items:
        m = str(raw).strip().lower().replace("_", "-")
        if not m:
            continue
        if m == "all":
            out.extend(x for x in METHODS if x not in out)
            continue
        m = _ALIASES.get(m, m)
        if m not in METHODS + EXTRA_METHODS:
            raise BenchArgumentError(
                f"unknown method {raw!r}; choose from {', '.join(METHODS + EXTRA_METHODS)} (or 'all')"
            )
        if m not in out:
            out.append(m)
    if not out:
        raise BenchArgumentError("no methods given")
    return tuple(out)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchArgumentError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class BenchConfig:
    """The settings of :func:`~latent_graph.bench.runner.run_bench`, checked on construction.

    Attributes:
        methods: Any of :data:`METHODS` (tuple, or an "a,b" string, or "all"); stored as a tuple.
        task: "gsm8k", "arc", "code", "relay", "relay6[:split]" or a ready :class:`Task`.
        data: Data file for gsm8k/arc/code.
        hf: gsm8k: load from the HF hub via ``datasets`` when no ``data`` is given.
        limit: Use the first ``limit`` questions (generated relay tasks: their number, default
            :data:`GENERATED_EXAMPLES`).
        relay_seed: Seed generating relay probes.
        batch_size: Rows one forward runs for every method (``model.batch_rows``): a graph run prefills and
            thinks in slices of this many, and decodes with this many rows at once, the next question entering
            the slot of a row that ended (continuous batching).
        wave_batches: Each ``graph.invoke`` carries up to ``wave_batches * batch_size`` questions (the queue
            its decoders admit from; more hold more caches in memory at once).
        graph: The graphs' node settings (steps, memory, decoding, edge compression ...); its
            ``seed`` and ``task`` stay at their defaults (see :data:`PER_JOB`).
        seeds: One full pass per seed (the graphs' sampling seed).
        repeats: Passes per seed (for timing spread; identical answers when greedy).
        throughput_batch_sizes: Extra batch sizes at which ``throughput_methods`` run on the first
            ``throughput_limit`` questions, for the batch questions/s ratio.
        throughput_methods: The method(s) measured at the extra batch sizes ("a,b" or a tuple).
        throughput_limit: Questions for the extra batch sizes (None: all selected).
        code_timeout: Seconds per code-task test run.
        out_dir: Folder for results.jsonl, batches.jsonl, summary.json, results.md, plot.
        resume: Continue a run in ``out_dir`` (needed when it holds results).
        rescore: Re-judge every stored answer of the selected questions with the current
            extractor (after fixing extraction; nothing is regenerated). Implies ``resume``.
        warmup: Run every method once on a tiny input before measuring (untimed).
        bucket: Cut batches after sorting questions by token length (less padding); False = in order.
        share_prefixes: Turn on the model's shared-prefix cache for the run.
        report: Write summary.json, results.md and the plot.
    """

    methods: tuple[str, ...] = METHODS
    task: str | Task = "gsm8k"
    data: str | None = None
    hf: bool = False
    limit: int | None = None
    relay_seed: int = 0
    batch_size: int = 1
    wave_batches: int = 4
    graph: GraphOptions = field(default_factory=GraphOptions)
    seeds: tuple[int, ...] = (0,)
    repeats: int = 1
    throughput_batch_sizes: tuple[int, ...] = ()
    throughput_methods: tuple[str, ...] = ("latent-seq",)
    throughput_limit: int | None = None
    code_timeout: float = 10.0
    out_dir: str = "runs/bench"
    resume: bool = False
    rescore: bool = False
    warmup: bool = True
    bucket: bool = True
    share_prefixes: bool = True
    report: bool = True

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)  # normalizing a frozen instance during construction

        put("methods", normalize_methods(self.methods))
        _positive_int("batch_size", self.batch_size)
        _positive_int("wave_batches", self.wave_batches)
        _positive_int("repeats", self.repeats)
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise BenchArgumentError(f"seeds must be a non-empty list of ints, got {list(seeds)!r}")
        if len(set(seeds)) != len(seeds):
            raise BenchArgumentError(f"seeds must be distinct, got {list(seeds)!r}")
        put("seeds", seeds)
        sizes = [_positive_int("throughput batch size", s) for s in self.throughput_batch_sizes]
        put("throughput_batch_sizes", tuple(s for s in dict.fromkeys(sizes) if s != self.batch_size))
        put("throughput_methods", normalize_methods(self.throughput_methods))
        if self.throughput_batch_sizes and not set(self.throughput_methods) <= set(self.methods):
            raise BenchArgumentError(
                f"throughput methods {list(self.throughput_methods)} must be among the methods run: "
                f"{list(self.methods)}"
            )
        if self.throughput_limit is not None:
            _positive_int("throughput_limit", self.throughput_limit)
        if self.limit is not None:
            _positive_int("limit", self.limit)
        if not isinstance(self.graph, GraphOptions):
            raise BenchArgumentError(f"graph must be a GraphOptions, got {type(self.graph).__name__}")
        defaults = GraphOptions()
        for name in PER_JOB:
            if getattr(self.graph, name) != getattr(defaults, name):
                raise BenchArgumentError(
                    f"graph.{name} is set per job by the bench (seeds, the task's answer "
                    f"format); leave it at its default, got {getattr(self.graph, name)!r}"
                )
        timeout = self.code_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise BenchArgumentError(f"code_timeout must be a positive number of seconds, got {self.code_timeout!r}")

    def graph_settings(self) -> dict[str, Any]:
        """The graph options that shape every answer (all but :data:`PER_JOB`), as recorded with the results."""
        return {f.name: getattr(self.graph, f.name) for f in dataclasses.fields(GraphOptions) if f.name not in PER_JOB}

    def graph_kwargs(self, seed: int, task: str, **overrides: Any) -> dict[str, Any]:
        """Keyword options of one job's graph builder: the graph settings, ``seed``, ``task`` and ``overrides``."""
        opts = dataclasses.replace(self.graph, seed=seed, task=task, **overrides)  # re-checked by GraphOptions
        return {f.name: getattr(opts, f.name) for f in dataclasses.fields(GraphOptions)}


__all__ = ["EXTRA_METHODS", "GENERATED_EXAMPLES", "METHODS", "PER_JOB", "BenchConfig", "normalize_methods"]
