"""Latent state by reference: checkpoint bytes of a 4-agent run, and the cost of references on the hot path.

    PYTHONPATH=. python benchmarks/bench_state.py [--questions 1] [--steps 4] [--repeat 20]

Runs build_sequential (planner, critic, refiner, judger) on the default model with a stock
``InMemorySaver`` and a stock ``SqliteSaver``, each with a fresh in-memory/SQLite blob store, and
prints: bytes the saver stores + blob bytes, against the final handle's tensor bytes; then
the time of ``HandleStore.save`` (chunk + hash + write), a hot ``load`` (in-process cache)
and a cold ``load`` (read + verify + assemble) of the final handle, next to one agent's
``think`` time, with the load average.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_sequential
from latent_graph.persist import FolderBlobStore, HandleStore, MemoryBlobStore, SqliteBlobStore, checkpoint_nbytes

QUESTIONS = [
    "What is 15 percent of 80?",
    "A train travels 60 km in 1.5 hours. What is its speed?",
    "What is 12 times 7?",
    "Alice has 3 apples and buys 5 more. How many apples?",
]


def saver_bytes(saver) -> int:
    """Bytes of the saver's checkpoints, read through its public ``list`` (each channel version once)."""
    return checkpoint_nbytes(saver)


def run(model, saver, blobs, n: int, steps: int) -> dict:
    store = HandleStore(blobs)
    graph = build_sequential(model, checkpointer=saver, handle_store=store, steps=steps, max_new_tokens=32)
    out = graph.invoke({"questions": QUESTIONS[:n]}, {"configurable": {"thread_id": "bench"}})
    final = out["handle"]["nbytes"]
    ckpt, blob = saver_bytes(saver), blobs.nbytes
    return {
        "final_tensor_bytes": final,
        "saver_bytes": ckpt,
        "blob_bytes": blob,
        "ratio": round((ckpt + blob) / final, 4),
        "ref": out["handle"],
    }


def timeit(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    model = LocalLatentModel.default()
    print(f"load average before: {os.getloadavg()}")
    mem = run(model, InMemorySaver(), MemoryBlobStore(), args.questions, args.steps)
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "c.db"
        sq = run(
            model,
            SqliteSaver(sqlite3.connect(str(db), check_same_thread=False)),
            SqliteBlobStore(db),
            args.questions,
            args.steps,
        )
        for name, r in (("InMemorySaver + MemoryBlobStore", mem), ("SqliteSaver + SqliteBlobStore", sq)):
            print(
                f"{name}: saver {r['saver_bytes']:,} B + blobs {r['blob_bytes']:,} B = "
                f"{r['ratio']}x the final handle's {r['final_tensor_bytes']:,} tensor bytes"
            )
        src = HandleStore(FolderBlobStore(Path(d) / "f"))
        h = model.think(None, QUESTIONS[: args.questions], args.steps, agent="planner")
        h = model.think(h, QUESTIONS[: args.questions], args.steps, agent="critic")
        t_think = timeit(lambda: model.think(h, QUESTIONS[: args.questions], args.steps, agent="refiner"), 3)
        ref = src.save(h)
        t_save = timeit(lambda: HandleStore(src.blobs).save(h), args.repeat)  # a new store: chunk + hash + (skip) write
        t_hot = timeit(lambda: src.load(ref, model), args.repeat)
        t_cold = timeit(lambda: HandleStore(src.blobs).load(ref, model), args.repeat)
    print(f"handle: {h.seq_len} columns, {h.nbytes:,} bytes (FolderBlobStore)")
    print(f"think (one agent, {args.steps} steps): {t_think * 1e3:.1f} ms")
    print(
        f"save: {t_save * 1e3:.2f} ms ({t_save / t_think:.1%} of think); hot load: {t_hot * 1e6:.1f} us; "
        f"cold load: {t_cold * 1e3:.2f} ms ({t_cold / t_think:.1%} of think)"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
