"""Engine benchmark on the embedded default model (issue 13: speed at the hardware limit).

Prints, from one run, with the load average (variants interleaved A B A B ..., medians):
- roofline: the time to stream the weights once (one GEMV per linear weight, nothing else),
  and every step below as a multiple of it;
- one latent step (realign + base-model forward, no vocab logits) vs one plain HF
  decode step (full forward with lm_head + argmax) at the same cache length, and the same
  latent step through transformers' own forward instead of ``engine/forward/llama.py``;
- the engine's decode per generated token vs HF ``generate`` per token, same prompt,
  same batch (per-token time = (time for 1 + n tokens - time for 1 token) / n, EOS off);
- warm default-model load time and peak RSS.

Usage: python benchmarks/bench_engine.py [--steps 32] [--repeats 5] [--cache-len 64] [--threads 1 [--clock cpu]] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch
import transformers
from transformers import DynamicCache, GenerationConfig

from latent_graph import LocalLatentModel
from latent_graph.engine import encode_prompts
from latent_graph.engine.forward import probe, supports
from latent_graph.engine.load import default_source

clock = (
    time.perf_counter
)  # --clock cpu: time.thread_time (this thread's CPU seconds; with --threads 1 all of torch's work)


def weight_stream(model: LocalLatentModel) -> tuple[float, float]:
    """Seconds to stream (body weights, lm_head) once: one batch-1 GEMV per linear weight."""
    head = model.hf_model.get_output_embeddings()
    lins = [m for m in model.hf_model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    xs = {m.in_features: torch.randn(1, m.in_features, dtype=model.dtype) for m in [*lins, head]}
    with torch.no_grad():
        t0 = clock()
        for m in lins:
            torch.nn.functional.linear(xs[m.in_features], m.weight)
        t1 = clock()
        torch.nn.functional.linear(xs[head.in_features], head.weight)
        t2 = clock()
    return t1 - t0, t2 - t1


def hf_decode_steps(model: LocalLatentModel, handle, steps: int) -> float:
    """Seconds per plain HF decode step on top of ``handle``'s cache."""
    hf = model.hf_model
    cache = DynamicCache(ddp_cache_data=list(zip(handle.keys, handle.values)))
    tok = torch.tensor([[model.tokenizer.eos_token_id or 0]])
    with torch.no_grad():
        out = hf(input_ids=tok, cache=cache, use_cache=True)  # warm-up, grows cache by 1
        t0 = clock()
        for _ in range(steps):
            out = hf(input_ids=tok, cache=out.cache, use_cache=True)
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
        return (clock() - t0) / steps


def latent_steps(model: LocalLatentModel, handle, steps: int) -> float:
    """Seconds per latent step, timed inside the engine with an on_step clock."""
    stamps: list[float] = []
    model.think(handle, "Continue.", steps + 1, on_step=lambda _i: stamps.append(clock()))
    return (stamps[-1] - stamps[0]) / steps


def latent_steps_hf_forward(model: LocalLatentModel, handle, steps: int) -> float:
    """:func:`latent_steps` with the engine's forwards sent through transformers' own ``LlamaModel.forward``
    (``model.decoder = model.base``) instead of ``engine/forward/llama.py``'s ``LlamaStack``: what that saves."""
    fast, model.decoder = model.decoder, model.base
    try:
        return latent_steps(model, handle, steps)
    finally:
        model.decoder = fast


def ours_generate(model: LocalLatentModel, prompts: list[str], n: int) -> float:
    t0 = clock()
    d = model.decode(None, prompts, max_new_tokens=n)
    assert all(k == n for k in d.new_tokens), d.new_tokens
    return clock() - t0


