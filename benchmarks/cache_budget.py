"""Cache budgets on the default model: a 10-agent chain and a 20-turn thread, with and without ``cache_budget``.

Two measurements on relay6 (greedy, judger answer budget 24, compact layout, 8 latent steps):

- **chain**: a 10-agent compact chain (planner, critic, refiner, a4 … a10; the fact goes to the
  planner, or to the critic in the second-agent family) on ``--n`` questions, no budget against
  ``cache_budget=--budget``: accuracy, the cache columns the judger reads, errors;
- **thread**: ``--rows`` conversations of ``--turns`` turns on one ``thread_id`` with
  ``latent_thread="continue"`` (InMemorySaver). Turn t asks relay6 question ``t * rows + r`` with its
  own fact; accuracy per turn says whether answers stay grounded in the current turn's fact with the
  earlier turns in the cache. One more turn then asks turn 0's questions again *without* their facts
  (recall of the oldest fact: a budget may have evicted it). The most cache columns a row of the judger reads (at
  the last answered turn and over all turns), errors (ContextOverflowError or any other) per condition.

    python benchmarks/cache_budget.py --part chain thread --budget 256
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph import LocalLatentModel  # noqa: E402
from latent_graph.bench.conditions import relay_state
from latent_graph.bench.metrics import wilson_interval  # noqa: E402
from latent_graph.bench.relay_suite import relay_suite  # noqa: E402
from latent_graph.graphs import build_compact  # noqa: E402
from latent_graph.persist import default_handle_store, is_ref  # noqa: E402

CHAIN = ("planner", "critic", "refiner", *(f"a{i}" for i in range(4, 11)))


def judger_columns(out: dict[str, Any]) -> float:
    """Most real cache columns of any row the judger read before its own prompt and answer."""
    j = out["trace"][-1]
    h = out["handle"]
    h = default_handle_store().load(h) if is_ref(h) else h
    real = h.attention_mask.sum(dim=1).tolist()  # (B,) the judger's own prompt and answer included
    return max(c - p - g for c, p, g in zip(real, j["prompt_tokens"], j["generated_tokens"]))


def chain(model: LocalLatentModel, task: Any, budget: int | None, batch_size: int) -> dict[str, Any]:
    g = build_compact(model, agents=CHAIN, cache_budget=budget, task="plain", steps=8, max_new_tokens=24)
    hits, cols, errors, t0 = [], [], [], time.perf_counter()
    for i in range(0, len(task.examples), batch_size):
        batch = task.examples[i : i + batch_size]
        try:
            out = g.invoke(relay_state(batch))
        except Exception as e:  # noqa: BLE001 - counted and named, the run goes on
            errors.append(type(e).__name__)
            hits += [False] * len(batch)
            continue
        hits += [task.score(e, str(a)).correct for e, a in zip(batch, out["answers"])]
        cols.append(judger_columns(out))
    return {
        "part": "chain",
        "agents": len(CHAIN),
        "budget": budget,
        "n": len(hits),
        "correct": sum(hits),
        "judger_cols": max(cols, default=0),
        "errors": errors,
        "s_per_q": (time.perf_counter() - t0) / len(hits),
    }


def thread(model: LocalLatentModel, task: Any, budget: int | None, rows: int, turns: int) -> dict[str, Any]:
    g = build_compact(
        model, cache_budget=budget, checkpointer=InMemorySaver(), task="plain", steps=8, max_new_tokens=24
    )
    cfg = {"configurable": {"thread_id": f"budget-{budget}", "latent_thread": "continue"}}
    per_turn, cols, errors, t0 = [], [], [], time.perf_counter()
    for t in range(turns + 1):
        recall = t == turns
        batch = task.examples[0:rows] if recall else task.examples[t * rows : (t + 1) * rows]
        state = relay_state(batch)
        if recall:  # the same questions as turn 0, their facts not told again
            state["context"] = [""] * rows
            state["agent_context"] = None
        try:
            out = g.invoke(state, cfg)
        except Exception as e:  # noqa: BLE001 - counted and named, the run goes on
            errors.append(f"turn {t}: {type(e).__name__}")
            per_turn.append(0)
            continue
        per_turn.append(sum(task.score(e, str(a)).correct for e, a in zip(batch, out["answers"])))
        cols.append(judger_columns(out))
    answered = per_turn[:turns]
    return {
        "part": "thread",
        "budget": budget,
        "rows": rows,
        "turns": turns,
        "correct": sum(answered),
        "n": rows * turns,
        "per_turn": per_turn[:turns],
        "recall_turn0": per_turn[turns],
        "judger_cols_last": cols[-2] if len(cols) > 1 else None,
        "judger_cols_max": max(cols) if cols else None,
        "errors": errors,
        "s_per_q": (time.perf_counter() - t0) / (rows * (turns + 1)),
    }


def line(r: dict[str, Any]) -> str:
    lo, hi = wilson_interval(r["correct"], r["n"])
    b = "none" if r["budget"] is None else str(r["budget"])
    if r["part"] == "chain":
        return (
            f"| chain of {r['agents']} agents | {b} | {r['correct']}/{r['n']} = {r['correct'] / r['n']:.2f} "
            f"[{lo:.2f}, {hi:.2f}] | — | {r['judger_cols']:.0f} | {len(r['errors'])} | {r['s_per_q']:.2f} |"
        )
    return (
        f"| thread of {r['turns']} turns × {r['rows']} rows | {b} | {r['correct']}/{r['n']} = "
        f"{r['correct'] / r['n']:.2f} [{lo:.2f}, {hi:.2f}] | {r['recall_turn0']}/{r['rows']} | "
        f"{r['judger_cols_last']:.0f} (max {r['judger_cols_max']:.0f}) | {len(r['errors'])} | {r['s_per_q']:.2f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", nargs="+", default=["chain", "thread"], choices=("chain", "thread"))
    p.add_argument("--budget", type=int, default=256, help="cache_budget of the budgeted condition (columns per row)")
    p.add_argument(
        "--cond",
        nargs="+",
        default=["none", "budget"],
        choices=("none", "budget"),
        help="measure without a budget, with --budget, or both (default)",
    )
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=48, help="questions of the chain part")
    p.add_argument("--rows", type=int, default=6, help="conversations in the thread part (one batch)")
    p.add_argument("--turns", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jsonl", default="runs/cache_budget.jsonl")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = LocalLatentModel.default()
    load0 = os.getloadavg()[0]
    rows = []
    for part in args.part:
        for budget in [{"none": None, "budget": args.budget}[c] for c in args.cond]:
            if part == "chain":
                r = chain(model, relay_suite(args.n, args.split, 0), budget, args.batch_size)
            else:
                r = thread(model, relay_suite(args.rows * args.turns, args.split, 0), budget, args.rows, args.turns)
            r.update(split=args.split, command="python benchmarks/cache_budget.py " + " ".join(sys.argv[1:]))
            Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
            with open(args.jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps(r) + "\n")
            rows.append(r)
            print(line(r), flush=True)
    print(
        f"\nrelay6 {args.split}, {model.name}, greedy, judger answer budget 24, compact layout, 8 steps, "
        f"torch threads {args.threads}, load {load0:.2f}→{os.getloadavg()[0]:.2f}"
    )
    print(
        "| run | cache_budget | accuracy [95% CI] | turn-0 facts recalled | judger's cache, most cols in a row | errors | s/q |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(line(r))


if __name__ == "__main__":
    main()
