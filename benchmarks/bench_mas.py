"""The issue's performance goals, measured in one run on the default model.

Runs single, text-seq and latent-seq over the same GSM8K questions at batch 8,
plus latent-seq at batch 1 on the first 8 of them, and prints the four ratios
next to their goals:

- latent-seq >= 5x faster than text-seq (wall), with >= 80% fewer generated tokens;
- latent-seq wall <= 1.3x the single agent's;
- batch 8 >= 3x the questions/s of batch 1 (issue 13).

Usage (about 11 minutes with the defaults on the shared 2-core CPU of docs/benchmarks.md, --threads 1):
    python benchmarks/bench_mas.py --data ../shared/data/gsm8k/test.jsonl --threads 1
    python benchmarks/bench_mas.py --methods latent-seq --limit 8 --max-new-tokens 48 --threads 1  # batch ratio only
    python benchmarks/bench_mas.py --model Qwen/Qwen3-4B --dtype bfloat16 --device cuda --limit 64
"""

from __future__ import annotations

import argparse
import sys
import time

from latent_graph.engine import load_model
from latent_graph.bench.report import markdown
from latent_graph.bench.runner import run_bench


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/gsm8k/test.jsonl", help="GSM8K test.jsonl")
    p.add_argument("--limit", type=int, default=16, help="GSM8K questions (default 16)")
    p.add_argument("--methods", default="single,text-seq,latent-seq", help="comma-separated (default single,text-seq,latent-seq)")
    p.add_argument("--batch-size", type=int, default=8, help="main batch size (default 8)")
    p.add_argument("--steps", type=int, default=8, help="latent steps per agent (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation budget per agent (default 128)")
    p.add_argument("--out", default="runs/bench_mas", help="output folder (default runs/bench_mas)")
    p.add_argument("--resume", action="store_true", help="continue a killed run")
    p.add_argument("--model", default=None, help="HF id or path (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model(args.model, dtype=args.dtype, device=args.device)
    summary = run_bench(
        model,
        methods=args.methods,
        task="gsm8k",
        data=args.data,
        limit=args.limit,
        batch_size=args.batch_size,
        steps=args.steps,
        max_new_tokens=args.max_new_tokens,
        out_dir=args.out,
        resume=args.resume,
        throughput_batch_sizes=[1],
        throughput_method="latent-seq",
        throughput_limit=min(args.limit, args.batch_size),
        progress=lambda s: print(s, flush=True),
    )
    print()
    print(markdown(summary))
    print(f"{'goal':<52} {'measured':>9} {'target':>8}  met")
    for r in summary.ratios:
        if r.goal is None:
            continue
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.name:<52} {value:>9} {r.goal:>8}  {met}    ({r.detail})")
    print(f"\ntotal wall (load + warm-up + run + report): {time.perf_counter() - start:.0f}s; files: {summary.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
