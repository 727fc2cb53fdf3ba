"""How the cost of one step grows with the batch on this CPU (the bound on batch-8 / batch-1 throughput).

Prints, with the load average, medians of ``--repeats`` interleaved runs:
- ``F.linear`` on the default model's MLP shapes (hidden -> intermediate and back) at 1, 2, 4, 8 rows;
- one greedy decode step of the whole default model (``model.decode`` with EOS off on the first
  1, 2, 4, 8 GSM8K questions; per step = (time for 1 + n tokens - time for 1 token) / n);
- the bound: batch 8 can give at most 8 x (1-row step) / (8-row step) the questions/s of batch 1;
- prefill, which is compute-bound: ``F.linear`` GFLOP/s on the MLP shapes at 1,024 token rows (the
  CPU's matmul rate) and the whole model's prefill of the 8 questions at batch 8 (tokens/s, and
  GFLOP/s as 2 x non-embedding parameters x tokens / s): a prompt of N tokens costs at least
  2 x parameters x N / (that rate) seconds at any batch size.

With ``--chain N``, instead: a graph (``--graph``: compact, latent-seq or text-seq) over the first N GSM8K
questions, three ways, interleaved, CPU seconds of this process (steadier than wall time on a loaded
machine) and wall: at batch 1; at batch 8 gated (graph runs of 8 questions, each decoder waits for its
longest row); at batch 8 continuous (one graph run of all N, 8 rows at once, a row that ends frees its slot
for the next question). It checks that the three give the same answers (greedy).

Usage: python benchmarks/batch_scaling.py [--threads N] [--tokens 40] [--repeats 3]
       python benchmarks/batch_scaling.py --chain 16 --graph compact --threads 1 [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from latent_graph import LocalLatentModel

ROWS = (1, 2, 4, 8)


def linear_pair_us(hidden: int, inter: int, rows: int, reps: int = 300) -> float:
    w_up, w_down = torch.randn(inter, hidden), torch.randn(hidden, inter)
    x, y = torch.randn(rows, hidden), torch.randn(rows, inter)
    for _ in range(20):
        F.linear(x, w_up)
    t0 = time.perf_counter()
    for _ in range(reps):
        F.linear(x, w_up)
        F.linear(y, w_down)
    return (time.perf_counter() - t0) / reps * 1e6


def linear_gflops(hidden: int, inter: int, tokens: int = 1024, reps: int = 20) -> float:
    w_up, w_down = torch.randn(inter, hidden), torch.randn(hidden, inter)
    x, y = torch.randn(tokens, hidden), torch.randn(tokens, inter)
    F.linear(x, w_up)
    t0 = time.perf_counter()
    for _ in range(reps):
        F.linear(x, w_up)
        F.linear(y, w_down)
    return 2 * 2 * tokens * hidden * inter * reps / (time.perf_counter() - t0) / 1e9


def prefill_rate(model: LocalLatentModel, prompts: list[str]) -> tuple[float, int]:
    """(prompt tokens/s, real prompt tokens) of one batched prefill (``think`` with no latent step)."""
    t0 = time.perf_counter()
    handle = model.think(None, prompts, 0)
    wall = time.perf_counter() - t0
    tokens = int(handle.attention_mask.sum())
    return tokens / wall, tokens


def decode_step_ms(model: LocalLatentModel, prompts: list[str], n: int) -> float:
    t0 = time.perf_counter()
    model.decode(None, prompts, max_new_tokens=1)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.decode(None, prompts, max_new_tokens=n + 1)
    return (time.perf_counter() - t0 - one) / n * 1e3


WAYS = ("batch 1", "batch 8 gated", "batch 8 continuous")


def chain(
    model: LocalLatentModel, questions: list[str], graph: str, max_new: int, repeats: int, only: list[str]
) -> None:
    """Questions/s of ``graph`` at batch 1, at batch 8 gated and at batch 8 continuous (see the module doc)."""
    from latent_graph.engine import enable_prefixes
    from latent_graph.graphs import build_graph
    from latent_graph.persist import HandleStore

    name, edges = ("compact", "latent") if graph == "compact" else ("sequential", graph.split("-")[0])
    store = HandleStore.in_memory()
    g = build_graph(name, model, edges=edges, max_new_tokens=max_new, checkpointer=None, handle_store=store)
    enable_prefixes(model)
    ways = {"batch 1": (1, 1), "batch 8 gated": (8, 8), "batch 8 continuous": (8, len(questions))}
    ways = {w: ways[w] for w in WAYS if WAYS.index(w) in [int(x) for x in only]}
    g.invoke({"questions": questions[:2]})  # warm-up
    cpu: dict[str, list[float]] = {w: [] for w in ways}
    wall: dict[str, list[float]] = {w: [] for w in ways}
    answers: dict[str, list[str]] = {}
    load0 = os.getloadavg()
    for _ in range(repeats):
        for way, (rows, wave) in ways.items():
            model.batch_rows = rows
            c0, t0, got = time.process_time(), time.perf_counter(), []
            for i in range(0, len(questions), wave):
                got += g.invoke({"questions": questions[i : i + wave]})["answers"]
                store.clear()
            cpu[way].append(time.process_time() - c0)
            wall[way].append(time.perf_counter() - t0)
            answers.setdefault(way, got)
    n = len(questions)
    print(f"{graph} over {n} questions, answer budget {max_new}, torch threads {torch.get_num_threads()}, "
          f"{repeats} interleaved repeats (medians); load average {load0} -> {os.getloadavg()}")  # fmt: skip
    first = next(iter(ways))
    base_c, base_w = statistics.median(cpu[first]), statistics.median(wall[first])
    for way in ways:
        c, w = statistics.median(cpu[way]), statistics.median(wall[way])
        print(
            f"{way:<20} {n / c:6.3f} q/CPU-s ({base_c / c:4.2f}x {first})   {n / w:6.3f} q/s wall ({base_w / w:4.2f}x)"
        )
    same = all(a == answers[first] for a in answers.values())
    print(f"answers equal across the ways: {same}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/gsm8k/test.jsonl")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chain", type=int, default=0, help="measure a graph over this many questions instead")
    p.add_argument("--graph", default="compact", choices=("compact", "latent-seq", "text-seq"))
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--ways", default="0,1,2", help="of 0 = batch 1, 1 = batch 8 gated, 2 = batch 8 continuous")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = LocalLatentModel.default()
    if args.chain:
        with open(args.data) as f:
            qs = [json.loads(line)["question"] for _, line in zip(range(args.chain), f)]
        chain(model, qs, args.graph, args.max_new_tokens, args.repeats, args.ways.split(","))
        return
    model.eos_ids = set()  # fixed-length decoding
    cfg = model.hf_model.config
    with open(args.data) as f:
        questions = [json.loads(line)["question"] for _, line in zip(range(max(ROWS)), f)]
    prompts = [f"Solve the question. Think step by step.\n\nQuestion: {q}" for q in questions]
    load0 = os.getloadavg()[0]
    lin: dict[int, list[float]] = {r: [] for r in ROWS}
    step: dict[int, list[float]] = {r: [] for r in ROWS}
    for _ in range(args.repeats):
        for r in ROWS:
            lin[r].append(linear_pair_us(cfg.hidden_size, cfg.intermediate_size, r))
            step[r].append(decode_step_ms(model, prompts[:r], args.tokens))
    print(
        f"torch threads={torch.get_num_threads()}; load average at start {load0:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    for r in ROWS:
        print(
            f"{r} rows: F.linear up+down {statistics.median(lin[r]):7.0f} us   decode step {statistics.median(step[r]):7.1f} ms"
            f"   (x{statistics.median(step[r]) / statistics.median(step[1]):.2f} of 1 row)"
        )
    bound = 8 * statistics.median(step[1]) / statistics.median(step[8])
    print(f"bound on batch-8 / batch-1 questions/s (no straggler): {bound:.2f}")
    params = sum(p.numel() for n, p in model.hf_model.named_parameters() if "embed" not in n)
    peak = statistics.median(linear_gflops(cfg.hidden_size, cfg.intermediate_size) for _ in range(args.repeats))
    rates = [prefill_rate(model, prompts) for _ in range(args.repeats)]
    rate = statistics.median(r for r, _ in rates)
    print(
        f"prefill: F.linear on the MLP shapes at 1,024 token rows {peak:.0f} GFLOP/s; the model's prefill of "
        f"{rates[0][1]} prompt tokens (8 rows) {rate:.0f} tokens/s = {2 * params * rate / 1e9:.0f} GFLOP/s "
        f"({params / 1e6:.1f} M non-embedding parameters); load average now {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
