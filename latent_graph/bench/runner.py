"""``run_bench``: every method over the same questions, resumable, with costs measured.

Work is split into jobs (:mod:`latent_graph.bench.jobs`). After each job its rows are appended
to ``results.jsonl`` (flushed and fsynced); a rerun with ``resume=True`` skips every
``(method, batch_size, seed, repeat, question)`` already there, so a killed run loses at most
the batch in flight. Every setting comes from one :class:`BenchConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from latent_graph.bench.batching import padding_report, prefix_delta
from latent_graph.bench.config import GENERATED_EXAMPLES, METHODS, BenchConfig, normalize_methods
from latent_graph.bench.errors import BenchArgumentError
from latent_graph.bench.jobs import Graph, GraphFactory, Job, plan, run_job
from latent_graph.bench.memory import PeakMemory, loadavg
from latent_graph.bench.metrics import BenchSummary, compute_ratios, summarize
from latent_graph.bench.store import (
    BATCHES,
    RESULTS,
    append_jsonl,
    batch_loads,
    check_config,
    load_results,
    record_key,
    rescore_results,
)
from latent_graph.bench.tasks import Task, load_task
from latent_graph.engine import enable_prefixes
from latent_graph.graphs import build_graph
from latent_graph.persist import HandleStore


def default_graph_factory(method: str, model: Any, **kwargs: Any) -> Graph:
    """Build the graph of ``method`` through the graph registry :func:`latent_graph.graphs.build_graph`."""
    if method in ("single", "latent-compact"):
        return build_graph(method.removeprefix("latent-"), model, **kwargs)
    edges, topology = method.split("-")
    return build_graph("sequential" if topology == "seq" else "hierarchical", model, edges=edges, **kwargs)


def _warmup(model: Any, factory: GraphFactory, config: BenchConfig, graph_task: str) -> None:
    """Run every method once on a tiny batch of ``config.batch_size`` rows (2 new tokens, 1 latent step), untimed.

    First calls pay one-time costs (imports, allocator growth, kernel selection,
    LangGraph/LangChain setup) that would otherwise land on whichever method runs first.
    """
    kwargs = config.graph_kwargs(0, graph_task, steps=1, max_new_tokens=2)
    _rows(model, config.batch_size)
    for method in config.methods:
        g = factory(method, model, **kwargs, checkpointer=None, handle_store=HandleStore.in_memory())
        g.invoke({"questions": ["What is 1 + 1?"] * config.batch_size})


# -------------------------------------------------------------------- API
def run_bench(
    model: Any,
    config: BenchConfig | None = None,
    *,
    graph_factory: GraphFactory | None = None,
    progress: Callable[[str], None] | None = print,
) -> BenchSummary:
    """Run ``config.methods`` over the same questions of ``config.task`` and summarize.

    The model's shared-prefix cache setting is restored after the run.

    Args:
        model: A :class:`~latent_graph.LocalLatentModel` shared by every method and role.
        config: Every setting of the run (default :class:`BenchConfig()`).
        graph_factory: ``f(method, model, **graph_kwargs) -> graph``; default builds with
            :mod:`latent_graph.graphs`. The kwargs are every :class:`~latent_graph.graphs.GraphOptions`
            field of the job plus ``checkpointer=None`` and ``handle_store``: an in-memory store
            (``HandleStore.in_memory()``, emptied after every batch), as the CLI's ``run``.
        progress: Called with one line per job (None: silent).

    Returns:
        A :class:`BenchSummary` over the selected (method, batch size, seed, repeat, question) keys.
    """
    config = BenchConfig() if config is None else config
    if not isinstance(config, BenchConfig):
        raise BenchArgumentError(f"config must be a BenchConfig, got {type(config).__name__}")
    before = getattr(model, "prefixes", None)
    rows = getattr(model, "batch_rows", None)
    try:
        return _run_bench(model, config, graph_factory or default_graph_factory, progress)
    finally:
        if before is not None:
            model.prefixes = before
        if hasattr(model, "batch_rows"):
            model.batch_rows = rows


def _rows(model: Any, batch_size: int) -> None:
    """Run ``batch_size`` rows at once (continuous batching beyond that), on a model that batches rows."""
    if hasattr(model, "batch_rows"):
        model.batch_rows = batch_size


def _run_bench(
    model: Any, cfg: BenchConfig, factory: GraphFactory, progress: Callable[[str], None] | None
) -> BenchSummary:
    methods, batch_size, tp_methods = cfg.methods, cfg.batch_size, cfg.throughput_methods
    if isinstance(cfg.task, Task):
        tk = cfg.task
    else:
        tk = load_task(cfg.task, cfg.data, hf=cfg.hf, n=cfg.limit or GENERATED_EXAMPLES, seed=cfg.relay_seed)
    examples = tk.head(cfg.limit)
    if not examples:
        raise BenchArgumentError(f"task {tk.name!r} has no examples")
    tp_limit = len(examples) if cfg.throughput_limit is None else min(cfg.throughput_limit, len(examples))

    load_start = loadavg()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "task": tk.name,
        "task_kind": tk.kind,
        "source": tk.source,
        "model": str(getattr(model, "fingerprint", None) or getattr(model, "name", type(model).__name__)),
        **cfg.graph_settings(),
        "code_timeout": cfg.code_timeout,
    }
    check_config(out, config, cfg.resume or cfg.rescore)

    done = {record_key(r) for r in load_results(out)}
    padding = padding_report(model, examples, batch_size)
    jobs = plan(
        examples,
        methods,
        batch_size,
        cfg.seeds,
        cfg.repeats,
        cfg.throughput_batch_sizes,
        tp_methods,
        tp_limit,
        padding["lengths"] if cfg.bucket else None,
        cfg.wave_batches,
    )
    device = getattr(model, "device", None)
    graphs: dict[tuple[str, int], Graph] = {}
    handles = HandleStore.in_memory()  # no checkpointer: like the CLI's run, no handle is serialized or written
    computed = skipped = 0
    warmed = not cfg.warmup
    batch_id = len(load_results(out))  # unique enough: grows with every row written
    prefixes = (
        enable_prefixes(model)
        if cfg.share_prefixes and hasattr(model, "prefixes")
        else getattr(model, "prefixes", None)
    )
    prefix_start = prefixes.stats.as_dict() if prefixes is not None else None
    for i, job in enumerate(jobs, start=1):
        todo = tuple(
            (idx, e) for idx, e in job.examples if (job.method, job.batch_size, job.seed, job.repeat, e.id) not in done
        )
        if not todo:
            skipped += 1
            continue
        if not warmed:
            _warmup(model, factory, cfg, tk.graph_task)
            warmed = True
        key = (job.method, job.seed)
        if key not in graphs:
            graphs[key] = factory(
                job.method, model, **cfg.graph_kwargs(job.seed, tk.graph_task), checkpointer=None, handle_store=handles
            )
        run = Job(job.seed, job.repeat, job.batch_size, job.method, todo)
        _rows(model, job.batch_size)
        try:
            rows, batch = run_job(run, graphs[key], tk, device, cfg.code_timeout, batch_id)
        finally:
            handles.clear()  # a batch's handles live one invocation
        batch_id += len(rows)
        append_jsonl(out / RESULTS, rows)
        append_jsonl(out / BATCHES, [batch])
        done.update(record_key(r) for r in rows)
        computed += 1
        if progress is not None:
            ok = sum(r["correct"] for r in rows)
            err = " (error: " + str(rows[0]["error"])[:80] + ")" if rows[0]["error"] else ""
            progress(
                f"[{i}/{len(jobs)}] {job.method:<11} bs={job.batch_size} seed={job.seed} rep={job.repeat} "
                f"q{todo[0][0]}..{todo[-1][0]}: {ok}/{len(rows)} correct, {batch['wall_s']:.1f}s, "
                f"{batch['generated_tokens']} gen tok{err}"
            )

    if cfg.rescore:
        changed = rescore_results(out, tk, examples, cfg.code_timeout)
        if progress is not None:
            progress(f"rescored stored answers: {changed} judgement(s) changed")
    wanted = {(j.method, j.batch_size, j.seed, j.repeat, e.id) for j in jobs for _, e in j.examples}
    records = [r for r in load_results(out) if record_key(r) in wanted]
    loads = batch_loads(out, {r["batch_id"] for r in records})
    from latent_graph.bench.report import environment_info, write_report

    summary = BenchSummary(
        config={
            **config,
            "methods": list(methods),
            "batch_size": batch_size,
            "wave_batches": cfg.wave_batches,
            "seeds": list(cfg.seeds),
            "repeats": cfg.repeats,
            "limit": cfg.limit,
            "questions": len(examples),
            "throughput_batch_sizes": list(cfg.throughput_batch_sizes),
            "throughput_method": ",".join(tp_methods),
            "throughput_limit": tp_limit,
            "bucket": cfg.bucket,
            "padding_share_arrival": padding["padding_share_arrival"],
            "padding_share_bucketed": padding["padding_share_bucketed"],
            "prefix_cache": prefix_delta(prefix_start, prefixes, records),
        },
        methods=summarize(records),
        ratios=compute_ratios(records, batch_size, tp_methods),
        environment={
            **environment_info(model),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in loadavg()],
            "load_avg_1m_batches": [round(min(loads), 2), round(max(loads), 2)] if loads else None,
        },
        out_dir=str(out),
        records=records,
        computed_jobs=computed,
        skipped_jobs=skipped,
    )
    if cfg.report:
        summary.files = write_report(summary, out)
    return summary


__all__ = [
    "METHODS",
    "BenchConfig",
    "BenchSummary",
    "PeakMemory",
    "default_graph_factory",
    "load_results",
    "normalize_methods",
    "record_key",
    "rescore_results",
    "run_bench",
]
