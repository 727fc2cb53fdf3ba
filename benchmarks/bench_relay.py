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

from latent_graph import LocalLatentModel
from latent_graph.bench.conditions import measure
from latent_graph.bench.tasks import relay_probes
from latent_graph.engine import DEFAULT_MEMORY, DEFAULT_STEPS, MEMORY_POLICIES
from latent_graph.graphs import build_hierarchical, build_sequential, build_single


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--memory", default=DEFAULT_MEMORY, choices=MEMORY_POLICIES)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--json", default=None, help="also write results to this JSON file")
    args = p.parse_args()

    model = LocalLatentModel.default()
    task = relay_probes(args.n, args.seed)
    common = dict(steps=args.steps, memory=args.memory, max_new_tokens=args.max_new_tokens, task="plain")
    conditions = {  # graph, who is told the secret (the first agent, nobody, the judger itself)
        "latent-seq": (build_sequential(model, edges="latent", **common), "split"),
        "text-seq": (build_sequential(model, edges="text", **common), "split"),
        "latent-hier": (build_hierarchical(model, edges="latent", **common), "split"),
        "no-edge": (build_single(model, **common), "none"),
        "direct": (build_single(model, **common), "all"),
    }
    rows = []
    print(f"{task.source} on {model.name}; steps={args.steps} memory={args.memory}")
    print(f"{'condition':<12} {'acc':>6} {'95% CI':>15} {'wall s':>8}")
    for name, (graph, told) in conditions.items():
        r = measure(graph, task, len(task.examples), told)  # one batch: every probe in one run
        lo, hi = r["ci95"]
        rows.append(
            {
                "condition": name,
                "correct": r["correct"],
                "n": r["n"],
                "accuracy": r["accuracy"],
                "ci95": [lo, hi],
                "wall_s": r["wall_s"],
                "answers": r["answers"],
            }
        )
        print(f"{name:<12} {r['accuracy']:6.2f} [{lo:5.2f}, {hi:5.2f}] {r['wall_s']:8.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
