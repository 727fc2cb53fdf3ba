"""``run_bench``: every method over the same questions, resumable, with costs measured.

Work is split into jobs ``(seed, repeat, batch size, method, batch of questions)``.
Methods are interleaved batch by batch (batch 0 for every method, then batch 1...),
so slow drifts of a shared machine hit all methods alike. After each job its rows
are appended to ``results.jsonl`` (flushed and fsynced); a rerun with
``resume=True`` skips every ``(method, batch_size, seed, repeat, question)`` already
there, so a killed run loses at most the batch in flight.

Costs per job: wall seconds around ``graph.invoke``; tokens, latent steps and
handle bytes from the graph's trace; peak process RSS sampled by a background
thread (psutil) or, without psutil, ``getrusage`` (process-lifetime peak); peak
GPU memory on CUDA. Batch costs are split equally over the batch's rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from latent_graph.bench.errors import (
    BenchArgumentError,
    GraphOutputError,
    GraphsUnavailableError,
)
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
from latent_graph.bench.relay_suite import agent_context_state
from latent_graph.bench.tasks import Example, Task, load_task
from latent_graph.errors import LatentGraphError
from latent_graph.engine import DEFAULT_MEMORY, DecodeOptions, check_memory, check_steps, enable_prefixes
from latent_graph.persist import HandleStore
from latent_graph.bench.batching import cut_batches, padding_report, prefix_delta

if TYPE_CHECKING:
    from latent_graph.state import NodeRecord

METHODS: tuple[str, ...] = ("single", "text-seq", "text-hier", "latent-seq", "latent-hier")
EXTRA_METHODS: tuple[str, ...] = ("latent-compact",)
"""Methods run only when named ("all" means :data:`METHODS`): the compact prompt layout."""
_ALIASES = {
    "textmas-seq": "text-seq",
    "textmas-hier": "text-hier",
    "latentmas-seq": "latent-seq",
    "latentmas-hier": "latent-hier",
}


class Graph(Protocol):
    def invoke(self, state: dict[str, Any]) -> dict[str, Any]: ...


GraphFactory = Callable[..., Graph]


def normalize_methods(methods: str | Iterable[str]) -> list[str]:
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
    return out


def default_graph_factory(method: str, model: Any, **kwargs: Any) -> Graph:
    """Build the graph of ``method`` through the graph registry :func:`latent_graph.graphs.build_graph` (imported lazily)."""
    try:
        from latent_graph.graphs import build_graph
    except ImportError as exc:
        raise GraphsUnavailableError(
            f"latent_graph.graphs cannot be imported ({exc}); the benchmark needs the graph builders"
        ) from exc
    if method in ("single", "latent-compact"):
        return build_graph(method.removeprefix("latent-"), model, **kwargs)
    edges, topology = method.split("-")
    return build_graph("sequential" if topology == "seq" else "hierarchical", model, edges=edges, **kwargs)


# ------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class _Job:
    seed: int
    repeat: int
    batch_size: int
    method: str
    examples: tuple[tuple[int, Example], ...]  # (index in the task, example)


def _plan(
    examples: Sequence[Example], methods: Sequence[str], batch_size: int, seeds: Sequence[int], repeats: int,
    tp_sizes: Sequence[int], tp_methods: Sequence[str], tp_limit: int, lengths: Sequence[int] | None = None,
) -> list[_Job]:
    indexed = list(enumerate(examples))
    main = cut_batches(indexed, batch_size, lengths)
    slot_of = {i: slot for slot, chunk in enumerate(main) for i, _ in chunk}
    extra: dict[int, list[tuple[int, tuple[tuple[int, Example], ...]]]] = {}
    for bs in tp_sizes:
        for chunk in cut_batches(indexed[:tp_limit], bs, lengths):
            slot = max(slot_of[i] for i, _ in chunk)  # run after the last main batch holding one of its questions
            extra.setdefault(slot, []).append((bs, chunk))
    jobs: list[_Job] = []
    for seed in seeds:
        for rep in range(repeats):
            for slot, chunk in enumerate(main):
                jobs.extend(_Job(seed, rep, batch_size, m, chunk) for m in methods)
                jobs.extend(_Job(seed, rep, bs, m, c) for bs, c in extra.get(slot, []) for m in tp_methods)
    return jobs


def _trace_totals(trace: Sequence[NodeRecord], rows: int) -> dict[str, Any]:
    """Token counts summed over the batch's rows and nodes (records are per row), the largest handle, node times."""
    nodes: dict[str, float] = {}
    for n in trace:
        nodes[n["node"]] = round(nodes.get(n["node"], 0.0) + float(n["wall_s"]), 4)
    return {
        "prompt_tokens": sum(sum(n["prompt_tokens"]) for n in trace),
        "latent_steps": sum(n["latent_steps"] * rows for n in trace),
        "generated_tokens": sum(sum(n["generated_tokens"]) for n in trace),
        "handle_bytes": max((n["handle_bytes_after"] for n in trace), default=0),
        "node_wall_s": nodes,
    }


