"""Constrained decoding cost on the embedded default model (issue 19).

Prints, from one run, with the load average (variants interleaved A B A B ..., medians):
- per decoded token: a plain greedy step vs the same step under an accepting regex
  constraint (same tokens: greedy-equal) and under a JSON-schema constraint, and their ratio
  (goal <= 1.2); per-token time = (time for n tokens - time for 1 token) / (n - 1);
- the two libraries measured for the choice (xgrammar vs llguidance, both warm) on the default
  tokenizer: compile time of a JSON schema and the time to fill one next-token mask.

Usage: python benchmarks/bench_constrained.py [--tokens 48] [--repeats 5] [--threads 1] [--clock cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from latent_graph import LocalLatentModel
from latent_graph.engine import Constraint

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "hobbies": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "hobbies"],
}
PROMPT = "Describe a person called Alice in detail: her name, age and hobbies, as JSON."


def per_token(model: LocalLatentModel, n: int, constraint: Constraint | None, clock) -> float:
    def run(k: int) -> tuple[float, int]:
        t0 = clock()
        d = model.decode(None, PROMPT, max_new_tokens=k, constraint=constraint)
        return clock() - t0, d.new_tokens[0]

    t1, _ = run(1)
    tn, got = run(n)
    return (tn - t1) / max(got - 1, 1)


def libraries(model: LocalLatentModel, clock) -> dict[str, tuple[float, float]]:
    """(schema compile seconds, seconds per mask fill) per library, warm."""
    import llguidance
    import llguidance.hf
    import llguidance.torch as lt
    import xgrammar as xgr

    tok, vocab = model.tokenizer, int(model.hf_model.get_output_embeddings().weight.shape[0])
    ids = tok(
        json.dumps({"name": "Alice", "age": 30, "hobbies": ["chess", "running", "reading books"]}),
        add_special_tokens=False,
    )["input_ids"]
    out = {}
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab)
    comp = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    for _ in range(2):  # second round is warm
        t0 = clock()
        g = comp.compile_json_schema(json.dumps(SCHEMA))
        tc = clock() - t0
        m, bm = xgr.GrammarMatcher(g), xgr.allocate_token_bitmask(1, vocab)
        t0 = clock()
        for i in ids:
            m.fill_next_token_bitmask(bm)
            m.accept_token(i)
        out["xgrammar 0.2.9"] = (tc, (clock() - t0) / len(ids))
    linfo = llguidance.hf.from_tokenizer(tok, n_vocab=vocab)
    for _ in range(2):
        t0 = clock()
        m = llguidance.LLMatcher(linfo, llguidance.LLMatcher.grammar_from_json_schema(SCHEMA))
        tc = clock() - t0
        bm = lt.allocate_token_bitmask(1, vocab)
        t0 = clock()
        for i in ids:
            lt.fill_next_token_bitmask(m, bm, 0)
            m.consume_token(i)
        out["llguidance 1.9.1"] = (tc, (clock() - t0) / len(ids))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    model = LocalLatentModel.default()
    accept_all, schema = Constraint.regex(r"(.|\n)*"), Constraint.json_schema(SCHEMA)
    same = (
        model.decode(None, PROMPT, max_new_tokens=args.tokens).texts
        == model.decode(None, PROMPT, max_new_tokens=args.tokens, constraint=accept_all).texts
    )
    variants = {"plain": None, "regex (accepts all)": accept_all, "json schema": schema}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, c in variants.items():
            times[name].append(per_token(model, args.tokens, c, clock))
    load = os.getloadavg()
    plain = statistics.median(times["plain"])
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; threads {torch.get_num_threads()}; clock {args.clock}"
    )
    print(f"greedy-equal under the accepting constraint: {same}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:22s} {med * 1e3:8.2f} ms/token   constrained/plain {med / plain:5.2f}x")
    for lib, (tc, tf) in libraries(model, clock).items():
        print(f"{lib:18s} schema compile {tc * 1e3:7.2f} ms   mask fill {tf * 1e6:8.1f} us/token")


if __name__ == "__main__":
    main()
