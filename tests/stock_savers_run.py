"""Runs latent graphs on LangGraph's stock savers with no project helper; prints one JSON line of results.

Used by tests/persist/test_state_refs.py and tests/persist/test_conformance.py in fresh processes (``LANGGRAPH_STRICT_MSGPACK`` is read at import,
and a resume must happen in another process). Usage::

    python tests/stock_savers_run.py all <tmpdir>          # the four stock set-ups
    python tests/stock_savers_run.py pause <db> <thread>   # interrupt_after the first agent (db: a file or postgresql:// URL)
    python tests/stock_savers_run.py resume <db> <thread>  # resume it here, plus a reference run
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402
from langgraph.func import entrypoint, task  # noqa: E402

from latent_graph import DecodeOptions  # noqa: E402
from latent_graph.nodes import JudgerNode, LatentAgentNode  # noqa: E402
from latent_graph.persist import HandleStore, default_handle_store, is_ref  # noqa: E402

from chains import three_agent_chain  # noqa: E402
from conftest import make_model  # noqa: E402

MODEL = make_model("llama")
Q = {"questions": ["What is 2 plus 3?"]}


def build(saver=None, interrupt=None, store=None):
    return three_agent_chain(MODEL, store, saver, interrupt)


def cfg(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def time_travel(graph, thread: str) -> dict:
    """Replay from the checkpoint after agent ``a``: the same greedy answer, and the history holds refs."""
    history = list(graph.get_state_history(cfg(thread)))
    after_a = next(s for s in history if s.next == ("b",))
    replay = graph.invoke(None, after_a.config)
    return {
        "history": len(history),
        "history_refs": sum(is_ref(s.values.get("handle")) for s in history),
        "replayed": replay["answers"],
    }


def check_memory() -> dict:
    graph = build(InMemorySaver())
    out = graph.invoke(Q, cfg("m"))
    return {
        "answers": out["answers"],
        "ref": is_ref(graph.get_state(cfg("m")).values["handle"]),
        **time_travel(graph, "m"),
    }


def check_sqlite(path: Path) -> dict:
    with sqlite3.connect(str(path), check_same_thread=False) as conn:
        out = build(SqliteSaver(conn)).invoke(Q, cfg("s"))
    conn.close()
    graph = build(SqliteSaver(sqlite3.connect(str(path), check_same_thread=False)))  # reopened on a new connection
    state = graph.get_state(cfg("s")).values
    handle = default_handle_store().load(state["handle"], MODEL)
    return {"answers": out["answers"], "reopened_columns": handle.seq_len, **time_travel(graph, "s")}


async def _async_sqlite(path: Path) -> dict:
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        graph = build(saver)
        out = await graph.ainvoke(Q, cfg("a"))
        state = await graph.aget_state(cfg("a"))
        return {"answers": out["answers"], "ref": is_ref(state.values["handle"])}


def check_functional() -> dict:
    planner = LatentAgentNode(model=MODEL, name="a", instruction="Plan.", steps=2)
    expert = LatentAgentNode(model=MODEL, name="w", instruction="Check.", steps=1, branch=True)
    judge = JudgerNode(model=MODEL, name="j", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=4))

    @task
    def plan(questions: list[str]) -> dict:
        return planner({"questions": questions})["handle"]  # a handle reference: plain JSON

    @task
    def check(questions: list[str], handle: dict) -> dict:
        return expert({"questions": questions, "handle": handle})["branches"]  # called without config

    @entrypoint(checkpointer=InMemorySaver())
    def run(questions: list[str]) -> dict:
        ref = plan(questions).result()
        branches: dict = {}
        for future in [check(questions, ref) for _ in range(3)]:
            branches.update(future.result())
        out = judge({"questions": questions, "branches": branches})
        return {"answers": out["answers"], "handle": ref, "keys": sorted(branches)}

    out = run.invoke(Q["questions"], cfg("f"))
    return {"answers": out["answers"], "ref": is_ref(out["handle"]), "keys": out["keys"]}


def saver_for(where: str):
    """A stock SqliteSaver on a file, or a PostgresSaver for a ``postgresql://`` URL."""
    if where.startswith("postgresql://"):
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver

        saver = PostgresSaver(
            psycopg.connect(where, autocommit=True, prepare_threshold=0, row_factory=psycopg.rows.dict_row)
        )
        saver.setup()
        return saver
    return SqliteSaver(sqlite3.connect(where, check_same_thread=False))


def store_for(where: str) -> HandleStore:
    """Blobs beside the checkpoints: a PostgresBlobStore for a URL, else the default folder store."""
    if where.startswith("postgresql://"):
        from latent_graph.persist.pg_blobs import PostgresBlobStore

        return HandleStore(PostgresBlobStore(where))
    return default_handle_store()


def main() -> None:
    mode = sys.argv[1]
    if mode == "all":
        tmp = Path(sys.argv[2])
        result = {
            "memory": check_memory(),
            "sqlite": check_sqlite(tmp / "s.db"),
            "async_sqlite": asyncio.run(_async_sqlite(tmp / "a.db")),
            "functional": check_functional(),
        }
    elif mode == "pause":
        graph = build(saver_for(sys.argv[2]), interrupt=["a"], store=store_for(sys.argv[2]))
        graph.invoke(Q, cfg(sys.argv[3]))
        result = {"next": list(graph.get_state(cfg(sys.argv[3])).next)}
    else:
        store = store_for(sys.argv[2])
        graph = build(saver_for(sys.argv[2]), interrupt=["a"], store=store)
        resumed = graph.invoke(None, cfg(sys.argv[3]))
        loads = store.loads
        reference = build().invoke(Q)
        result = {
            "answers": resumed["answers"],
            "reference": reference["answers"],
            "loads": loads,
            "columns": resumed["handle"]["columns"],
        }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
