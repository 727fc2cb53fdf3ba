"""Relay ablation grid on the relay6 suite (one command, one run, one markdown table).

What: latent-seq over realigner × latent steps × memory policy (× fed-back layer × prompt
layout), plus the baselines text-seq, direct (the judger is told every fact) and no-edge
(the judger alone, never told), all on the same relay6 split. Each condition reports
accuracy with a Wilson 95% interval, per-family hits, generated tokens per question, wall
time and the 1-minute load average; the table is printed and written to ``--out`` together
with the command that produced it. Why: to see which realigner / setting / layout (if any)
lets latent thoughts carry a fact, with intervals wide or narrow enough to believe.

Example (bounded, ~10 min on 2 CPU cores):
    python benchmarks/relay_grid.py --n 96 --steps 0 8 --memory all latent \\
        --realign ridge soft:k=8,t=0.5 --out docs/results/relay_ablation.md
Steps 0 is run once (the realigner is unused there). ``--jsonl`` appends one line per
condition; rerunning with the same file skips conditions already measured there (so a
large grid can be run in bounded pieces), and the table covers all lines of the file. The
condition loop is :mod:`latent_graph.bench.conditions`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import torch

from latent_graph import LocalLatentModel
from latent_graph.adapters import AdapterRealigner
from latent_graph.bench.conditions import ConditionLog, Told, command_line, measure, run_conditions, write_markdown
from latent_graph.bench.relay_suite import FAMILIES, relay_suite
from latent_graph.engine import make_realigner
from latent_graph.graphs import build_compact, build_sequential, build_single

BASELINES = ("text-seq", "direct", "no-edge")


@dataclass(frozen=True)
class Cond:
    """One grid cell; baselines leave the latent knobs at their defaults."""

    method: str
    realign: str = "-"
    steps: int = 0
    memory: str = "all"
    layer: int = -1
    layout: str = "sequential"
    agents: int = 3  # latent agents before the judger (compact layout only)

    @property
    def key(self) -> str:
        d = asdict(self)
        if d["agents"] == 3:  # keys of rows measured before the option existed stay valid
            del d["agents"]
        return json.dumps(d, sort_keys=True)

    @property
    def layout_label(self) -> str:
        return self.layout if self.agents == 3 else f"{self.layout} ({self.agents} agent{'s' * (self.agents != 1)})"


FIELDS = tuple(Cond.__dataclass_fields__)


def grid(args: argparse.Namespace) -> list[Cond]:
    """Baselines first, then latent-seq cells; steps 0 once per (memory, layer, layout)."""
    cells = [Cond(b) for b in args.baselines]
    for layout in args.layout:
        for layer in args.layers:
            for memory in args.memory:
                for steps in args.steps:
                    for realign in args.realign[:1] if steps == 0 else args.realign:
                        cells.append(Cond("latent-seq", realign, steps, memory, layer, layout, args.agents))
    return cells


def realigner_of(model: LocalLatentModel, spec: str) -> Any:
    """A spec for :func:`make_realigner`, or the path of a trained adapter / channel file (``*.safetensors``)."""
    if spec.endswith(".safetensors"):
        return AdapterRealigner.load(spec, model)
    return make_realigner(model, spec)


def build(cond: Cond, models: dict[int, LocalLatentModel], args: argparse.Namespace) -> Any:
    common = dict(steps=cond.steps, memory=cond.memory, max_new_tokens=args.max_new_tokens, task="plain")
    if cond.layer not in models:
        models[cond.layer] = LocalLatentModel.default(layer=cond.layer)
    base = models[cond.layer]
    if cond.method == "text-seq":
        return build_sequential(base, edges="text", **common)
    if cond.method in ("direct", "no-edge"):
        return build_single(base, **common)
    realign = realigner_of(base, cond.realign)
    if cond.layout == "compact":
        return build_compact(base, agents=("planner", "critic", "refiner")[: cond.agents], realign=realign, **common)
    return build_sequential(base, edges="latent", realign=realign, **common)


def told(cond: Cond) -> Told:
    """``direct``: the judger is told every fact; ``no-edge``: nobody is; else each agent its own."""
    if cond.method == "direct":
        return "all"
    return "none" if cond.method == "no-edge" else "split"


def table(rows: list[dict[str, Any]], per_family: int) -> str:
    fams = " / ".join(f[:6] for f in FAMILIES)
    head = (
        f"| method | realign | steps | memory | layer | layout | n | accuracy [95% CI] | hits per family "
        f"({fams}, of {per_family}) | gen tok/q | wall s | load 1m |\n|" + "---|" * 12
    )
    lines = [head]
    for r in rows:
        lo, hi = r["ci95"]
        fam = " / ".join(str(r["family_hits"][f]) for f in FAMILIES)
        latent = r["method"] == "latent-seq"
        knobs = (
            [
                r["realign"],
                str(r["steps"]),
                r["memory"],
                str(r["layer"]),
                Cond(**{k: r[k] for k in FIELDS if k in r}).layout_label,
            ]
            if latent
            else ["-"] * 5
        )
        lines.append(
            f"| {r['method']} | " + " | ".join(knobs) + f" | {r['n']} | {r['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] "
            f"| {fam} | {r['gen_tok_per_q']:.1f} | {r['wall_s']:.0f} | {r['load_1m'][0]}→{r['load_1m'][1]} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=96, help="examples of the split (default 96, 16 per family)")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, nargs="+", default=[0, 4, 8, 16])
    p.add_argument("--memory", nargs="+", default=["all", "last", "latent"])
    p.add_argument(
        "--realign",
        nargs="+",
        default=["ridge", "soft:k=8,t=0.5", "knn:k=4", "blend:alpha=0.5,k=8,t=0.5"],
        help="realigner specs (see make_realigner) or trained adapter files (*.safetensors)",
    )
    p.add_argument("--layers", type=int, nargs="+", default=[-1], help="hidden layer fed back (-1 = final norm output)")
    p.add_argument("--layout", nargs="+", default=["sequential"], choices=("sequential", "compact"))  # graph names
    p.add_argument(
        "--agents",
        type=int,
        default=3,
        choices=(1, 2, 3),
        help="latent agents before the judger in the compact layout (1 = one sender, then the judger)",
    )
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=BASELINES)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jsonl", default="runs/relay_grid.jsonl", help="results, one line per condition (appended)")
    p.add_argument("--out", default="docs/results/relay_ablation.md", help="markdown table (overwritten)")
    p.add_argument("--table-only", action="store_true", help="measure nothing; rebuild --out from --jsonl")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    task = relay_suite(args.n, args.split, args.seed)
    log = ConditionLog(args.jsonl)
    models = {-1: LocalLatentModel.default()}
    command = command_line("benchmarks/relay_grid.py", argv)
    print(f"{task.source}, {len(task.examples)} examples; {command}", flush=True)

    def run(cond: Cond) -> dict[str, Any]:
        row = measure(build(cond, models, args), task, args.batch_size, told(cond))
        return {**asdict(cond), **row, "command": command}

    run_conditions(
        [] if args.table_only else grid(args),
        log,
        args.n,
        lambda c: c.key,
        run,
        lambda row: print(table([row], args.n // len(FAMILIES)).splitlines()[-1], flush=True),
    )
    rows = [r for r in log.rows.values() if r["n"] == args.n]
    md = table(rows, args.n // len(FAMILIES))
    header = (
        f"# Relay ablation ({task.source}, model {models[-1].name}, greedy, max_new_tokens "
        f"{args.max_new_tokens}, torch threads {args.threads}, {os.cpu_count()} CPUs)\n\n"
        "Produced by (in this order, appending to "
        + f"`{args.jsonl}`):\n\n```bash\n"
        + "\n".join(dict.fromkeys(r.get("command", "?") for r in rows))
        + "\n```\n\n"
    )
    write_markdown(args.out, header + md + "\n\n", "<!-- notes -->")  # hand-written reading below the marker stays
    print("\n" + md)


if __name__ == "__main__":
    main()