def hf_generate(model: LocalLatentModel, prompts: list[str], n: int) -> float:
    ids, mask = encode_prompts(model.tokenizer, prompts, None, True, model.device)  # the engine's own ids
    cfg = GenerationConfig(max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    t0 = clock()
    with torch.no_grad():
        out = model.hf_model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    assert out.shape[1] == ids.shape[1] + n
    return clock() - t0


def per_token(fn, model, prompts: list[str], n: int) -> float:
    return (fn(model, prompts, n + 1) - fn(model, prompts, 1)) / n


def forward_used(model: LocalLatentModel) -> str:
    """Which forward the engine's latent steps ran through, and why (the load-time check of engine/forward/llama.py)."""
    if model.decoder is not model.base:
        return "LlamaStack (engine/forward/llama.py: passed its one-layer bit-equality probe at load)"
    if not supports(model.base):
        return "transformers' own forward (not a plain one-device Llama decoder)"
    return f"transformers' own forward ({probe(model.base) or 'model.decoder was set to model.base'})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache-len", type=int, default=64, help="approximate cache length in tokens")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--dtype", default=None, help="e.g. bfloat16 (default: the model's fp32)")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time this thread's CPU seconds (needs --threads 1), robust to other processes on a shared machine",
    )
    p.add_argument("--batch", type=int, nargs="*", default=[1, 8], help="batch sizes for the generate comparison")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            p.error("--clock cpu needs --threads 1")
        global clock
        clock = time.thread_time

    _, source = default_source()
    kw = {"dtype": args.dtype} if args.dtype else {}
    t0 = time.perf_counter()
    model = LocalLatentModel.default(**kw)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = LocalLatentModel.default(**kw)
    warm = time.perf_counter() - t0
    model.eos_ids = set()  # fixed-length generation for per-token timing
    load0 = os.getloadavg()

    words = " ".join(["apples"] * max(1, args.cache_len - 30))
    handle = model.think(None, f"Count the {words}.", 0)
    prompt = f"Count the {words}."
    cols: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleaved so every variant sees the same machine load
        body, head = weight_stream(model)
        cols.setdefault("stream", []).append(body + head)
        cols.setdefault("stream_body", []).append(body)
        cols.setdefault("latent", []).append(latent_steps(model, handle, args.steps))
        cols.setdefault("latent_hf", []).append(latent_steps_hf_forward(model, handle, args.steps))
        cols.setdefault("decode", []).append(hf_decode_steps(model, handle, args.steps))
        for b in args.batch:
            cols.setdefault(f"ours{b}", []).append(per_token(ours_generate, model, [prompt] * b, args.steps))
            cols.setdefault(f"hf{b}", []).append(per_token(hf_generate, model, [prompt] * b, args.steps))
    med = {k: statistics.median(v) for k, v in cols.items()}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ms = lambda k: f"{med[k] * 1e3:7.2f} ms"  # noqa: E731
    print(
        f"model: {model.name} ({model.fingerprint.digest}) dtype={model.dtype}, torch threads={torch.get_num_threads()}, "
        f"transformers {transformers.__version__}"
    )
    print(f"clock: {args.clock}")
    print(f"load average at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f} (1 min)")
    print(f"cache length: {handle.seq_len} tokens; {args.steps} steps x {args.repeats} repeats (median)")
    print(
        f"roofline: weights streamed once {ms('stream')} (body {ms('stream_body')}, lm_head {(med['stream'] - med['stream_body']) * 1e3:.2f} ms)"
    )
    print(f"latent step : {ms('latent')}  = {med['latent'] / med['stream_body']:.2f}x body stream")
    print(
        f"  the same latent step through transformers' LlamaModel.forward: {ms('latent_hf')}"
        f"  (the engine's forward: {forward_used(model)})"
    )
    print(f"HF decode   : {ms('decode')}  = {med['decode'] / med['stream']:.2f}x full stream")
    print(
        f"ratio latent/decode = {med['latent'] / med['decode']:.3f}   (goal <= 0.82; weights-only bound {med['stream_body'] / med['stream']:.3f})"
    )
    for b in args.batch:
        r = med[f"ours{b}"] / med[f"hf{b}"]
        print(
            f"batch {b}: engine decode {ms(f'ours{b}')}/token vs HF generate {ms(f'hf{b}')}/token: "
            f"ratio {r:.3f}   (goal <= 1.0)  = {med[f'ours{b}'] / med['stream']:.2f}x full stream"
        )
    print(f"first load ({source}) = {first:.2f} s; warm default load = {warm:.2f} s   (goal <= 3 s)")
    print(f"peak RSS = {rss:.0f} MiB")


if __name__ == "__main__":
    main()
