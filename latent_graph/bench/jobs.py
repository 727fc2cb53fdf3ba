"""The bench's unit of work: a job plans, runs and measures one graph run over a wave of questions.

A job is ``(seed, repeat, batch size, method, wave of questions)``: one ``graph.invoke`` on the wave, the
model running ``batch size`` rows at once (``model.batch_rows``: decoders admit the next question as a row
ends). :func:`plan` interleaves
methods batch by batch (batch 0 for every method, then batch 1 ...), so slow drifts of a shared
machine hit all methods alike. :func:`run_job` measures wall seconds around ``graph.invoke``;
tokens, latent steps and handle bytes from the graph's trace; peak process RSS and CUDA memory
(:class:`PeakMemory`). Batch costs are split equally over the batch's rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from latent_graph.bench.batching import cut_batches
from latent_graph.bench.errors import GraphOutputError
from latent_graph.bench.memory import PeakMemory, loadavg
from latent_graph.bench.relay_suite import agent_context_state
from latent_graph.bench.tasks import Example, Task
from latent_graph.errors import LatentGraphError

if TYPE_CHECKING:
    from latent_graph.state import NodeRecord


class Graph(Protocol):
    def invoke(self, state: dict[str, Any]) -> dict[str, Any]: ...


GraphFactory = Callable[..., Graph]
"""``f(method, model, **graph_kwargs) -> graph``: the graph of one method, given a job's graph options."""


@dataclass(frozen=True)
class Job:
    seed: int
    repeat: int
    batch_size: int
    method: str
    examples: tuple[tuple[int, Example], ...]  # (index in the task, example)


def plan(
    examples: Sequence[Example],
    methods: Sequence[str],
    batch_size: int,
    seeds: Sequence[int],
    repeats: int,
    tp_sizes: Sequence[int],
    tp_methods: Sequence[str],
    tp_limit: int,
    lengths: Sequence[int] | None = None,
    wave: int = 1,
) -> list[Job]:
    """Every job of a run, in run order; the extra (throughput) batch sizes run after the last main job they need.

    A job at batch size ``bs`` carries up to ``wave * bs`` questions (one graph run, ``bs`` rows at once).
    """
    indexed = list(enumerate(examples))
    main = cut_batches(indexed, batch_size * wave, lengths)
    slot_of = {i: slot for slot, chunk in enumerate(main) for i, _ in chunk}
    extra: dict[int, list[tuple[int, tuple[tuple[int, Example], ...]]]] = {}
    for bs in tp_sizes:
        for chunk in cut_batches(indexed[:tp_limit], bs * wave, lengths):
            slot = max(slot_of[i] for i, _ in chunk)  # run after the last main batch holding one of its questions
            extra.setdefault(slot, []).append((bs, chunk))
    jobs: list[Job] = []
    for seed in seeds:
        for rep in range(repeats):
            for slot, chunk in enumerate(main):
                jobs.extend(Job(seed, rep, batch_size, m, chunk) for m in methods)
                jobs.extend(Job(seed, rep, bs, m, c) for bs, c in extra.get(slot, []) for m in tp_methods)
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


def run_job(
    job: Job, graph: Graph, task: Task, device: Any, code_timeout: float, batch_id: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one job: its per-question result rows and its batch record (costs, trace without per-step logs)."""
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
        rows.append(
            {
                "method": job.method,
                "batch_size": job.batch_size,
                "seed": job.seed,
                "repeat": job.repeat,
                "qid": ex.id,
                "index": index,
                "gold": ex.gold,
                "answer": str(answer),
                "pred": score.pred if score else None,
                "correct": bool(score and score.correct),
                "detail": score.detail if score else "",
                "status": "error" if error else "ok",
                "error": error,
                "batch_id": batch_id,
                "batch_rows": b,
                "batch_wall_s": wall,
                "wall_s": wall / b,
                **share,
                "total_tokens": sum(share.values()),
                "handle_bytes": tot["handle_bytes"] / b,
                "peak_rss_bytes": mem.peak,
                "rss_base_bytes": mem.base,
                "peak_gpu_bytes": mem.gpu_peak,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
    batch = {
        "batch_id": batch_id,
        "method": job.method,
        "batch_size": job.batch_size,
        "seed": job.seed,
        "repeat": job.repeat,
        "qids": [e.id for e in exs],
        "wall_s": wall,
        "error": error,
        "memory_source": mem.source,
        "load_avg_1m": loadavg()[0],
        **tot,
        "trace": [{k: v for k, v in n.items() if k != "steps"} for n in trace],
    }  # per-step logs dropped
    return rows, batch


__all__ = ["Graph", "GraphFactory", "Job", "plan", "run_job"]
