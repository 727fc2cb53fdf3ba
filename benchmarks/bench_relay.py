"""Relay probes: does a fact seen only by the first agent reach the judger?

Conditions, same probes, same model, one run:
- latent-seq : planner sees the fact; planner → critic → refiner → judger over latent edges;
- text-seq   : the same chain over text edges (each agent decodes a message);
- latent-hier: the first of three parallel experts sees the fact; handles merged for the judger;
- no-edge    : the judger alone, never shown the fact (floor: guessing);
- direct     : the judger alone, shown the fact itself (ceiling for this model).

Usage: python benchmarks/bench_relay.py [--n 30] [--steps 8] [--memory all] [--max-new-tokens 24]
"""

from __future__ import annotations

import argparse
import json
import time

from latent_graph import LocalLatentModel
from latent_graph.bench.metrics import wilson_interval
from latent_graph.bench.tasks import relay_probes
from latent_graph.graphs import build_hierarchical, build_sequential, build_single


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--memory", default="all")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--json", default=None, help="also write results to this JSON file")
    args = p.parse_args()

    model = LocalLatentModel.default()
    task = relay_probes(args.n, args.seed)
    qs = [e.question for e in task.examples]
    ctx = [e.context for e in task.examples]
    common = dict(steps=args.steps, memory=args.memory, max_new_tokens=args.max_new_tokens, task="plain")
    conditions = {
        "latent-seq": (build_sequential(model, edges="latent", **common), ctx),
        "text-seq": (build_sequential(model, edges="text", **common), ctx),
        "latent-hier": (build_hierarchical(model, edges="latent", **common), ctx),
        "no-edge": (build_single(model, **common), None),
        "direct": (build_single(model, **common), ctx),
    }
    rows = []
    print(f"{task.source} on {model.name}; steps={args.steps} memory={args.memory}")
    print(f"{'condition':<12} {'acc':>6} {'95% CI':>15} {'wall s':>8}")
    for name, (graph, context) in conditions.items():
        t0 = time.perf_counter()
        out = graph.invoke({"questions": qs, "context": context})
        wall = time.perf_counter() - t0
        hits = sum(task.score(e, a).correct for e, a in zip(task.examples, out["answers"]))
        lo, hi = wilson_interval(hits, len(qs))
        rows.append({"condition": name, "correct": hits, "n": len(qs), "accuracy": hits / len(qs),
                     "ci95": [lo, hi], "wall_s": wall, "answers": out["answers"]})
        print(f"{name:<12} {hits / len(qs):6.2f} [{lo:5.2f}, {hi:5.2f}] {wall:8.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
