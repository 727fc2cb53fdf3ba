"""Prebuilt graphs on stock savers, async and PostgreSQL: the saver passed is the saver used, its serializer
untouched; a run is stored, resumed by a new graph object and time-travelled, to the reference greedy answer.

PostgreSQL runs on a throwaway cluster (tests/pgcluster.py), skipped with the reason where it cannot start.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from latent_graph.graphs import build_compact, build_hierarchical, build_sequential
from latent_graph.persist import HandleStore, MemoryBlobStore, acollect_blobs, is_ref

Q = {"questions": ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples?"]}
OPTS = dict(steps=2, max_new_tokens=6)
BUILDERS: dict[str, tuple[Any, list[str]]] = {  # the builder, and the nodes a run pauses after
    "compact": (build_compact, ["planner"]),
    "sequential": (build_sequential, ["planner"]),
    "hierarchical": (build_hierarchical, ["math_expert", "science_expert", "code_expert"]),
}


@pytest.fixture(scope="module")
def reference(llama) -> dict[str, list[str]]:
    """Each builder's answers without a checkpointer (handles held in memory)."""
    return {
        name: build(llama, handle_store=HandleStore.in_memory(), **OPTS).invoke(Q)["answers"]
        for name, (build, _) in BUILDERS.items()
    }


async def _call(graph: Any, method: str, *args: Any, aio: bool) -> Any:
    """``graph.a<method>(...)`` on an async saver, else the sync method in a worker thread."""
    if aio:
        return await getattr(graph, f"a{method}")(*args)
    return await asyncio.to_thread(getattr(graph, method), *args)


async def _history(graph: Any, config: dict[str, Any], aio: bool) -> list[Any]:
    if aio:
        return [s async for s in graph.aget_state_history(config)]
    return await asyncio.to_thread(lambda: list(graph.get_state_history(config)))


def _holds_refs(values: dict[str, Any]) -> bool:
    return any(is_ref(v) for v in [values.get("handle"), *(values.get("branches") or {}).values()])


async def store_resume_travel(
    model: Any, name: str, saver: BaseCheckpointSaver, blobs: Any, aio: bool
) -> dict[str, Any]:
    """Pause a run after its first agents, resume it and time-travel to the pause, each on a new graph object
    whose handle store holds nothing in memory (a fresh process's view): what it answers comes from the saver
    and the blobs."""
    build, pause = BUILDERS[name]
    serde = saver.serde
    config = {"configurable": {"thread_id": f"{name}-{'aio' if aio else 'sync'}"}}
    first = build(model, checkpointer=saver, handle_store=HandleStore(blobs), interrupt_after=pause, **OPTS)
    assert first.checkpointer is saver  # the object passed, not a copy or a wrapper
    await _call(first, "invoke", Q, config, aio=aio)
    paused = await _call(first, "get_state", config, aio=aio)
    assert paused.next and _holds_refs(paused.values) and not paused.values.get("answers")

    cold = HandleStore(blobs)
    resumed = await _call(build(model, checkpointer=saver, handle_store=cold, **OPTS), "invoke", None, config, aio=aio)
    history = await _history(first, config, aio)
    again = next(s for s in history if s.next == paused.next)  # the paused checkpoint, now in the past

    colder = HandleStore(blobs)
    travel = build(model, checkpointer=saver, handle_store=colder, **OPTS)
    travelled = await _call(travel, "invoke", None, again.config, aio=aio)
    forked = await _history(travel, config, aio)
    assert saver.serde is serde and travel.checkpointer is saver  # the serializer untouched
    return {
        "resumed": resumed["answers"],
        "travelled": travelled["answers"],
        "loads": (cold.loads, colder.loads),
        "checkpoints": (len(history), len(forked)),
    }


def _check(result: dict[str, Any], expected: list[str]) -> None:
    assert result["resumed"] == expected and result["travelled"] == expected
    assert min(result["loads"]) >= 1  # the paused handles were read back from the blobs
    assert result["checkpoints"][1] > result["checkpoints"][0]  # time travel forked new checkpoints


@pytest.mark.parametrize("name", list(BUILDERS))
def test_async_sqlite_saver_stores_resumes_and_time_travels(llama, reference, tmp_path, name):
    async def main() -> dict[str, Any]:
        blobs = MemoryBlobStore()
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as saver:
            result = await store_resume_travel(llama, name, saver, blobs, aio=True)
            n = len(blobs.keys())
            result["kept"] = await acollect_blobs(blobs, [saver], grace=0)  # every blob is referenced
            await saver.adelete_thread(f"{name}-aio")
            result["collected"] = (await acollect_blobs(blobs, [saver], grace=0), n, len(blobs.keys()))
            return result

    result = asyncio.run(main())
    _check(result, reference[name])
    assert result["kept"] == 0 and result["collected"] == (result["collected"][1], result["collected"][1], 0)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_postgres_saver_stores_resumes_and_time_travels(llama, reference, pg_url, name):
    from langgraph.checkpoint.postgres import PostgresSaver

    from latent_graph.persist.pg_blobs import PostgresBlobStore

    blobs = PostgresBlobStore(pg_url)
    with PostgresSaver.from_conn_string(pg_url) as saver:
        saver.setup()
        result = asyncio.run(store_resume_travel(llama, name, saver, blobs, aio=False))
    blobs.close()
    _check(result, reference[name])


def test_any_saver_is_passed_through(llama):
    """A saver of the user's own class is compiled in as given (the old builders refused it)."""
    from langgraph.checkpoint.memory import InMemorySaver

    class Audited(InMemorySaver):
        puts = 0

        def put(self, *args: Any, **kwargs: Any) -> Any:
            Audited.puts += 1
            return super().put(*args, **kwargs)

    saver = Audited()
    serde = saver.serde
    graph = build_sequential(llama, checkpointer=saver, handle_store=HandleStore(MemoryBlobStore()), **OPTS)
    graph.invoke(Q, {"configurable": {"thread_id": "t"}})
    assert graph.checkpointer is saver and saver.serde is serde and Audited.puts > 0
