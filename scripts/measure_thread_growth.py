"""Issue 21: checkpoint bytes of 30 runs on one reused thread (tiny model), and the 10^4-question cap.

    PYTHONPATH=<tree> python scripts/measure_thread_growth.py [--cap]

``--cap`` also invokes a graph with 10^4 questions (only on a tree that has the cap: the
old code runs the whole batch). Run it from outside the worktree.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

import latent_graph  # noqa: E402
from latent_graph.graphs import build_sequential  # noqa: E402
from latent_graph.persist import HandleStore, MemoryBlobStore, checkpoint_nbytes  # noqa: E402

from conftest import make_model  # noqa: E402

saver = InMemorySaver()
graph = build_sequential(
    make_model("llama"), steps=1, max_new_tokens=2, checkpointer=saver, handle_store=HandleStore(MemoryBlobStore())
)
config = {"configurable": {"thread_id": "reused"}}
sizes = []
for _ in range(30):
    graph.invoke({"questions": ["What is 2+2?"]}, config)
    sizes.append(checkpoint_nbytes(saver))
print(
    os.path.dirname(latent_graph.__file__),
    f"run 1 {sizes[0]} B, run 10 {sizes[9]} B, run 30 {sizes[-1]} B; "
    f"growth of run 2 {sizes[1] - sizes[0]} B, of run 30 {sizes[-1] - sizes[-2]} B",
)
if "--cap" in sys.argv:
    t0 = time.perf_counter()
    try:
        build_sequential(make_model("llama"), steps=1, max_new_tokens=2).invoke(
            {"questions": ["What is 2+2?"] * 10_000}
        )
    except Exception as exc:
        print(
            f"10^4 questions: {type(exc).__name__} after {time.perf_counter() - t0:.2f} s (load {os.getloadavg()[0]:.1f})"
        )
