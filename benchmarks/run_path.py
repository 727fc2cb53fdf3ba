"""Which package modules a default ``latent-graph run`` enters, and which calls go up a layer.

    python benchmarks/run_path.py "What is 2 plus 3?"          # the default model, the default graph

A ``sys.setprofile`` hook records every Python call whose caller and callee are both in
``latent_graph``: the modules entered (a function of theirs ran) from the moment the CLI
starts the run (``cmd_run``) until it returns, the modules entered while the graph runs
(``present.console.execute``: question in -> answer printed), and each call from a lower
layer into a higher one. Layers, low to high: errors, engine, persist, langchain, state, nodes,
graphs, present, cli. A call going up is *declared* when the callee is the value of a parameter
of the calling function annotated with a ``Protocol`` (a callback it received, e.g. ``on_step:
StepCallback``); it is listed with that Protocol's name, any other upward call as UNDECLARED.
Module *imports* are not calls and are not counted. ``tests/architecture/test_run_path.py`` runs
:func:`trace` on a tiny model and checks the bound.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LAYERS = ["errors", "engine", "persist", "langchain", "state", "nodes", "graphs", "present", "cli"]
UNDECLARED = "UNDECLARED"


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


@dataclass
class PathTrace:
    """What one traced run entered."""

    entered: Counter[str] = field(default_factory=Counter)
    """Calls per module, load + build + run."""
    in_run: Counter[str] = field(default_factory=Counter)
    """Calls per module while the graph runs (question in -> answer printed)."""
    up: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """(caller module, callee module, callee function, Protocol name or UNDECLARED) of each call going up a layer."""


def _function_of(frame: Any) -> Any:
    """The function object whose code runs in ``frame`` (module functions and class methods, decorators unwrapped)."""
    code = frame.f_code
    for obj in list(frame.f_globals.values()):
        for cand in [obj, *(vars(obj).values() if isinstance(obj, type) else ())]:
            f = getattr(cand, "__func__", cand)
            while f is not None and getattr(f, "__code__", None) is not code and hasattr(f, "__wrapped__"):
                f = f.__wrapped__
            if getattr(f, "__code__", None) is code:
                return f
    return None


def _protocol(caller: Any, callee_code: Any) -> str:
    """The Protocol the caller received the callee through (a parameter annotated with it), else UNDECLARED."""
    func = _function_of(caller)
    notes = getattr(func, "__annotations__", {}) if func is not None else {}
    for name, value in caller.f_locals.items():
        if getattr(getattr(value, "__func__", value), "__code__", None) is not callee_code or name not in notes:
            continue
        note = notes[name]
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", note if isinstance(note, str) else repr(note)):
            t = func.__globals__.get(word)
            if isinstance(t, type) and getattr(t, "_is_protocol", False) and t.__module__.startswith("latent_graph"):
                return t.__name__
    return UNDECLARED


def trace(run: Callable[[], Any]) -> tuple[Any, PathTrace]:
    """Call ``run()`` (something that calls ``latent_graph.cli.main(["run", ...])``) under the hook."""
    out = PathTrace()
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
        out.entered[callee] += 1
        if frame.f_code.co_name == "execute" and callee == "latent_graph.present.console":
            active.append(True)
        if len(active) > 1:
            out.in_run[callee] += 1
        back = frame.f_back
        caller = back.f_globals.get("__name__", "") if back else ""
        if caller.startswith("latent_graph") and caller != callee and layer(callee) > layer(caller) >= 0:
            out.up[(caller, callee, frame.f_code.co_name, _protocol(back, frame.f_code))] += 1

    sys.setprofile(hook)
    threading.setprofile(hook)  # LangGraph runs nodes on worker threads
    try:
        result = run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return result, out


def main(argv: list[str]) -> int:
    from latent_graph import cli

    rc, t = trace(lambda: cli.main(["run", *argv]))
    print(
        f"\nmodules entered by `run` (load + build + run): {len(t.entered)}; while the graph runs "
        f"(question in -> answer printed): {len(t.in_run)}",
        file=sys.stderr,
    )
    for m, n in sorted(t.entered.items(), key=lambda kv: (layer(kv[0]), kv[0])):
        print(f"  {m:45s} {n:7d} calls{'' if m in t.in_run else '   (load/build only)'}", file=sys.stderr)
    print(f"calls going up a layer: {sum(t.up.values())}", file=sys.stderr)
    for (a, b, f, p), n in sorted(t.up.items()):
        print(f"  {a} -> {b}.{f}  x{n}  via {p}", file=sys.stderr)
    return int(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["What is 2 plus 3?"]))
