"""Train the relay latent channel (:mod:`latent_graph.adapters.channel`) on relay6 and save it.

What: sender = the first agent of the compact layout reading the facts and the question;
receiver = the compact judger (``Answer briefly.`` + the question) reading only the sender's
latent columns. Trains on relay6:train, early-stops on relay6:validation, writes the channel
as an adapter safetensors file (with the model fingerprint) plus its loss curves.
Then evaluate it with ``benchmarks/relay_grid.py --realign <file>.safetensors``.

Example (2 CPU cores, about 10 minutes):
    python benchmarks/train_channel.py --steps 4 --n-train 600 --n-val 60 --out runs/channel/relay_k4.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from latent_graph import LocalLatentModel
from latent_graph.adapters.channel import ChannelConfig, ChannelExample, evaluate_channel, ridge_channel, train_channel
from latent_graph.bench.relay_suite import relay_suite
from latent_graph.graphs.compact import COMPACT_FIRST
from latent_graph.graphs.roles import with_format


def examples(split: str, n: int, seed: int) -> list[ChannelExample]:
    """Compact-layout prompts; the sender is told every fact of the example (as in ``direct``)."""
    out = []
    for e in relay_suite(n, split, seed).examples:
        sender = f"{COMPACT_FIRST}\n\nContext (only you have seen this): {e.meta['facts']}\n\nQuestion: {e.question}"
        out.append(ChannelExample(sender, f"{with_format('', 'plain').strip()}\n\nQuestion: {e.question}", str(e.gold)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-val", type=int, default=60)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--eval-every", type=int, default=15)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, default=720.0, help="seconds of training before stopping")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/channel/relay_k4.safetensors")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = LocalLatentModel.default()
    train, val = examples("train", args.n_train, args.seed), examples("validation", args.n_val, args.seed)
    cfg = ChannelConfig(
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        time_budget_s=args.time_budget,
    )
    t0 = time.perf_counter()
    res = train_channel(
        model, train, val, cfg, log=lambda s: print(f"[{time.perf_counter() - t0:6.0f}s] {s}", flush=True)
    )
    test = examples("test", 96, args.seed)
    ridge_test = evaluate_channel(model, ridge_channel(model), test, args.steps)
    trained_test = evaluate_channel(model, res.realigner.module.to(model.device), test, args.steps)
    out = Path(args.out)
    res.realigner.info.update(
        {
            "command": "python benchmarks/train_channel.py",
            "args": vars(args),
            "test_ce_ridge": ridge_test,
            "test_ce_channel": trained_test,
        }
    )
    res.realigner.save(out)
    (out.with_suffix(".curve.json")).write_text(
        json.dumps(
            {"train": res.history, "val": res.val_history, "test_ce": {"ridge": ridge_test, "channel": trained_test}},
            indent=1,
        )
    )
    print(
        f"saved {out}; best val CE {res.best_val:.3f} (start {res.val_history[0]['val_loss']:.3f}); "
        f"test CE ridge {ridge_test:.3f} -> channel {trained_test:.3f}; {res.wall_s:.0f}s"
    )


if __name__ == "__main__":
    main()
