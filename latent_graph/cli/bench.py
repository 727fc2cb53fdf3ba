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
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from latent_graph.bench.config import GENERATED_EXAMPLES, METHODS, PER_JOB, BenchConfig
from latent_graph.bench.errors import BenchArgumentError
from latent_graph.bench.tasks import TASKS
from latent_graph.cli.model_options import add_model_args, add_option_flags, load_from_args
from latent_graph.errors import LatentGraphError
from latent_graph.graphs import GraphOptions

_B = BenchConfig()  # the defaults' one owner
GRAPH_FLAGS = tuple(f for f in dataclasses.fields(GraphOptions) if f.name not in PER_JOB)
"""The graph options the bench takes as flags (``--steps``, ``--max-new-tokens`` ...): their names,
defaults, choices and help come from :class:`GraphOptions`; seeds and the answer format are the bench's."""

HELP = "benchmark single vs text-MAS vs latent-MAS on GSM8K, ARC, code or relay probes"


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the bench flags to ``p``."""
    p.add_argument("--methods", default="all", help=f"comma-separated: {','.join(METHODS)} or 'all' (default)")
    p.add_argument("--task", default=_B.task, choices=TASKS, help=f"benchmark task (default {_B.task})")
    p.add_argument("--data", default=None, help="data JSONL (gsm8k default: ../shared/data/gsm8k/test.jsonl)")
    p.add_argument("--hf", action="store_true", help="gsm8k: load from the HF hub with `datasets` if no --data")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"first N questions (relay, relay6: N generated, default {GENERATED_EXAMPLES})",
    )
    p.add_argument(
        "--batch-size", type=int, default=_B.batch_size, help=f"questions per graph run (default {_B.batch_size})"
    )
    add_option_flags(p, GRAPH_FLAGS)
    p.add_argument(
        "--seeds",
        type=_ints,
        default=list(_B.seeds),
        help=f"comma-separated sampling seeds (default {','.join(map(str, _B.seeds))})",
    )
    p.add_argument("--repeats", type=int, default=_B.repeats, help=f"passes per seed (default {_B.repeats})")
    p.add_argument("--out", default=_B.out_dir, help=f"output folder (default {_B.out_dir})")
    p.add_argument("--resume", action="store_true", help="continue a run in --out, skipping finished questions")
    add_model_args(p)
    p.add_argument(
        "--throughput-batch-sizes",
        type=_ints,
        default=[],
        help="extra batch sizes for the throughput ratio, e.g. 1 (with --batch-size 8)",
    )
    p.add_argument(
        "--throughput-method",
        default=",".join(_B.throughput_methods),
        help=f"method(s) run at those sizes (default {','.join(_B.throughput_methods)})",
    )
    p.add_argument("--throughput-limit", type=int, default=None, help="questions for those sizes (default all)")
    p.add_argument(
        "--relay-seed", type=int, default=_B.relay_seed, help=f"seed generating relay probes (default {_B.relay_seed})"
    )
    p.add_argument(
        "--code-timeout",
        type=float,
        default=_B.code_timeout,
        help=f"seconds per code test run (default {_B.code_timeout:g})",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-judge stored answers with the current extractor (no generation); implies --resume",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up forward")
    p.add_argument("--quiet", action="store_true", help="no per-batch progress lines")
    p.add_argument("--json", action="store_true", help="print summary JSON instead of the markdown table")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("bench", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=run_cli)
    return p


def config_of(args: argparse.Namespace) -> BenchConfig:
    """The :class:`BenchConfig` the parsed flags describe (every check runs here)."""
    return BenchConfig(
        methods=args.methods,
        task=args.task,
        data=args.data,
        hf=args.hf,
        limit=args.limit,
        relay_seed=args.relay_seed,
        batch_size=args.batch_size,
        graph=GraphOptions(**{f.name: getattr(args, f.name) for f in GRAPH_FLAGS}),
        seeds=args.seeds,
        repeats=args.repeats,
        throughput_batch_sizes=args.throughput_batch_sizes,
        throughput_methods=args.throughput_method,
        throughput_limit=args.throughput_limit,
        code_timeout=args.code_timeout,
        out_dir=args.out,
        resume=args.resume,
        rescore=args.rescore,
        warmup=not args.no_warmup,
    )


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
        config = config_of(args)  # checked before the (slow) model load
        model = load_from_args(args)
        summary = run_bench(model, config, progress=None if args.quiet else lambda s: print(s, flush=True))
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


__all__ = ["GRAPH_FLAGS", "add_arguments", "config_of", "main", "register", "run_cli"]
