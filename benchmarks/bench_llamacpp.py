"""The llama.cpp engine side by side with llama.cpp's own generate and with the transformers engine (issue 31).

Prints, from one run, with the load average before and after (methods interleaved A B A B ..., medians):
- decode per token: llama.cpp's own greedy ``Llama.generate`` vs this engine's ``decode`` on the same GGUF
  (the embedded default model's), same prompt tokens, same thread count; per token =
  (time for 1 + n tokens - time for 1 token) / n, end of sequence ignored;
- a latent step vs that decode step (per step = (think with 1 + n steps - think with 1 step) / n), and both
  again as the median gap between ``on_step`` / ``on_token`` callbacks (robust on a loaded machine);
- prefill of one long prompt: llama.cpp's own ``Llama.eval`` vs this engine's ``think`` with 0 steps, on the file
  as it is and requantized (``--quantization``, a comma list, default q8_0,q4_0; ``none``: skip);
- the default graph (compact: 3 latent agents + judger) end to end per question on both engines (llama.cpp on
  the file as it is and requantized), same questions, steps and budgets, greedy; and whether their answers agree.

Usage: python benchmarks/bench_llamacpp.py [--threads 1] [--tokens 32] [--steps 8] [--repeats 3]
       [--quantization q8_0,q4_0] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

from latent_graph import LlamaCppLatentModel, LocalLatentModel
from latent_graph.engine.load.embedded import gguf_path
from latent_graph.engine.prompt import prompt_rows
from latent_graph.graphs import build_compact

QUESTIONS = [
    "Alice has 3 apples and buys 5 more. How many apples does she have?",
    "A train travels 60 km in 1.5 hours. What is its average speed in km/h?",
    "What is 12 times 7?",
]
PROMPT = "Explain step by step how to compute 17 times 23, then give the result."
LONG = " ".join(QUESTIONS * 4)  # about as many prompt tokens as the default chain prefills per question


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median of each function's returned seconds, the functions run in turn ``repeats`` times."""
    runs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            runs[k].append(fn())
    return {k: statistics.median(v) for k, v in runs.items()}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--questions", type=int, default=2)
    ap.add_argument("--quantization", default="q8_0,q4_0", help="requantized GGUFs to run too (comma list; none)")
    ap.add_argument("--out", default=None, help="also write the report here")
    args = ap.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    import llama_cpp

    torch.set_num_threads(args.threads)
    say(f"bench_llamacpp: threads={args.threads} cores={len(os.sched_getaffinity(0))} load average {load_avg()}")
    say("(the machine was shared with other jobs: absolute times are inflated, ratios are what to read)")
    t0 = time.perf_counter()
    ours = LlamaCppLatentModel.default(n_threads=args.threads)
    say(f"llama.cpp engine load (GGUF cache warm): {time.perf_counter() - t0:.2f} s; {ours!r}")
    t0 = time.perf_counter()
    hf = LocalLatentModel.default()
    say(f"transformers engine load (converted cache warm): {time.perf_counter() - t0:.2f} s")
    llm = llama_cpp.Llama(
        str(gguf_path()), n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
    )
    tokens = prompt_rows(ours.tokenizer, [PROMPT], None, True, after_open_turn=False, generation=True)[0]

    def own(n: int) -> float:
        def run() -> None:
            llm.reset()  # else generate reuses the cached prompt: both sides prefill it
            for i, _ in enumerate(llm.generate(tokens, temp=0.0, reset=True)):
                if i + 1 == n:
                    break

        return timed(run)

    eos, ours.eos_ids = ours.eos_ids, set()  # end of sequence off: every run generates its full budget
    n = args.tokens

    def engine(k: int) -> float:
        return timed(lambda: ours.decode(None, PROMPT, max_new_tokens=k))

    def think(k: int) -> float:
        return timed(lambda: ours.think(None, PROMPT, steps=k))

    med = interleaved(
        {
            "own1": lambda: own(1),
            "ownN": lambda: own(1 + n),
            "eng1": lambda: engine(1),
            "engN": lambda: engine(1 + n),
            "think1": lambda: think(1),
            "thinkN": lambda: think(1 + n),
        },
        args.repeats,
    )
    gaps: dict[str, list[float]] = {"latent": [], "decode": []}
    for _ in range(args.repeats):  # the same two steps timed from inside: the gaps between callbacks
        for kind in gaps:
            stamps: list[float] = []
            if kind == "latent":
                ours.think(None, PROMPT, steps=n, on_step=lambda _, s=stamps: s.append(time.perf_counter()))
            else:
                ours.decode(None, PROMPT, max_new_tokens=n, on_token=lambda _, s=stamps: s.append(time.perf_counter()))
            gaps[kind] += [b - a for a, b in zip(stamps, stamps[1:])]
    ours.eos_ids = eos
    lat_gap, dec_gap = (statistics.median(gaps[k]) for k in ("latent", "decode"))
    own_tok = (med["ownN"] - med["own1"]) / n
    eng_tok = (med["engN"] - med["eng1"]) / n
    step = (med["thinkN"] - med["think1"]) / n
    say(f"prompt {len(tokens)} tokens; decode of {n} tokens after 1, medians of {args.repeats}:")
    say(f"  llama.cpp Llama.generate   {own_tok * 1e3:7.2f} ms/token (first token {med['own1'] * 1e3:.1f} ms)")
    say(f"  this engine's decode       {eng_tok * 1e3:7.2f} ms/token (first token {med['eng1'] * 1e3:.1f} ms)")
    say(f"  ratio engine / llama.cpp   {eng_tok / own_tok:7.3f}  (goal <= 1.15)")
    say(f"  latent step                {step * 1e3:7.2f} ms/step ({n} steps after 1, same prompt)")
    say(f"  ratio latent / decode step {step / eng_tok:7.3f}  (goal <= 1.0)")
    say(
        f"  the same from the gaps between callbacks (median of {len(gaps['latent'])}): latent step "
        f"{lat_gap * 1e3:.2f} ms, decode step {dec_gap * 1e3:.2f} ms (streaming), ratio {lat_gap / dec_gap:.3f}"
    )

    engines = {"llamacpp": ours}
    for kind in [] if args.quantization == "none" else args.quantization.split(","):
        t0 = time.perf_counter()
        engines[f"llamacpp {kind}"] = LlamaCppLatentModel.default(n_threads=args.threads, quantization=kind)
        say(f"requantized engine load: {time.perf_counter() - t0:.2f} s; {engines[f'llamacpp {kind}']!r}")
    long_tokens = prompt_rows(ours.tokenizer, [LONG], None, True, after_open_turn=False, generation=False)[0]
    fns: dict[str, Callable[[], float]] = {}
    for name, eng in engines.items():
        ref = llama_cpp.Llama(
            str(eng.path), n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
        )

        def evaluate(ref: llama_cpp.Llama = ref) -> float:
            ref.reset()
            return timed(lambda: ref.eval(long_tokens))

        fns[f"{name}: Llama.eval"] = evaluate
        fns[f"{name}: think(steps=0)"] = lambda eng=eng: timed(lambda: eng.think(None, LONG))
    pre = interleaved(fns, args.repeats)
    say(f"prefill of {len(long_tokens)} prompt tokens, medians of {args.repeats}:")
    for k, v in pre.items():
        say(f"  {k:34s} {v * 1e3:8.1f} ms  ({v / len(long_tokens) * 1e3:.2f} ms/token)")

    qs = QUESTIONS[: args.questions]
    graphs = {k: build_compact(e, steps=args.steps, max_new_tokens=64) for k, e in engines.items()}
    graphs["transformers"] = build_compact(hf, steps=args.steps, max_new_tokens=64)
    answers: dict[str, list[str]] = {k: [] for k in graphs}

    def chain(name: str) -> Callable[[], float]:
        def run() -> float:
            total = 0.0
            answers[name] = []
            for q in qs:
                t0 = time.perf_counter()
                out = graphs[name].invoke({"questions": [q]})
                total += time.perf_counter() - t0
                answers[name].append(out["answers"][0])
            return total / len(qs)

        return run

    for g in graphs.values():  # warm-up (first-call allocations) outside the timing
        g.invoke({"questions": [qs[0]]})
    per_q = interleaved({k: chain(k) for k in graphs}, max(1, args.repeats // 2))
    say(f"default graph (compact, {args.steps} steps, 64-token judger) per question, {len(qs)} questions, batch 1:")
    for k, v in per_q.items():
        say(f"  {k:18s} {v:7.3f} s")
    for k in engines:
        say(f"  speed-up {k:18s} {per_q['transformers'] / per_q[k]:5.2f}x over transformers  (goal >= 4)")
        same = sum(a == b for a, b in zip(answers[k], answers["transformers"]))
        say(f"    answers equal to the transformers engine's (dequantized Q4_1, fp32) on {same}/{len(qs)} questions")
    for i, q in enumerate(qs):
        say(f"    {q[:40]!r}: " + " | ".join(f"{k} {answers[k][i][:50]!r}" for k in answers))
    say(f"load average after: {load_avg()}")
    if args.out:
        with open(args.out, "w") as f:
            f.write(" ".join(["$ python", *sys.argv]) + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
