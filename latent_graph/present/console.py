"""The terminal face of a run: live per-node progress on stderr and the answer on stdout (:func:`execute`).

Fed from LangGraph's stream modes by :func:`latent_graph.present.console.execute`:
``custom`` (latent-step events), ``messages`` (tokens of decoding nodes) and
``updates`` (a node finished). On a terminal one status line is rewritten in
place; otherwise (a pipe, a log file) one line is written per finished node.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from langgraph.graph import END, START

from latent_graph.present.edges import answer_nodes


class Progress:
    """Progress lines for one run.

    Args:
        total: Nodes in the graph (a loop or Send fan-out may run more tasks than this).
        enabled: False makes every method a no-op.
        stream: Where lines go (stderr).
    """

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.live = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.tokens: dict[str, int] = {}
        self.steps: dict[str, tuple[int, int]] = {}
        self.shown = False

    def _status(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r\x1b[2K{text}")
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        """Erase the live status line (before the answer is printed on stdout)."""
        if self.live and self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False

    def latent_step(self, event: dict[str, Any]) -> None:
        """A ``latent_step`` custom event: ``node``, ``step`` (0-based), ``total``."""
        if not self.enabled:
            return
        node, k, n = str(event.get("node")), int(event.get("step", 0)) + 1, int(event.get("total") or 0)
        self.steps[node] = (k, n)
        self._status(f"{node}: latent step {k}/{n or '?'}")

    def token(self, node: str) -> None:
        """One streamed token of ``node``."""
        if not self.enabled:
            return
        self.tokens[node] = self.tokens.get(node, 0) + 1
        self._status(f"{node}: writing, {self.tokens[node]} tokens")

    def node_done(self, node: str) -> None:
        """``node`` finished (an ``updates`` chunk)."""
        if not self.enabled:
            return
        self.done += 1
        what = []
        if node in self.steps:
            what.append(f"{self.steps[node][0]} latent steps")
        if node in self.tokens:
            what.append(f"{self.tokens[node]} tokens")
        detail = f" ({', '.join(what)})" if what else ""
        self.clear()
        self.stream.write(f"[{self.done}/{self.total} nodes] {node} done{detail}\n")
        self.stream.flush()


def execute(
    graph: Any,
    inputs: dict[str, Any],
    *,
    stream_tokens: bool = False,
    progress: bool = False,
    answering: set[str] | None = None,
) -> dict[str, Any]:
    """Run ``graph`` on ``inputs``: live per-node progress on stderr, answer tokens streamed to stdout.

    Args:
        answering: The graph's answer nodes (whose tokens are streamed), read once when the graph was
            built (:func:`latent_graph.present.edges.answer_nodes`); None reads them here.

    Returns:
        The final graph output (``answers``, ``transcript``, ``trace``).
    """
    prog = Progress(sum(1 for n in graph.get_graph().nodes if n not in (START, END)), enabled=progress)
    answering = answer_nodes(graph) if answering is None else answering
    out: dict[str, Any] = {}
    streamed = False
    modes = (
        ["updates", "values"] + (["messages"] if stream_tokens or progress else []) + (["custom"] if progress else [])
    )
    try:
        for mode, chunk in graph.stream(inputs, stream_mode=modes):
            if mode == "updates":
                for node in chunk or {}:
                    if not str(node).startswith("__"):
                        prog.node_done(str(node))
            elif mode == "custom":
                if isinstance(chunk, dict) and chunk.get("event") == "latent_step":
                    prog.latent_step(chunk)
            elif mode == "messages":
                msg, meta = chunk
                if type(msg).__name__ != "AIMessageChunk" or not msg.content:
                    continue
                node = str(meta.get("langgraph_node"))
                if stream_tokens and node in answering:
                    if not streamed:
                        prog.clear()
                        prog.enabled = False  # the answer owns the terminal now
                        streamed = True
                    print(msg.content, end="", flush=True)
                else:
                    prog.token(node)
            else:
                out = chunk
    finally:
        prog.clear()
        if streamed:
            print()
    return out


def print_answers(questions: list[str], answers: list[str], *, quiet: bool = False) -> None:
    """The one place answers are printed when they were not streamed: ``Q:``/``A:`` pairs, or bare answers."""
    for q, a in zip(questions, answers):
        print(a if quiet else f"Q: {q}\nA: {a}\n")
