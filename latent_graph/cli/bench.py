"""The ``latent-graph bench`` command.

``register(subparsers)`` adds it to the main CLI's argparse sub-commands (the
parser's ``func`` default is :func:`run_cli`, which returns an exit code);
``latent-graph bench ...`` runs it.

Example:
    latent-graph bench --task gsm8k --data ../shared/data/gsm8k/test.jsonl --limit 20 \\
        --methods all --batch-size 8 --steps 8 --max-new-tokens 160 --out runs/gsm8k
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from latent_graph.bench.errors import BenchArgumentError
from latent_graph.bench.runner import METHODS
from latent_graph.bench.tasks import TASKS
from latent_graph.cli.model_options import add_model_args, load_from_args
from latent_graph.engine import DEFAULT_MEMORY, DEFAULT_STEPS, MEMORY_POLICIES, DecodeOptions
from latent_graph.errors import LatentGraphError

_D = DecodeOptions()

HELP = "benchmark single vs text-MAS vs latent-MAS on GSM8K, ARC, code or relay probes"


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the bench flags to ``p``."""
    p.add_argument("--methods", default="all", help=f"comma-separated: {','.join(METHODS)} or 'all' (default)")
    p.add_argument("--task", default="gsm8k", choices=TASKS, help="benchmark task (default gsm8k)")
    p.add_argument("--data", default=None, help="data JSONL (gsm8k default: ../shared/data/gsm8k/test.jsonl)")
    p.add_argument("--hf", action="store_true", help="gsm8k: load from the HF hub with `datasets` if no --data")
    p.add_argument("--limit", type=int, default=None, help="first N questions (relay: N probes, default 20)")
    p.add_argument("--batch-size", type=int, default=1, help="questions per graph run (default 1)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"latent steps per non-final agent (default {DEFAULT_STEPS})")
    p.add_argument("--memory", default=DEFAULT_MEMORY, choices=MEMORY_POLICIES, help=f"memory policy (default {DEFAULT_MEMORY})")
    p.add_argument("--temperature", type=float, default=_D.temperature, help="sampling temperature (default 0 = greedy)")
    p.add_argument("--top-p", type=float, default=_D.top_p, help="nucleus sampling mass (default 1.0)")
    p.add_argument("--seeds", type=_ints, default=[0], help="comma-separated sampling seeds (default 0)")
    p.add_argument("--repeats", type=int, default=1, help="passes per seed (default 1)")
    p.add_argument("--max-new-tokens", type=int, default=_D.max_new_tokens,
                   help=f"generation budget per agent (default {_D.max_new_tokens})")
    p.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    p.add_argument("--resume", action="store_true", help="continue a run in --out, skipping finished questions")
    add_model_args(p)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--throughput-batch-sizes", type=_ints, default=[],
                   help="extra batch sizes for the throughput ratio, e.g. 1 (with --batch-size 8)")
    p.add_argument("--throughput-method", default="latent-seq", help="method run at those sizes (default latent-seq)")
    p.add_argument("--throughput-limit", type=int, default=None, help="questions for those sizes (default all)")
    p.add_argument("--relay-seed", type=int, default=0, help="seed generating relay probes (default 0)")
    p.add_argument("--code-timeout", type=float, default=10.0, help="seconds per code test run (default 10)")
    p.add_argument("--rescore", action="store_true",
                   help="re-judge stored answers with the current extractor (no generation); implies --resume")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up forward")
    p.add_argument("--quiet", action="store_true", help="no per-batch progress lines")
    p.add_argument("--json", action="store_true", help="print summary JSON instead of the markdown table")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("bench", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; returns the process exit code."""
    from latent_graph.bench.report import markdown
    from latent_graph.bench.runner import run_bench

    try:
        if args.threads is not None:
            if args.threads < 1:
                raise BenchArgumentError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        model = load_from_args(args)
        summary = run_bench(
            model, methods=args.methods, task=args.task, limit=args.limit, batch_size=args.batch_size,
            steps=args.steps, memory=args.memory, temperature=args.temperature, top_p=args.top_p,
            seeds=args.seeds, repeats=args.repeats, out_dir=args.out, data=args.data, hf=args.hf,
            max_new_tokens=args.max_new_tokens, resume=args.resume,
            throughput_batch_sizes=args.throughput_batch_sizes, throughput_method=args.throughput_method,
            throughput_limit=args.throughput_limit, relay_seed=args.relay_seed, code_timeout=args.code_timeout,
            warmup=not args.no_warmup, rescore=args.rescore, progress=None if args.quiet else lambda s: print(s, flush=True),
        )
    except LatentGraphError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(markdown(summary))
        print("files: " + ", ".join(summary.files.values()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: the bench flags without the ``latent-graph`` prefix."""
    parser = argparse.ArgumentParser(prog="latent-graph bench", description=HELP)
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


__all__ = ["add_arguments", "main", "register", "run_cli"]
