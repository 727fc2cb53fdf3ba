"""``latent-graph adapter train|eval``: the command-line face of the adapter package.

:func:`register` adds the ``adapter`` command group to an argparse subparsers
object (the main ``latent-graph`` CLI calls it); each subcommand sets
``func(args) -> int``. :func:`main` runs the group on its own:
``python -m latent_graph.cli.adapter adapter train --out runs/lin``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from latent_graph.adapters.data import load_pairs
from latent_graph.adapters.modules import KINDS
from latent_graph.adapters.train import TrainConfig
from latent_graph.cli.model_options import add_model_args, load_from_args


def _add_data_args(p: argparse.ArgumentParser, split: str) -> None:
    p.add_argument("--data", type=Path, default=None, help="JSONL of {instruction, target} (default: shipped set)")
    p.add_argument("--split", default=split, choices=["train", "heldout", "all"], help=f"rows to use (default {split})")
    p.add_argument("--limit", type=int, default=None, help="use at most this many rows")
    add_model_args(p, realign=False, model_help="source model: 'default' or an HF path")
    p.add_argument("--target-model", default=None, help="receiver model for a cross-model adapter (default: --model)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``adapter {train,eval}`` to ``subparsers`` (from ``ArgumentParser.add_subparsers()``)."""
    group = subparsers.add_parser("adapter", help="train and evaluate learned hidden→input adapters")
    sub = group.add_subparsers(dest="adapter_command", required=True)

    t = sub.add_parser("train", help="train an adapter on (instruction, target) pairs")
    _add_data_args(t, "train")
    t.add_argument("--out", type=Path, required=True, help="output folder (adapter, curves, checkpoint)")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        kind = int if f.name == "hidden_dim" else type(value)
        choices = {
            "kind": list(KINDS),
            "align_loss": ["mse", "cosine"],
            "context": ["prompt", "none"],
            "init": ["lstsq", "random"],
        }.get(f.name)
        t.add_argument(flag, type=kind, default=value, choices=choices, help=f"(default {value})")
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate an adapter (and ridge/identity baselines) on held-out pairs")
    _add_data_args(e, "heldout")
    e.add_argument("--adapter", type=Path, required=True, help="adapter.safetensors file")
    e.add_argument("--context", default="prompt", choices=["prompt", "none"])
    e.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    e.set_defaults(func=cmd_eval)
    return group


def _pairs(args: argparse.Namespace) -> list:
    return load_pairs(args.data, None if args.split == "all" else args.split, args.limit)


def cmd_train(args: argparse.Namespace) -> int:
    from latent_graph.adapters.train import train_adapter

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    pairs = _pairs(args)
    src = load_from_args(args)
    dst = load_from_args(args, args.target_model) if args.target_model else None
    res = train_adapter(src, pairs, args.out, cfg, target_model=dst, resume=not args.no_resume, progress=not args.quiet)
    last = res.history[-1]["loss"] if res.history else float("nan")
    print(
        f"saved {res.path} after {res.step} steps (last loss {last:.4f}, best step {res.best_step}, "
        f"early stop {res.stopped_early}); curves in {args.out}/loss_curve.*"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from latent_graph.adapters.evaluate import evaluate_realigners
    from latent_graph.adapters.trained_realigner import AdapterRealigner

    src = load_from_args(args)
    dst = load_from_args(args, args.target_model) if args.target_model else src
    adapter = AdapterRealigner.load(args.adapter, src, dst if args.target_model else None)
    mappers: dict[str, Any] = {adapter.name: adapter}
    if not adapter.is_cross:
        mappers = {
            "identity": src.with_realigner("identity").realigner,
            "ridge": src.with_realigner("ridge").realigner,
            **mappers,
        }
    res = evaluate_realigners(
        mappers, src, _pairs(args), target_model=dst, context=args.context, progress=not args.quiet
    )
    print(f"{'mapper':<16}{'cosine':>8}{'first-tok':>11}{'cont-CE':>9}{'cont-acc':>10}")
    for name, m in res.items():
        print(
            f"{name:<16}{m['mean_cosine']:>8.3f}{m['first_token_acc']:>11.3f}{m['continuation_ce']:>9.3f}"
            f"{m['continuation_acc']:>10.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="latent-graph")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
