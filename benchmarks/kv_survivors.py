"""Which tokens cross the compressed edges? The judger's input cache of the compact chain, token by token.

For relay6 examples of one family, runs ``build_compact(kv_keep=...)`` as ``relay_fair.py`` does
and prints, per example, whether the judger's answer is right, and the tokens of the handle the
judger reads: ``[tok]`` marks a kept column, a bare ``tok`` a dropped one, ``<L>``/``<l>`` a kept /
dropped latent step. Diagnostic only (it wraps ``Work.forward`` to learn the token of every column);
it asks whether a miss is a lost fact (a value token dropped) or a misread of a sparse cache
(every value token kept, the answer still wrong).

    python benchmarks/kv_survivors.py --split validation --family second_agent
    python benchmarks/kv_survivors.py --split test --family second_agent --n 96 --limit 16
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import torch

import latent_graph.engine.forward.work as cache_mod  # noqa: E402
import latent_graph.nodes.latent as latent_nodes  # noqa: E402
from latent_graph import LocalLatentModel  # noqa: E402
from latent_graph.bench.conditions import relay_state
from latent_graph.bench.relay_suite import FAMILIES, relay_suite  # noqa: E402
from latent_graph.graphs import build_compact


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", default="validation")
    p.add_argument("--family", default="second_agent", choices=FAMILIES)
    p.add_argument("--n", type=int, default=96, help="examples of the split to draw the family's from")
    p.add_argument("--limit", type=int, default=16, help="examples of the family shown (one batch)")
    p.add_argument("--kv-keep", type=float, default=0.2)
    p.add_argument("--tail", type=int, default=420, help="characters shown from the end of each cache")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = LocalLatentModel.default()
    tokens: dict[tuple[int, int], int] = {}  # (row, position) -> token id; -1 for a latent step
    forward = cache_mod.Work.forward

    def recording(self: Any, base: Any, new_mask: torch.Tensor, layer: int = -1, **kw: Any) -> torch.Tensor:
        pos = cache_mod.positions_after(self.next_pos, new_mask)  # (B, n)
        ids = kw.get("input_ids")
        for r, j in new_mask.nonzero().tolist():
            tokens[(r, int(pos[r, j]))] = int(ids[r, j]) if ids is not None else -1
        return forward(self, base, new_mask, layer, **kw)

    cache_mod.Work.forward = recording  # type: ignore[method-assign]
    edges: list[Any] = []
    compress = latent_nodes.compress

    def keeping(*a: Any) -> Any:
        edges.append(compress(*a))
        return edges[-1]

    latent_nodes.compress = keeping  # type: ignore[assignment]
    task = relay_suite(args.n, args.split, 0)
    batch = [e for e in task.examples if e.meta["family"] == args.family][: args.limit]
    graph = build_compact(model, kv_keep=args.kv_keep, max_new_tokens=24, task="plain", steps=8)  # as relay_fair.py
    out = graph.invoke(relay_state(batch))
    last = edges[-1]
    print(f"{task.source} family={args.family} kv_keep={args.kv_keep}: the judger's input cache ({len(edges)} edges)")
    right = 0
    for r, (e, answer) in enumerate(zip(batch, out["answers"])):
        kept = set(last.position_ids[r][last.attention_mask[r].bool()].tolist())
        end = max(kept)  # the judger's own prompt and answer come after
        ok = task.score(e, str(answer)).correct
        right += ok
        text = "".join(
            ("<L>" if p in kept else "<l>")
            if t < 0
            else (f"[{model.tokenizer.decode([t])}]" if p in kept else model.tokenizer.decode([t]))
            for (row, p), t in sorted(tokens.items())
            if row == r and p <= end
        )
        flat = re.sub(r"\s+", " ", text)[-args.tail :]
        print(f"{'OK' if ok else 'XX'} gold={e.gold!r} answer={str(answer)[:48]!r}\n   {flat}")
    print(f"{right}/{len(batch)} right")


if __name__ == "__main__":
    main()
