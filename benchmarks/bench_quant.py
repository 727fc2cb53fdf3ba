"""4-bit / 8-bit vs fp32 on this machine: weight memory, latent-step and decode speed, relay accuracy.

Each mode loads the default model through ``LocalLatentModel.default(quantization=...)`` and is
measured in the same run, one after the other, with the load average printed beside the timings.

Usage: python benchmarks/bench_quant.py [--modes fp32,8bit,4bit] [--graphs compact,sequential] [--relay 16] [--steps 8]
       [--tokens 16]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from latent_graph import LocalLatentModel
from latent_graph.bench.metrics import wilson_interval
from latent_graph.bench.tasks import relay_probes
from latent_graph.engine.load import weight_bytes
from latent_graph.graphs.registry import DEFAULT_GRAPH, build_graph

QUESTION = "Alice has 3 apples and buys 5 more. How many apples does Alice have now?"


def _time(fn, repeats: int) -> float:
    fn()  # untimed: first-call costs
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def measure(mode: str, args: argparse.Namespace, task) -> dict:
    t0 = time.perf_counter()
    model = LocalLatentModel.default(quantization=None if mode == "fp32" else mode)
    load_s = time.perf_counter() - t0
    h = model.think(None, QUESTION, steps=0)
    step_s = _time(lambda: model.think(h, "Go on.", steps=args.steps), 2)
    prefill_s = _time(lambda: model.think(h, "Go on.", steps=0), 2)
    latent_step = (step_s - prefill_s) / args.steps
    ids = model.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )

    def gen():
        return model.hf_model.generate(**ids, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)

    def one():
        return model.hf_model.generate(**ids, max_new_tokens=1, do_sample=False)

    hf_step = (_time(gen, 1) - _time(one, 1)) / (args.tokens - 1)
    relay = {}
    for name in args.graphs.split(","):
        graph = build_graph(name, model, edges="latent", steps=args.steps, max_new_tokens=24, task="plain")
        t1 = time.perf_counter()
        out = graph.invoke(
            {"questions": [e.question for e in task.examples], "context": [e.context for e in task.examples]}
        )
        hits = sum(task.score(e, a).correct for e, a in zip(task.examples, out["answers"]))
        relay[name] = {
            "correct": hits,
            "n": len(task.examples),
            "ci95": list(wilson_interval(hits, len(task.examples))),
            "wall_s": time.perf_counter() - t1,
            "answers": out["answers"],
        }
    return {
        "mode": mode,
        "weights_mib": weight_bytes(model.hf_model) / 2**20,
        "load_s": load_s,
        "latent_step_s": latent_step,
        "hf_decode_step_s": hf_step,
        "relay": relay,
        "loadavg": os.getloadavg()[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default="fp32,8bit,4bit")
    p.add_argument("--relay", type=int, default=16, help="relay probes through the latent chain (default 16)")
    p.add_argument(
        "--graphs",
        default=f"{DEFAULT_GRAPH},sequential",
        help="latent chains the relay probes go through (default: the default graph and sequential)",
    )
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--tokens", type=int, default=16, help="decode steps timed for the HF step")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    task = relay_probes(args.relay, 0)
    rows = []
    for m in (x.strip() for x in args.modes.split(",")):
        if m:
            rows.append(measure(m, args, task))
            print(f"measured {m}: { {k: v for k, v in rows[-1].items() if k != 'relay'} }", flush=True)
    base = next((r for r in rows if r["mode"] == "fp32"), rows[0])
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}")
    print(
        f"{'mode':<6} {'weights MiB':>11} {'x fp32':>7} {'load s':>7} {'latent step s':>14} {'HF decode step s':>17} "
        + "".join(f" {'relay ' + g:>16} {'95% CI':>12}" for g in args.graphs.split(","))
        + f" {'load avg':>8}"
    )
    for r in rows:
        cells = "".join(
            f" {v['correct'] / v['n']:16.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]" for v in r["relay"].values()
        )
        print(
            f"{r['mode']:<6} {r['weights_mib']:11.0f} {r['weights_mib'] / base['weights_mib']:7.2f} {r['load_s']:7.1f} "
            f"{r['latent_step_s']:14.4f} {r['hf_decode_step_s']:17.4f}{cells} {r['loadavg']:8.2f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
