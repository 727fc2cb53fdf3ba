"""Latent edges measured fairly on relay6: fair text budgets, compressed latent edges, channel capacity.

Three tables, one command each (appending to one JSONL; conditions already there are skipped):

    python benchmarks/relay_fair.py --table fair       # direct, no-edge, text chains (32/64/128-token messages),
                                                       # latent chains (compact and LatentMAS layouts)
    python benchmarks/relay_fair.py --table kv         # compact latent chain at kv_keep 1 / 0.5 / 0.2 / 0.1
    python benchmarks/relay_fair.py --table capacity   # one sender -> judger: m latent thoughts (memory=latent)
                                                       # vs a text edge of m / 4m tokens, m in 1, 4, 8, 16
    python benchmarks/relay_fair.py --table-only       # rebuild the markdown tables from the JSONL

Budgets: greedy; the judger answers in ``--max-new-tokens`` (default 24) tokens in every condition;
text agents stop at the end of their turn or at their message budget (``message_tokens``). Per
condition: accuracy with a Wilson 95% interval, generated tokens per question (all agents), seconds
per question, bytes crossing each edge per question (UTF-8 message bytes for a text edge; the
handle's KV + latents + masks for a latent edge), the judger's seconds and cache columns per
question, and (kv table) the bytes of the handle entering the judger as a blob store keeps it
(``handle_to_chunks``: its chunks plus manifest). The 1-minute load average is printed beside
every timing. The condition loop is :mod:`latent_graph.bench.conditions`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch

from latent_graph import LocalLatentModel
from latent_graph.bench.conditions import ConditionLog, Told, command_line, measure, run_conditions, write_markdown
from latent_graph.bench.relay_suite import FAMILIES, relay_suite
from latent_graph.engine import KVPolicy, load_model
from latent_graph.graphs import build_compact, build_sequential, build_single
from latent_graph.graphs.roles import SEQUENTIAL
from latent_graph.persist import default_handle_store, handle_to_chunks, is_ref

TABLES: dict[str, list[dict[str, Any]]] = {
    "fair": [
        {"method": "latent-seq", "layout": "compact", "steps": 8, "kv_keep": 1.0},
        {"method": "text-seq", "message_tokens": 64},
        {"method": "direct"},
        {"method": "no-edge"},
        *({"method": "text-seq", "message_tokens": t} for t in (32, 128)),
        {"method": "latent-seq", "layout": "default", "steps": 8},
    ],
    "kv": [{"method": "latent-seq", "layout": "compact", "steps": 8, "kv_keep": k} for k in (1.0, 0.2, 0.1, 0.5)],
    "capacity": [
        *({"method": "thoughts", "steps": m} for m in (1, 4, 8, 16)),
        *({"method": "text-1", "message_tokens": t} for t in (1, 4, 8, 16, 32, 64)),
    ],
}
NOTES = "<!-- generated tables end here; notes below are kept by --table-only -->\n"
SENDER = {"planner": SEQUENTIAL["planner"]}  # the one sender of the capacity table (same prompt for both edges)


def key(cond: dict[str, Any]) -> str:
    full = {"layout": "-", "steps": 0, "message_tokens": 0, "kv_keep": 1.0, **cond}
    return json.dumps(full, sort_keys=True)


def build(cond: dict[str, Any], model: LocalLatentModel, judge_tokens: int) -> Any:
    common: dict[str, Any] = dict(max_new_tokens=judge_tokens, task="plain", steps=cond.get("steps", 0))
    m = cond["method"]
    if m in ("direct", "no-edge"):
        return build_single(model, **common)
    if m == "text-seq":
        return build_sequential(model, edges="text", message_tokens=cond["message_tokens"], **common)
    if m == "text-1":
        return build_sequential(model, agents=SENDER, edges="text", message_tokens=cond["message_tokens"], **common)
    if m == "thoughts":
        return build_sequential(model, agents=SENDER, edges="latent", memory="latent", **common)
    if cond["layout"] == "compact":
        return build_compact(model, kv_keep=cond.get("kv_keep", 1.0), **common)
    return build_sequential(model, edges="latent", **common)


def told(cond: dict[str, Any]) -> Told:
    """Who is told the facts: ``direct`` and the one-sender conditions get every fact, ``no-edge`` none."""
    if cond["method"] in ("direct", "thoughts", "text-1"):  # one sender: it is told every fact
        return "all"
    return "none" if cond["method"] == "no-edge" else "split"


def stored_bytes(handle: Any) -> int:
    """Bytes of a handle as the blob store keeps it (graph state holds a reference: the default store has the tensors)."""
    parts = handle_to_chunks(default_handle_store().load(handle) if is_ref(handle) else handle)
    return len(parts.manifest.encode()) + sum(len(c) for c in parts.chunks.values())


def label(r: dict[str, Any]) -> str:
    m = r["method"]
    if m == "text-seq":
        return f"text chain, {r['message_tokens']}-token messages"
    if m == "text-1":
        return f"text edge, {r['message_tokens']} tokens"
    if m == "thoughts":
        return f"thoughts only, m={r['steps']} latent vectors"
    if m == "latent-seq":
        lay = "compact" if r["layout"] == "compact" else "LatentMAS"
        kv = f", kv_keep {r['kv_keep']}" if "kv_keep" in r else ""
        return f"latent chain, {lay} layout, {r['steps']} steps{kv}"
    return m


def table(rows: list[dict[str, Any]], per_family: int, kv: bool = False) -> str:
    fams = " / ".join(f[:6] for f in FAMILIES)
    head = (
        f"| condition | n | accuracy [95% CI] | hits ({fams}, of {per_family}) | gen tok/q | s/q | "
        f"bytes/edge/q | judger s/q | judger cols/q |" + (" ckpt bytes/q |" if kv else "") + " load 1m |"
    )
    lines = [head, "|" + "---|" * (10 + kv)]
    for r in rows:
        lo, hi = r["ci95"]
        fam = " / ".join(str(r["family_hits"][f]) for f in FAMILIES)
        ck = f" {r['ckpt_bytes_per_q']:,.0f} |" if kv else ""
        lines.append(
            f"| {label(r)} | {r['n']} | {r['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] | {fam} | "
            f"{r['gen_tok_per_q']:.1f} | {r['s_per_q']:.2f} | {r['bytes_per_edge_q']:,.0f} | "
            f"{r['judger_s_per_q']:.3f} | {r['judger_cols']:.0f} |{ck} {r['load_1m'][0]}→{r['load_1m'][1]} |"
        )
    return "\n".join(lines)


def plot_capacity(rows: list[dict[str, Any]], path: str) -> None:
    """Accuracy (Wilson 95% bars) against m: m latent thoughts vs a text edge of m and of 4m tokens (PNG and SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = (1, 4, 8, 16)
    thoughts = {r["steps"]: r for r in rows if r["method"] == "thoughts"}
    text = {r["message_tokens"]: r for r in rows if r["method"] == "text-1"}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, pick in (
        ("thoughts only: m latent vectors", lambda m: thoughts.get(m)),
        ("text edge: m tokens", lambda m: text.get(m)),
        ("text edge: 4m tokens", lambda m: text.get(4 * m)),
    ):
        pts = [(m, pick(m)) for m in ms if pick(m) is not None]
        if pts:
            acc = [r["accuracy"] for _, r in pts]
            err = [[a - r["ci95"][0] for a, (_, r) in zip(acc, pts)], [r["ci95"][1] - a for a, (_, r) in zip(acc, pts)]]
            ax.errorbar([m for m, _ in pts], acc, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.set_xlabel("m")
    ax.set_ylabel("relay6 test accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Channel capacity: latent vectors vs text tokens")
    fig.tight_layout()
    for ext in (".png", ".svg"):
        fig.savefig(str(Path(path).with_suffix(ext)))
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", default=["fair"], choices=tuple(TABLES))
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=24, help="the judger's answer budget (every condition)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default="default", help="HF path or hub id (default: the embedded SmolLM2-135M)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:0 ...")
    p.add_argument("--jsonl", default="runs/relay_fair.jsonl")
    p.add_argument("--out", default="docs/results/relay_fair.md")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--kv-keep", type=float, nargs="+", default=None, help="only these kv_keep cells of the kv table")
    p.add_argument(
        "--kv-policy",
        default=None,
        help="JSON of KVPolicy fields overriding the defaults (tuning runs only), e.g. '{\"pool\": 3}'",
    )
    p.add_argument(
        "--plot", default="docs/results/relay_capacity.png", help="capacity plot (PNG + SVG), drawn when measured"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.kv_policy:  # tuning only: every latent node builds its KVPolicy with these fields
        import functools

        import latent_graph.nodes.latent as latent_nodes

        latent_nodes.KVPolicy = functools.partial(KVPolicy, **json.loads(args.kv_policy))  # type: ignore[misc]
    task = relay_suite(args.n, args.split, 0)
    log = ConditionLog(args.jsonl)  # by condition key: a condition listed in two tables is measured once
    command = command_line("benchmarks/relay_fair.py", argv)
    model = (
        LocalLatentModel.default()
        if args.model == "default"
        else load_model(args.model, dtype=args.dtype, device=args.device)
    )
    print(f"{task.source}: {command}", flush=True)
    policy = json.loads(args.kv_policy or "{}")
    for name in [] if args.table_only else args.table:
        cells = [c for c in TABLES[name] if name != "kv" or args.kv_keep is None or c["kv_keep"] in args.kv_keep]
        conds = [{**c, "kv_policy": policy} if policy and c.get("kv_keep", 1.0) < 1.0 else c for c in cells]

        def run(cond: dict[str, Any], name: str = name) -> dict[str, Any]:
            graph = build(cond, model, args.max_new_tokens)
            sizes = stored_bytes if cond["method"] == "latent-seq" else None
            compressed = cond.get("kv_keep", 1.0) < 1
            return {
                **cond,
                **measure(graph, task, args.batch_size, told(cond), sizes),
                "table": name,
                "command": command,
                "judge_tokens": args.max_new_tokens,
                "batch_size": args.batch_size,
                "kv_method": repr(KVPolicy(**{**policy, "keep": cond["kv_keep"]})) if compressed else None,
            }

        def show(row: dict[str, Any], name: str = name) -> None:
            print(table([row], args.n // len(FAMILIES), name == "kv").splitlines()[-1], flush=True)

        run_conditions(conds, log, args.n, key, run, show)
    md = [
        f"# relay6 fair tables ({task.source}, {model.name}, greedy, judger answer budget {args.max_new_tokens}, "
        f"batch {args.batch_size}, torch threads {args.threads}, {os.cpu_count()} shared CPUs)\n"
    ]
    for name in TABLES:
        rows = log.measured([key(c) for c in TABLES[name]], args.n)
        if rows:
            cmds = "\n".join(dict.fromkeys(r["command"] for r in rows))
            md.append(f"## {name}\n\n```bash\n{cmds}\n```\n\n{table(rows, args.n // len(FAMILIES), name == 'kv')}\n")
    cap = log.measured([key(c) for c in TABLES["capacity"]], args.n)
    if cap and args.plot:
        plot_capacity(cap, args.plot)
    write_markdown(args.out, "\n".join(md) + "\n", NOTES)  # hand-written notes below NOTES stay
    print("\n".join(md))


if __name__ == "__main__":
    main()
