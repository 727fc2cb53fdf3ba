"""Example 3 — stop a run after one agent, persist it to SQLite, resume it later.

Graph state holds a small JSON reference to the latent handle (a KV cache); LangGraph's
stock ``SqliteSaver`` stores it, and the tensors go to a :class:`~latent_graph.persist.SqliteBlobStore`
in the same file (safetensors chunks, no pickle). The second half opens a *new* saver,
blob store and graph on the same file — as a new process would — and resumes from
where the first stopped.

Run: ``python examples/resume_checkpoint.py``.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from latent_graph import LocalLatentModel
from latent_graph.graphs import build_sequential
from latent_graph.persist import HandleStore, SqliteBlobStore


def main(
    model: LocalLatentModel | None = None, steps: int = 4, max_new_tokens: int = 64, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Run the planner only, then resume critic → refiner → judger from the SQLite file."""
    model = model or LocalLatentModel.default()
    folder = Path(out_dir or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "checkpoints.sqlite"
    config = {"configurable": {"thread_id": "example-1"}}
    opts = dict(steps=steps, max_new_tokens=max_new_tokens)

    saver = SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))
    blobs = SqliteBlobStore(db)
    graph = build_sequential(model, checkpointer=saver, handle_store=HandleStore(blobs), **opts)
    graph.invoke({"questions": ["What is 12 times 7?"]}, config, interrupt_after=["planner"])
    paused = graph.get_state(config)
    print(f"paused after planner; next: {paused.next}; handle: {paused.values['handle']['summary']}")
    saver.conn.close()
    blobs.close()

    # a fresh saver, blob store and graph: the state and the tensors come from the file
    saver = SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))
    blobs = SqliteBlobStore(db)
    graph = build_sequential(model, checkpointer=saver, handle_store=HandleStore(blobs), **opts)
    out = graph.invoke(None, config)  # None = resume the thread
    handle = HandleStore(blobs).load(out["handle"], model)  # the tensors behind the reference
    print(f"final handle: {handle.seq_len} columns")
    saver.conn.close()
    blobs.close()
    print("trace (planner from before the pause):", [r["node"] for r in out["trace"]])
    print("answer:", out["answers"][0])
    return {"paused_next": list(paused.next), "out": out, "db": db}


if __name__ == "__main__":
    main()
