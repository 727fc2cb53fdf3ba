"""Engine benchmark on the embedded default model (issue: latent engine).

Prints, from one run, side by side:
- one latent step (realign + base-model forward, no vocab logits) vs one plain HF
  decode step (full forward with lm_head + argmax) at the same cache length;
- warm default-model load time (the cached safetensors path);
- peak RSS of the process.

Usage: python benchmarks/bench_engine.py [--steps 32] [--repeats 5] [--cache-len 64]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from transformers import DynamicCache

from latent_graph import LocalLatentModel
from latent_graph.engine.default_model import default_source


def hf_decode_steps(model: LocalLatentModel, handle, steps: int) -> float:
    """Seconds per plain HF decode step on top of ``handle``'s cache."""
    hf = model.hf_model
    cache = DynamicCache(ddp_cache_data=list(zip(handle.keys, handle.values)))
    tok = torch.tensor([[model.tokenizer.eos_token_id or 0]])
    with torch.no_grad():
        out = hf(input_ids=tok, past_key_values=cache, use_cache=True)  # warm-up, grows cache by 1
        t0 = time.perf_counter()
        for _ in range(steps):
            out = hf(input_ids=tok, past_key_values=out.past_key_values, use_cache=True)
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
        return (time.perf_counter() - t0) / steps


def latent_steps(model: LocalLatentModel, handle, steps: int) -> float:
    """Seconds per latent step, timed inside the engine with an on_step clock."""
    stamps: list[float] = []
    model.think(handle, "Continue.", steps + 1, on_step=lambda _i: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[0]) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache-len", type=int, default=64, help="approximate cache length in tokens")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    _, source = default_source()
    t0 = time.perf_counter()
    model = LocalLatentModel.default()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = LocalLatentModel.default()
    warm = time.perf_counter() - t0

    words = " ".join(["apples"] * max(1, args.cache_len - 30))
    handle = model.think(None, f"Count the {words}.", 0)
    lat, dec = [], []
    for _ in range(args.repeats):  # interleaved so both see the same machine load
        lat.append(latent_steps(model, handle, args.steps))
        dec.append(hf_decode_steps(model, handle, args.steps))
    ml, md = statistics.median(lat), statistics.median(dec)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model: {model.name} ({model.fingerprint.digest}), torch threads={torch.get_num_threads()}")
    print(f"cache length: {handle.seq_len} tokens; {args.steps} steps x {args.repeats} repeats (median)")
    print(f"latent step : {ml * 1e3:7.2f} ms")
    print(f"HF decode   : {md * 1e3:7.2f} ms")
    print(f"ratio latent/decode = {ml / md:.3f}   (goal <= 0.85)")
    print(f"first load ({source}) = {first:.2f} s; warm default load = {warm:.2f} s   (goal <= 3 s)")
    print(f"peak RSS = {rss:.0f} MiB")


if __name__ == "__main__":
    main()
