"""Serving benchmark: batched Ray Serve vs one-at-a-time vs direct graph.invoke, then a replica kill.

Starts ``latent-graph serve`` in-process (Ray on 2 CPUs, HTTP on 127.0.0.1
only) with the default model, and in one run prints side by side:

(a) served, 16 concurrent loopback clients, requests coalesced by ``@serve.batch``;
(b) served, the same questions one at a time (one client);
(c) direct ``graph.invoke`` in this process, in batches of 8 (no HTTP, no Ray);
(d) (a) again while the replica's process is SIGKILLed mid-load: the clients
    retry 503 + Retry-After; every request must finish, none lost.

Requests name no graph, so the server runs its default (the registry's DEFAULT_GRAPH, as
the CLI does); (c) runs the same graph. It also prints the replica's shared-prefix cache
counters and the padding share of its coalesced batches (before/after length bucketing).

Every answer of (a), (c), (d) is compared with the unbatched greedy answer of (b).
Goals: (a) >= 2.5x the questions/s of (b); p95 latency of (a) <= 3x the p50 of (b);
0 lost requests in (d).

Run: ``PYTHONPATH=. python benchmarks/bench_serve.py`` (defaults: 64 questions,
steps 2, 32 new tokens, 1 torch thread; ~8 min on 2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from latent_graph.serve import ServeClient, ServeConfig, replica_pid, start, stop


@dataclass
class Run:
    """One measured pass over the questions."""

    name: str
    wall_s: float
    latencies: list[float]
    answers: list[str | None]
    retried: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.wall_s

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def served(
    name: str, client: ServeClient, questions: list[str], clients: int, kill: threading.Event | None = None
) -> Run:
    """Each question through HTTP by ``clients`` concurrent threads; ``kill`` is set once the load runs."""

    def one(q: str) -> tuple[float, str | None, int, str | None]:
        t0 = time.perf_counter()
        try:
            reply = client.ask(q)
        except Exception as exc:  # a lost request
            return time.perf_counter() - t0, None, 1, f"{type(exc).__name__}: {exc}"
        err = None if reply.status == 200 else f"HTTP {reply.status} {reply.body.get('error')}"
        return time.perf_counter() - t0, reply.body.get("answer"), reply.attempts, err

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one, q) for q in questions]
        if kill is not None:
            kill.set()
        rows = [f.result() for f in futures]
    return Run(
        name,
        time.perf_counter() - t0,
        [r[0] for r in rows],
        [r[1] for r in rows],
        retried=sum(r[2] > 1 for r in rows),
        failed=[r[3] for r in rows if r[3]],
    )


def direct(questions: list[str], cfg: ServeConfig, batch: int) -> Run:
    """``graph.invoke`` in this process, ``batch`` questions at a time (latency = its batch's time)."""
    import torch

    from latent_graph import LocalLatentModel
    from latent_graph.graphs import build_graph

    torch.set_num_threads(cfg.torch_threads or 1)
    graph = build_graph(
        cfg.default_graph, LocalLatentModel.default(), steps=cfg.steps, max_new_tokens=cfg.max_new_tokens, task=cfg.task
    )  # the graph the server runs
    graph.invoke({"questions": questions[:1]})  # warm-up
    latencies: list[float] = []
    answers: list[str | None] = []
    t0 = time.perf_counter()
    for i in range(0, len(questions), batch):
        t = time.perf_counter()
        answers += graph.invoke({"questions": questions[i : i + batch]})["answers"]
        latencies += [time.perf_counter() - t] * len(questions[i : i + batch])
    return Run(f"(c) direct invoke, batches of {batch}", time.perf_counter() - t0, latencies, answers)


def killer(cfg: ServeConfig, go: threading.Event, after_s: float, log: list[str]) -> threading.Thread:
    def run() -> None:
        pid = replica_pid(cfg)
        go.wait()
        time.sleep(after_s)
        os.kill(pid, signal.SIGKILL)
        log.append(f"SIGKILLed replica pid {pid} {after_s:.1f} s into the load")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--batch-wait-ms", type=float, default=100.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (replica and direct)")
    ap.add_argument("--kill-after-s", type=float, default=3.0)
    args = ap.parse_args()

    questions = [f"What is {3 + 7 * i} plus {5 + 11 * i}?" for i in range(args.questions)]
    cfg = ServeConfig(
        model="default",
        steps=args.steps,
        max_new_tokens=args.max_new_tokens,
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_ms / 1000,
        num_cpus=1,
        torch_threads=args.threads,
        port=_free_port(),
    )
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    client = ServeClient(start(cfg, num_cpus=2), timeout_s=600, retries=60)
    client.ask(questions[0])  # warm-up
    one = served("(b) served, one at a time", client, questions, clients=1)
    batched = served(f"(a) served, {args.clients} clients, batching", client, questions, clients=args.clients)
    health = client.health().body  # the replica's shared-prefix cache and padding counters, before the kill
    go, log = threading.Event(), []
    thread = killer(cfg, go, args.kill_after_s, log)
    killed = served("(d) = (a) + replica SIGKILL", client, questions, clients=args.clients, kill=go)
    thread.join(timeout=60)
    stop()
    inproc = direct(questions, cfg, 8)
    load1 = os.getloadavg()

    print(
        f"\nbench_serve: {args.questions} questions, default model, steps={args.steps}, "
        f"max_new_tokens={args.max_new_tokens}, max_batch_size={args.max_batch_size}, "
        f"batch_wait={args.batch_wait_ms:.0f} ms, torch threads={args.threads}"
    )
    print(
        f"{'run':40s} {'q/s':>6s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s} {'= (b)':>7s} {'retried':>7s} {'lost':>5s}"
    )
    for run in (batched, one, inproc, killed):
        same = sum(a == b for a, b in zip(run.answers, one.answers))
        print(
            f"{run.name:40s} {run.qps:6.3f} {run.pct(50):7.2f} {run.pct(95):7.2f} {max(run.latencies):7.2f} "
            f"{same:>3d}/{len(questions):<3d} {run.retried:7d} {len(run.failed):5d}"
        )
    for line in log + [f"failure: {f}" for f in killed.failed[:5] + batched.failed[:5]]:
        print(line)
    speedup, p95x = batched.qps / one.qps, batched.pct(95) / one.pct(50)
    print(f"served throughput (a)/(b): {speedup:.2f}x (goal >= 2.5x) {'MET' if speedup >= 2.5 else 'MISSED'}")
    print(f"p95 (a) / single-request p50 (b): {p95x:.2f}x (goal <= 3x) {'MET' if p95x <= 3 else 'MISSED'}")
    lost = len(killed.failed)
    print(f"lost requests after replica kill: {lost} (goal 0) {'MET' if lost == 0 else 'MISSED'}")
    pc, pad = health.get("prefix_cache") or {}, health.get("padding") or {}
    if pc:
        print(
            f"shared-prefix cache (replica, (b)+(a)): {pc.get('saved_share', 0):.1%} of first-agent prefill tokens "
            f"not recomputed ({pc.get('reused_tokens')} reused, {pc.get('computed_prefix_tokens')} computed once, "
            f"{pc.get('hits')} hits)"
        )
    if pad.get("columns"):
        print(
            f"padding share of question columns in coalesced batches: {pad['pad_unbucketed'] / pad['columns']:.1%} "
            f"unbucketed -> {pad['pad_bucketed'] / pad['columns']:.1%} bucketed ({pad['batches']} batches)"
        )
    print(f"graph: {cfg.default_graph} (the registry default, as on the CLI)")
    print(
        f"load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load0)}, "
        f"after {tuple(round(x, 2) for x in load1)}; cores: {os.cpu_count()}; "
        f"total {time.perf_counter() - t_start:.0f} s"
    )


if __name__ == "__main__":
    main()
