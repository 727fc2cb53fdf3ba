"""The issue's performance goals, measured in one run on the default model.

Runs single, text-seq, latent-seq and latent-compact (the CLI's default latent chain,
compact prompt layout) over the same GSM8K questions at batch 8, plus latent-seq and
latent-compact at batch 1 on the first 16 of them, and prints the ratios next to their goals.
Every method decodes with continuous batching (batch 8 = 8 rows at once; a row that ends frees its slot for
the next question of the graph run's wave, ``--wave-batches`` x 8 questions):

- latent-seq >= 5x faster than text-seq (wall), with >= 80% fewer generated tokens;
- latent-seq wall <= 1.3x the single agent's;
- batch 8 >= 3x the questions/s of batch 1, for latent-seq and latent-compact.

It also prints the padding share of the batches (cut in order vs bucketed by length; the
run buckets) and the share of fresh-prefill tokens the shared-prefix cache saved.

Usage (about 11 minutes with the defaults on the shared 2-core CPU of docs/benchmarks.md, --threads 1):
    python benchmarks/bench_mas.py --data ../shared/data/gsm8k/test.jsonl --threads 1
    python benchmarks/bench_mas.py --methods latent-seq --limit 8 --max-new-tokens 48 --threads 1  # batch ratio only
    python benchmarks/bench_mas.py --model Qwen/Qwen3-4B --dtype bfloat16 --device cuda --limit 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from latent_graph.bench import BenchConfig, run_bench
from latent_graph.bench.report import markdown
from latent_graph.engine import DEFAULT_STEPS, load_model
from latent_graph.graphs import GraphOptions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/gsm8k/test.jsonl", help="GSM8K test.jsonl")
    p.add_argument("--limit", type=int, default=16, help="GSM8K questions (default 16)")
    p.add_argument(
        "--methods",
        default="single,text-seq,latent-seq,latent-compact",
        help="comma-separated (default single,text-seq,latent-seq,latent-compact)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="rows at once (default 8)")
    p.add_argument("--wave-batches", type=int, default=4, help="questions per graph run, in batches (default 4)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"latent steps per agent (default {DEFAULT_STEPS})")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation budget per agent (default 128)")
    p.add_argument("--out", default="runs/bench_mas", help="output folder (default runs/bench_mas)")
    p.add_argument("--resume", action="store_true", help="continue a killed run")
    p.add_argument("--model", default=None, help="HF id or path (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-bucket", action="store_true", help="cut batches in question order (no length bucketing)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model(args.model, dtype=args.dtype, device=args.device)
    methods = args.methods.split(",")
    config = BenchConfig(
        methods=args.methods,
        task="gsm8k",
        data=args.data,
        limit=args.limit,
        batch_size=args.batch_size,
        wave_batches=args.wave_batches,
        graph=GraphOptions(steps=args.steps, max_new_tokens=args.max_new_tokens),
        out_dir=args.out,
        resume=args.resume,
        throughput_batch_sizes=(1,),
        bucket=not args.no_bucket,
        throughput_methods=tuple(m for m in ("latent-seq", "latent-compact") if m in methods) or ("latent-seq",),
        throughput_limit=min(args.limit, 2 * args.batch_size),  # a queue: rows enter slots others freed
    )
    summary = run_bench(model, config, progress=lambda s: print(s, flush=True))
    print()
    print(markdown(summary))
    print(f"{'goal':<52} {'measured':>9} {'target':>8}  met")
    for r in summary.ratios:
        if r.goal is None:
            continue
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.name:<52} {value:>9} {r.goal:>8}  {met}    ({r.detail})")
    for r in summary.ratios:  # the batch ratios, one line each (the format)
        if "questions/s, batch" in r.name:
            print(f"{r.name}: {'n/a' if r.value is None else f'{r.value:.2f}'}")
    cfg = summary.config
    print(
        f"padding share of the question columns: {cfg['padding_share_arrival']:.1%} in order, "
        f"{cfg['padding_share_bucketed']:.1%} bucketed by length (this run: {'bucketed' if cfg['bucket'] else 'in order'})"
    )
    pc = cfg.get("prefix_cache")
    if pc:
        print(
            f"shared-prefix cache: {pc['saved_share']:.1%} of first-agent prefill tokens and "
            f"{pc['saved_share_all']:.1%} of all prompt tokens not recomputed "
            f"({pc['reused_tokens']} reused, {pc['computed_prefix_tokens']} computed once, {pc['hits']} hits)"
        )
    print(
        f"load average now: {tuple(round(x, 2) for x in os.getloadavg())}; during batches: "
        f"{summary.environment.get('load_avg_1m_batches')}"
    )
    print(f"\ntotal wall (load + warm-up + run + report): {time.perf_counter() - start:.0f}s; files: {summary.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
