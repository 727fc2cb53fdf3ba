"""What bounds the default latent chain's batch-8 / batch-1 questions/s on this machine: stragglers or the CPU.

    python benchmarks/batch_bound.py                # the default model, the first 8 GSM8K questions

Runs the CLI's default graph (compact latent chain, 8 latent steps, a 128-token answer budget, the
shared-prefix cache on, handles kept in memory, as ``bench_mas.py``) on the same 8 questions, side by side in one run:

1. **as used**: the 8 questions one at a time (summed) and as one batch of 8, greedy: the ratio of
   questions/s ``bench_mas.py`` reports as ``latent-compact questions/s, batch 8 / batch 1``;
2. **no straggler**: the same, with every row decoding exactly the mean number of answer tokens of
   part 1 (end-of-sequence off), so each row of the batch does the same work and none waits for a
   longer one: the CPU's own bound on the ratio for this chain, prefill and latent steps included.

For both it prints the profile (seconds per node — each latent agent is its prompt's prefill plus its
latent steps, the judger its prefill plus decoding — at batch 1, summed, and at batch 8, with the gain of
each), the share of fresh-prefill tokens the shared-prefix cache did not recompute, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import torch

from latent_graph import LocalLatentModel
from latent_graph.bench import load_task
from latent_graph.engine import enable_prefixes
from latent_graph.graphs import DEFAULT_GRAPH, build_graph
from latent_graph.persist import HandleStore


def run(graph, questions: list[str], batch: int) -> tuple[float, Counter, list[int]]:
    """Wall seconds over ``questions`` in batches of ``batch``, seconds per node, answer tokens per question."""
    wall, nodes, tokens = 0.0, Counter(), []
    for i in range(0, len(questions), batch):
        t0 = time.perf_counter()
        out = graph.invoke({"questions": questions[i : i + batch]})
        wall += time.perf_counter() - t0
        for rec in out["trace"]:
            nodes[rec["node"]] += float(rec["wall_s"])
            if rec["kind"] == "answer":
                tokens.extend(rec["generated_tokens"])
    return wall, nodes, tokens


def report(name: str, one: tuple[float, Counter, list[int]], eight: tuple[float, Counter, list[int]]) -> float:
    ratio = one[0] / eight[0]  # questions/s at batch 8 over questions/s at batch 1, same questions
    print(
        f"\n{name}: batch 1 {one[0]:.1f} s (summed), batch 8 {eight[0]:.1f} s -> batch 8 / batch 1 questions/s "
        f"{ratio:.2f}; answer tokens per question {sum(one[2]) / len(one[2]):.1f} (batch 1), "
        f"{sum(eight[2]) / len(eight[2]):.1f} (batch 8), longest {max(eight[2])}"
    )
    print(f"  {'node':<10} {'batch 1 s':>10} {'share':>6} {'batch 8 s':>10} {'gain':>6}")
    for node, s1 in one[1].items():
        s8 = eight[1][node]
        print(f"  {node:<10} {s1:10.1f} {s1 / sum(one[1].values()):6.1%} {s8:10.1f} {s1 / s8:6.2f}")
    return ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/gsm8k/test.jsonl")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    model = LocalLatentModel.default()
    prefixes = enable_prefixes(model)
    task = load_task("gsm8k", args.data, n=8)
    questions = [e.question for e in task.head(8)]
    opts = {
        "steps": args.steps,
        "task": task.graph_task,
        "checkpointer": None,
        "handle_store": HandleStore.in_memory(),
    }  # as the CLI's run and the bench: nothing written
    graph = build_graph(DEFAULT_GRAPH, model, max_new_tokens=args.max_new_tokens, **opts)
    graph.invoke({"questions": questions[:2]})  # warm-up (and the shared prefixes stored), untimed
    before = prefixes.stats.as_dict()
    used = run(graph, questions, 1), run(graph, questions, 8)
    mean = round(sum(used[0][2]) / len(used[0][2]))
    eos, model.eos_ids = model.eos_ids, set()  # every row decodes exactly `mean` tokens
    try:
        fixed = build_graph(DEFAULT_GRAPH, model, max_new_tokens=mean, **opts)
        level = run(fixed, questions, 1), run(fixed, questions, 8)
    finally:
        model.eos_ids = eos
    after = prefixes.stats.as_dict()
    print(
        f"torch threads {torch.get_num_threads()}; graph {DEFAULT_GRAPH!r}, {args.steps} latent steps, "
        f"{len(questions)} GSM8K questions; load average at start {tuple(round(x, 2) for x in load0)}"
    )
    real = report(f"as used (greedy, answer budget {args.max_new_tokens})", *used)
    bound = report(f"no straggler (every row decodes {mean} tokens)", *level)
    reused = after["reused_tokens"] - before["reused_tokens"]
    computed = after["computed_prefix_tokens"] - before["computed_prefix_tokens"]
    total = after["prompt_tokens"] - before["prompt_tokens"]
    print(
        f"\nshared-prefix cache: {(reused - computed) / total:.1%} of the fresh-prefill tokens not recomputed "
        f"({reused} of {total} reused, {computed} computed once to store)"
    )
    print(
        f"batch 8 / batch 1 questions/s: {real:.2f} as used; {bound:.2f} with no straggler (this CPU's bound "
        f"for the chain); stragglers cost {1 - real / bound:.0%} of the bound"
    )
    print(f"load average at end {tuple(round(x, 2) for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
