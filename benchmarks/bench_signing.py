"""Cost of signed references and keyed addresses on the hot path, side by side with one latent node run.

    PYTHONPATH=. python benchmarks/bench_signing.py [--steps 4] [--repeat 30] [--out docs/results/bench_signing.txt]

On the default model: a two-agent handle (planner, critic) is the one a third node reads and extends. Measured,
interleaved in one process, the median of ``--repeat`` rounds each:

- one node run: ``LatentAgentNode`` on that state (resolve the reference hot, ``think``, save the new handle);
- what signing adds to it: ``Sealer.sign`` of the new reference and ``Sealer.verify`` of the one read (the only
  steps that did not exist before), and a hot ``HandleStore.load`` with and without the verify;
- addressing: ``handle_to_chunks`` with keyed HMAC addresses against plain sha256 (what a save hashes either way).

Prints each time, the ratios to the node run, and the load average (the box is shared; ratios are the result).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from latent_graph import LocalLatentModel
from latent_graph.nodes import LatentAgentNode
from latent_graph.persist import HandleStore, MemoryBlobStore, handle_to_chunks
from latent_graph.persist.keys import KeyRing
from latent_graph.persist.refs import check_ref

Q = ["A train travels 60 km in 1.5 hours. What is its speed?"]


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = LocalLatentModel.default()
    store = HandleStore(MemoryBlobStore(), keys=KeyRing(["bench-" + "k" * 40]))
    sealer = store.sealer
    node = LatentAgentNode(model, "refiner", "Refine the answer.", steps=args.steps, handle_store=store)
    prev = model.think(model.think(None, Q, args.steps, agent="planner"), ["Check it."], args.steps, agent="critic")
    ref = store.save(prev)
    state = {"questions": Q, "handle": ref}
    address = sealer.address(sealer.keys.kid, "")
    rows: dict[str, list[float]] = {k: [] for k in ("node", "sign", "verify", "hot", "hot_unsigned", "keyed", "sha")}
    node(state)  # warm up
    for _ in range(args.repeat):
        rows["node"].append(timed(lambda: node(state)))
        rows["sign"].append(timed(lambda: sealer.sign(dict(ref), "")))
        rows["verify"].append(timed(lambda: sealer.verify(ref, "")))
        rows["hot"].append(timed(lambda: store.load(ref, model)))
        rows["hot_unsigned"].append(timed(lambda: store.hot.get(check_ref(ref, model), tuple(ref["chunks"]))))
        rows["keyed"].append(timed(lambda: handle_to_chunks(prev, address)))
        rows["sha"].append(timed(lambda: handle_to_chunks(prev)))
    med = {k: statistics.median(v) for k, v in rows.items()}
    node_s = med["node"]
    lines = [
        f"bench_signing: default model {model.name}, handle of {prev.seq_len} columns ({prev.nbytes:,} bytes), "
        f"{args.steps} latent steps per node, median of {args.repeat}; load average {os.getloadavg()}",
        f"one node run (resolve + think + save)      {node_s * 1e3:10.2f} ms",
        f"sign a reference                           {med['sign'] * 1e6:10.1f} us  ({med['sign'] / node_s:.4%} of a node)",
        f"verify a reference                         {med['verify'] * 1e6:10.1f} us  ({med['verify'] / node_s:.4%} of a node)",
        f"sign + verify (what signing adds per node) {(med['sign'] + med['verify']) * 1e6:10.1f} us  "
        f"({(med['sign'] + med['verify']) / node_s:.4%} of a node; goal < 2%)",
        f"hot load, verified / unverified            {med['hot'] * 1e6:10.1f} / {med['hot_unsigned'] * 1e6:.1f} us",
        f"chunk + address, HMAC / sha256             {med['keyed'] * 1e3:10.2f} / {med['sha'] * 1e3:.2f} ms "
        f"(ratio {med['keyed'] / med['sha']:.3f}; delta {(med['keyed'] - med['sha']) / node_s:+.4%} of a node)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