def _run_job(
    job: _Job, graph: Graph, task: Task, device: Any, code_timeout: float, batch_id: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    exs = [e for _, e in job.examples]
    state: dict[str, Any] = {"questions": [e.question for e in exs]}
    if any(e.context for e in exs):
        state["context"] = [e.context or "" for e in exs]
    per_agent = agent_context_state(exs)
    if per_agent:  # facts told to one named agent only (relay6 second_agent family)
        state["agent_context"] = per_agent
    error = None
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        try:
            out = graph.invoke(state)
        except LatentGraphError as exc:  # a named model error (e.g. context overflow): score as wrong
            out, error = {"answers": [""] * len(exs), "trace": []}, f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - t0
    answers = out.get("answers") if isinstance(out, dict) else None
    if not isinstance(answers, list) or len(answers) != len(exs):
        raise GraphOutputError(
            f"{job.method}: graph returned {type(answers).__name__} with "
            f"{len(answers) if isinstance(answers, list) else '?'} answers for {len(exs)} questions"
        )
    trace = list(out.get("trace") or [])
    tot = _trace_totals(trace, len(exs))
    b = len(exs)
    share = {k: tot[k] / b for k in ("prompt_tokens", "latent_steps", "generated_tokens")}
    rows = []
    for (index, ex), answer in zip(job.examples, answers):
        score = task.score(ex, str(answer), code_timeout=code_timeout) if error is None else None
        rows.append({
            "method": job.method, "batch_size": job.batch_size, "seed": job.seed, "repeat": job.repeat,
            "qid": ex.id, "index": index, "gold": ex.gold, "answer": str(answer),
            "pred": score.pred if score else None, "correct": bool(score and score.correct),
            "detail": score.detail if score else "", "status": "error" if error else "ok", "error": error,
            "batch_id": batch_id, "batch_rows": b, "batch_wall_s": wall, "wall_s": wall / b,
            **share, "total_tokens": sum(share.values()), "handle_bytes": tot["handle_bytes"] / b,
            "peak_rss_bytes": mem.peak, "rss_base_bytes": mem.base, "peak_gpu_bytes": mem.gpu_peak,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
    batch = {"batch_id": batch_id, "method": job.method, "batch_size": job.batch_size, "seed": job.seed,
             "repeat": job.repeat, "qids": [e.id for e in exs], "wall_s": wall, "error": error,
             "memory_source": mem.source, "load_avg_1m": loadavg()[0], **tot,
             "trace": [{k: v for k, v in n.items() if k != "steps"} for n in trace]}  # per-step logs dropped
    return rows, batch


def _warmup(model: Any, factory: GraphFactory, methods: Sequence[str], graph_task: str, rows: int) -> None:
    """Run every method once on a tiny batch of ``rows`` (2 new tokens, 1 latent step), untimed.

    First calls pay one-time costs (imports, allocator growth, kernel selection,
    LangGraph/LangChain setup) that would otherwise land on whichever method runs first.
    """
    for method in methods:
        g = factory(method, model, steps=1, memory=DEFAULT_MEMORY, max_new_tokens=2, temperature=0.0, top_p=1.0,
                    seed=0, checkpointer=None, task=graph_task, handle_store=HandleStore.in_memory())
        g.invoke({"questions": ["What is 1 + 1?"] * rows})


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchArgumentError(f"{name} must be a positive int, got {value!r}")
    return value


# -------------------------------------------------------------------- API
def run_bench(model: Any, *args: Any, **kwargs: Any) -> Any:
    """Run the benchmark (see :func:`_run_bench`); the model's shared-prefix cache setting is restored after."""
    before = getattr(model, "prefixes", None)
    try:
        return _run_bench(model, *args, **kwargs)
    finally:
        if before is not None:
            model.prefixes = before


def _run_bench(
    model: Any,
    methods: str | Sequence[str] = METHODS,
    task: str | Task = "gsm8k",
    limit: int | None = None,
    batch_size: int = 1,
    steps: int = 8,
    memory: str = DEFAULT_MEMORY,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seeds: Sequence[int] = (0,),
    repeats: int = 1,
    out_dir: str | Path = "runs/bench",
    *,
    data: str | Path | None = None,
    hf: bool = False,
    max_new_tokens: int = 256,
    resume: bool = False,
    throughput_batch_sizes: Sequence[int] = (),
    throughput_method: str = "latent-seq",
    throughput_limit: int | None = None,
    relay_seed: int = 0,
    code_timeout: float = 10.0,
    graph_factory: GraphFactory | None = None,
    warmup: bool = True,
    rescore: bool = False,
    bucket: bool = True,
    share_prefixes: bool = True,
    report: bool = True,
    progress: Callable[[str], None] | None = print,
) -> BenchSummary:
    """Run ``methods`` over the same questions of ``task`` and summarize.

    Args:
        model: A :class:`~latent_graph.LocalLatentModel` shared by every method and role.
        methods: Any of :data:`METHODS` (list or "a,b" string, or "all").
        task: "gsm8k", "arc", "code", "relay" or a ready :class:`Task`.
        limit: Use the first ``limit`` questions (relay: number of probes, default 20).
        batch_size: Questions per ``graph.invoke`` for every method.
        steps: Latent steps per non-final agent (latent methods).
        memory: Memory policy "all", "last" or "latent".
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus sampling mass.
        seeds: One full pass per seed (the graphs' sampling seed).
        repeats: Passes per seed (for timing spread; identical answers when greedy).
        out_dir: Folder for results.jsonl, batches.jsonl, summary.json, results.md, plot.
        data: Data file for gsm8k/arc/code.
        hf: gsm8k: load from the HF hub via ``datasets`` when no ``data`` is given.
        max_new_tokens: Generation budget of every text-producing agent.
        resume: Continue a run in ``out_dir`` (needed when it holds results).
        throughput_batch_sizes: Extra batch sizes at which ``throughput_method`` runs on
            the first ``throughput_limit`` questions, for the batch questions/s ratio.
        throughput_method: The method(s) measured at the extra batch sizes ("a,b" or a list).
        throughput_limit: Questions for the extra batch sizes (default: all selected).
        relay_seed: Seed generating relay probes.
        code_timeout: Seconds per code-task test run.
        graph_factory: ``f(method, model, **graph_kwargs) -> graph``; default builds
            with :mod:`latent_graph.graphs`. The kwargs include ``handle_store``: an in-memory
            store (``HandleStore.in_memory()``, emptied after every batch), as the CLI's ``run``.
        warmup: Run every method once on a tiny input before measuring (untimed).
        rescore: Re-judge every stored answer of the selected questions with the current
            extractor (after fixing extraction; nothing is regenerated). Implies ``resume``.
        bucket: Cut batches after sorting questions by token length (less padding); False = in order.
        share_prefixes: Turn on the model's shared-prefix cache (engine/prefix.py) for the run.
        report: Write summary.json, results.md and the plot.
        progress: Called with one line per job (None: silent).

    Returns:
        A :class:`BenchSummary` over the selected (method, batch size, seed, repeat, question) keys.
    """
    methods = normalize_methods(methods)
    batch_size = _positive_int("batch_size", batch_size)
    repeats = _positive_int("repeats", repeats)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise BenchArgumentError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise BenchArgumentError(f"seeds must be distinct, got {seeds!r}")
    tp_sizes = [_positive_int("throughput batch size", s) for s in throughput_batch_sizes]
    tp_sizes = [s for s in dict.fromkeys(tp_sizes) if s != batch_size]
    tp_methods = normalize_methods(throughput_method)
    if not tp_methods:
        raise BenchArgumentError("throughput_method names no method")
    if tp_sizes and not set(tp_methods) <= set(methods):
        raise BenchArgumentError(f"throughput methods {tp_methods} must be among the methods run: {methods}")
    tp_method = ",".join(tp_methods)
    _positive_int("max_new_tokens", max_new_tokens)
    try:
        check_steps(steps)
        check_memory(memory)
        DecodeOptions(max_new_tokens, temperature, top_p)
    except LatentGraphError as exc:
        raise BenchArgumentError(str(exc)) from exc

    if isinstance(task, Task):
        tk = task
    else:
        tk = load_task(task, data, hf=hf, n=limit or 20, seed=relay_seed)
    examples = tk.head(limit)
    if not examples:
        raise BenchArgumentError(f"task {tk.name!r} has no examples")
    tp_limit = len(examples) if throughput_limit is None else min(_positive_int("throughput_limit", throughput_limit), len(examples))

    load_start = loadavg()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "task": tk.name, "task_kind": tk.kind, "source": tk.source,
        "model": str(getattr(model, "fingerprint", None) or getattr(model, "name", type(model).__name__)),
        "steps": steps, "memory": memory, "temperature": temperature, "top_p": top_p,
        "max_new_tokens": max_new_tokens, "code_timeout": code_timeout,
    }
    check_config(out, config, resume or rescore)

    factory = graph_factory or default_graph_factory
    done = {record_key(r) for r in load_results(out)}
    padding = padding_report(model, examples, batch_size)
    jobs = _plan(examples, methods, batch_size, seeds, repeats, tp_sizes, tp_methods, tp_limit,
                 padding["lengths"] if bucket else None)
    device = getattr(model, "device", None)
    graphs: dict[tuple[str, int], Graph] = {}
    handles = HandleStore.in_memory()  # no checkpointer: like the CLI's run, no handle is serialized or written
    computed = skipped = 0
    warmed = not warmup
    batch_id = len(load_results(out))  # unique enough: grows with every row written
    prefixes = enable_prefixes(model) if share_prefixes and hasattr(model, "prefixes") else getattr(model, "prefixes", None)
    prefix_start = prefixes.stats.as_dict() if prefixes is not None else None
    for i, job in enumerate(jobs, start=1):
        todo = tuple(
            (idx, e) for idx, e in job.examples
            if (job.method, job.batch_size, job.seed, job.repeat, e.id) not in done
        )
        if not todo:
            skipped += 1
            continue
        if not warmed:
            _warmup(model, factory, methods, tk.graph_task, batch_size)
            warmed = True
        key = (job.method, job.seed)
        if key not in graphs:
            graphs[key] = factory(
                job.method, model, steps=steps, memory=memory, max_new_tokens=max_new_tokens,
                temperature=temperature, top_p=top_p, seed=job.seed, checkpointer=None, task=tk.graph_task,
                handle_store=handles,
            )
        run = _Job(job.seed, job.repeat, job.batch_size, job.method, todo)
        try:
            rows, batch = _run_job(run, graphs[key], tk, device, code_timeout, batch_id)
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

    if rescore:
        changed = rescore_results(out, tk, examples, code_timeout)
        if progress is not None:
            progress(f"rescored stored answers: {changed} judgement(s) changed")
    wanted = {(j.method, j.batch_size, j.seed, j.repeat, e.id) for j in jobs for _, e in j.examples}
    records = [r for r in load_results(out) if record_key(r) in wanted]
    loads = batch_loads(out, {r["batch_id"] for r in records})
    from latent_graph.bench.report import environment_info, write_report

    summary = BenchSummary(
        config={**config, "methods": methods, "batch_size": batch_size, "seeds": seeds, "repeats": repeats,
                "limit": limit, "questions": len(examples), "throughput_batch_sizes": tp_sizes,
                "throughput_method": tp_method, "throughput_limit": tp_limit, "bucket": bucket,
                "padding_share_arrival": padding["padding_share_arrival"],
                "padding_share_bucketed": padding["padding_share_bucketed"],
                "prefix_cache": prefix_delta(prefix_start, prefixes, records)},
        methods=summarize(records),
        ratios=compute_ratios(records, batch_size, tp_methods),
        environment={**environment_info(model), "load_avg_start": [round(x, 2) for x in load_start],
                     "load_avg_end": [round(x, 2) for x in loadavg()],
                     "load_avg_1m_batches": [round(min(loads), 2), round(max(loads), 2)] if loads else None},
        out_dir=str(out),
        records=records,
        computed_jobs=computed,
        skipped_jobs=skipped,
    )
    if report:
        summary.files = write_report(summary, out)
    return summary


__all__ = [
    "METHODS",
    "BenchSummary",
    "PeakMemory",
    "default_graph_factory",
    "load_results",
    "normalize_methods",
    "record_key",
    "rescore_results",
    "run_bench",
]
