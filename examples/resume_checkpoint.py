"""Example 3 — stop a run after one agent, persist it to SQLite, resume it later.

The latent handle (a KV cache) is in graph state; :func:`latent_graph.persist.serializer.sqlite_checkpointer`
stores it safely (safetensors chunks, no pickle). The second half opens a *new*
checkpointer and graph on the same file — as a new process would — and resumes
from where the first stopped.

Run: ``python examples/resume_checkpoint.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from latent_graph import LocalLatentModel
from latent_graph.persist import sqlite_checkpointer
from latent_graph.graphs import build_sequential


def main(model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64,
         out_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the planner only, then resume critic → refiner → judger from the SQLite file."""
    model = model or LocalLatentModel.default()
    folder = Path(out_dir or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "checkpoints.sqlite"
    config = {"configurable": {"thread_id": "example-1"}}
    opts = dict(steps=steps, max_new_tokens=max_new_tokens)

    saver = sqlite_checkpointer(db)
    graph = build_sequential(model, checkpointer=saver, **opts)
    graph.invoke({"questions": ["What is 12 times 7?"]}, config, interrupt_after=["planner"])
    paused = graph.get_state(config)
    print(f"paused after planner; next: {paused.next}; handle columns: {paused.values['handle'].seq_len}")
    saver.conn.close()

    saver = sqlite_checkpointer(db)  # a fresh saver (and graph): the state comes from the file
    graph = build_sequential(model, checkpointer=saver, **opts)
    out = graph.invoke(None, config)  # None = resume the thread
    saver.conn.close()
    print("trace (planner from before the pause):", [r["node"] for r in out["trace"]])
    print("answer:", out["answers"][0])
    return {"paused_next": list(paused.next), "out": out, "db": db}


if __name__ == "__main__":
    main()
