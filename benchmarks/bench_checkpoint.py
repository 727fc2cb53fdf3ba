"""Checkpoint size of a 4-agent latent run: chunked handles vs the final handle.

What: planner -> critic -> refiner -> judger (``think`` x3 + ``decode``) as a
LangGraph ``StateGraph`` on the default model (SmolLM2-135M-Instruct), run with
InMemorySaver and SqliteSaver checkpointers built by
:mod:`latent_graph.persist.serializer`. The state holds the running handle and a dict
of every agent's handle, so each superstep stores several handles (channel
values, pending writes, and for SQLite the whole checkpoint again).

Why: LangGraph stores state at every superstep. Stored whole, each handle
re-stores the shared cache prefix; with content-addressed per-segment chunks
the prefix is stored once. Printed per checkpointer:

- ``stored``: bytes actually stored (checkpoint/blob/write payloads + chunks);
- ``final``: ``LatentHandle.nbytes`` of the judger's handle;
- ``ratio`` = stored / final (goal <= 1.2);
- ``naive``: the same graph with every handle stored whole (``LatentSerializer(None)``),
  and its ratio, for comparison. With ``--no-naive`` the naive run is skipped
  and the tensor bytes of every handle serialized (``handle_bytes_dumped``) are
  shown instead, a slight underestimate.

Usage::

    python benchmarks/bench_checkpoint.py [--steps 8] [--max-new-tokens 48] [--tiny] [--no-naive]
"""

from __future__ import annotations

import argparse
import operator
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from latent_graph import LocalLatentModel
from latent_graph.persist import (
    LatentSerializer,
    checkpoint_nbytes,
    memory_checkpointer,
    sqlite_checkpointer,
)

QUESTION = "Alice has 3 apples and buys 5 more. Then she gives 2 to Bob. How many apples does she have?"
AGENTS = (
    ("planner", "You are the planner. Plan how to solve the question step by step."),
    ("critic", "You are the critic. Check the plan above for mistakes."),
    ("refiner", "You are the refiner. Give an improved plan using the critique."),
)
JUDGE = "You are the judger. Using the reasoning above, answer with the final number in \\boxed{}."


class State(TypedDict, total=False):
    question: str
    handle: Any
    branches: Annotated[dict[str, Any], operator.or_]
    answer: str


def build_graph(model: LocalLatentModel, steps: int, max_new_tokens: int) -> StateGraph:
    """planner -> critic -> refiner -> judger, each extending the previous handle."""

    def agent(name: str, role: str) -> Callable[[State], dict]:
        def node(state: State) -> dict:
            prompt = f"{role}\n\nQuestion: {state['question']}"
            h = model.think(state.get("handle"), prompt, steps=steps, agent=name)
            return {"handle": h, "branches": {name: h}}

        return node

    def judger(state: State) -> dict:
        d = model.decode(state["handle"], f"{JUDGE}\n\nQuestion: {state['question']}",
                         max_new_tokens=max_new_tokens, agent="judger")
        return {"handle": d.handle, "answer": d.text}

    g = StateGraph(State)
    prev = START
    for name, role in AGENTS:
        g.add_node(name, agent(name, role))
        g.add_edge(prev, name)
        prev = name
    g.add_node("judger", judger)
    g.add_edge(prev, "judger")
    g.add_edge("judger", END)
    return g


def naive_memory() -> InMemorySaver:
    return InMemorySaver(serde=LatentSerializer(None))


def naive_sqlite(path: Path) -> SqliteSaver:
    saver = sqlite_checkpointer(path)
    saver.serde = LatentSerializer(None)
    return saver


def run(graph: StateGraph, saver: Any) -> tuple[dict, int, float]:
    t0 = time.perf_counter()
    out = graph.compile(checkpointer=saver).invoke({"question": QUESTION}, {"configurable": {"thread_id": "bench"}})
    return out, checkpoint_nbytes(saver), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="latent steps per thinking agent")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--tiny", action="store_true", help="use a tiny random model from tests/conftest.py")
    ap.add_argument("--no-naive", action="store_true", help="estimate the naive cost instead of running it")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import make_model

        model = make_model("llama")
    else:
        model = LocalLatentModel.default()
    print(f"model: {model.name} (loaded in {time.perf_counter() - t0:.1f} s), steps={args.steps}, "
          f"max_new_tokens={args.max_new_tokens}")
    graph = build_graph(model, args.steps, args.max_new_tokens)

    tmp = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    rows = [
        ("InMemorySaver", memory_checkpointer(), naive_memory()),
        ("SqliteSaver", sqlite_checkpointer(tmp / "chunked.sqlite"), naive_sqlite(tmp / "naive.sqlite")),
    ]
    print(f"{'checkpointer':<14} {'stored':>12} {'final':>12} {'ratio':>6} {'naive':>12} {'naive ratio':>11} "
          f"{'handles':>7} {'time s':>6}")
    answers = set()
    for name, saver, naive in rows:
        out, stored, secs = run(graph, saver)
        if args.no_naive:
            naive_out, naive_stored = out, saver.serde.handle_bytes_dumped
        else:
            naive_out, naive_stored, _ = run(graph, naive)
        final = out["handle"].nbytes
        answers.update({out["answer"], naive_out["answer"]})
        print(f"{name:<14} {stored:>12,} {final:>12,} {stored / final:>6.3f} {naive_stored:>12,} "
              f"{naive_stored / final:>11.2f} {saver.serde.handles_dumped:>7} {secs:>6.1f}")
        for s in (saver, naive):
            if hasattr(s, "conn"):
                s.conn.close()
    print(f"final handle: {out['handle']!r}")
    print(f"answer{'s differ!' if len(answers) > 1 else ''}: {sorted(answers)!r}")
    return 0 if len(answers) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
