"""Tell a finished run from one to resume (after a crash, a kill -9 or an interrupt).

``graph.get_state(config).next`` is not enough: when a process dies after the last
node's writes were saved but before the checkpoint that applies them, ``next`` is
``()`` although the run is unfinished (``graph.invoke(None, config)`` does finish it).
The thread's ``turn`` tells for sure: every run starts with an ``input`` checkpoint,
and the answer node ends the run by adding 1 to ``turn`` (see
:mod:`latent_graph.state.threads`). A run is finished when the newest checkpoint's
``turn`` is past the turn held by the newest ``input`` checkpoint.

Works for graphs whose answer node ends the turn (every prebuilt graph, any graph
built with :class:`~latent_graph.nodes.JudgerNode`). Reads the thread's history back
to its newest ``input`` checkpoint (the checkpoints of one run).
"""

from __future__ import annotations

from typing import Any, Literal

RunStatus = Literal["none", "finished", "unfinished"]


def _turn(snapshot: Any) -> int:
    return int((getattr(snapshot, "values", None) or {}).get("turn") or 0)


def run_status(graph: Any, config: dict[str, Any]) -> RunStatus:
    """``"none"`` (no run on this thread), ``"finished"``, or ``"unfinished"`` (resume with ``graph.invoke(None, config)``).

    Args:
        graph: A compiled graph with a checkpointer.
        config: ``{"configurable": {"thread_id": ...}}`` of the thread.
    """
    latest = None
    for snap in graph.get_state_history(config):  # newest first
        if latest is None:
            latest = snap
            if snap.next:  # interrupted, or crashed with a task still to run
                return "unfinished"
        if (snap.metadata or {}).get("source") == "input":
            return "finished" if _turn(latest) > _turn(snap) else "unfinished"
    return "none" if latest is None else "finished"  # no input checkpoint left (pruned): trust ``next``
