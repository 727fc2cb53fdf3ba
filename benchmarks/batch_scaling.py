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

Usage: python benchmarks/batch_scaling.py [--threads N] [--tokens 40] [--repeats 3]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/gsm8k/test.jsonl")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = LocalLatentModel.default()
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
