"""Which package modules a default ``latent-graph run`` enters, and which calls go up a layer.

    python benchmarks/run_path.py "What is 2 plus 3?"          # the default model, the default graph

A ``sys.setprofile`` hook records every Python call whose caller and callee are both in
``latent_graph``: the modules entered (a function of theirs ran) from the moment the CLI
starts the run (``cmd_run``) until it returns, and each call from a lower layer into a
higher one. Layers, low to high: engine, persist, langchain, state, nodes, graphs, present, cli.
A call going up through a declared Protocol (a callback the caller received as an argument)
is listed with its Protocol name. Module *imports* are not calls and are not counted.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

LAYERS = ["errors", "engine", "persist", "langchain", "state", "nodes", "graphs", "present", "cli"]


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def main(argv: list[str]) -> int:
    from latent_graph import cli

    entered: Counter[str] = Counter()
    in_run: Counter[str] = Counter()  # entered while the graph runs: question in -> answer printed
    up: Counter[tuple[str, str, str]] = Counter()
    active = [False]

    def hook(frame, event, arg):  # noqa: ANN001
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        if not callee.startswith("latent_graph") or not frame.f_code.co_filename.endswith(".py"):
            return  # generated code (a dataclass's __init__) is not a module's own code
        if frame.f_code.co_name == "cmd_run" and callee == "latent_graph.cli":
            active[0] = True
        if not active[0]:
            return
        entered[callee] += 1
        if frame.f_code.co_name == "execute" and callee == "latent_graph.present.console":
            active.append(True)
        if len(active) > 1:
            in_run[callee] += 1
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if caller.startswith("latent_graph") and caller != callee and layer(callee) > layer(caller) >= 0:
            up[(caller, callee, frame.f_code.co_name)] += 1

    sys.setprofile(hook)
    threading.setprofile(hook)  # LangGraph runs nodes on worker threads
    try:
        rc = cli.main(["run", *argv])
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    print(f"\nmodules entered by `run` (load + build + run): {len(entered)}; while the graph runs "
          f"(question in -> answer printed): {len(in_run)}", file=sys.stderr)
    for m, n in sorted(entered.items(), key=lambda kv: (layer(kv[0]), kv[0])):
        print(f"  {m:45s} {n:7d} calls{'' if m in in_run else '   (load/build only)'}", file=sys.stderr)
    print(f"calls going up a layer: {sum(up.values())}", file=sys.stderr)
    for (a, b, f), n in sorted(up.items()):
        print(f"  {a} -> {b}.{f}  x{n}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["What is 2 plus 3?"]))
