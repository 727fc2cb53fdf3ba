"""langgraph-checkpoint-conformance against every saver set-up the docs recommend, plus handle-ref round trips.

The conformance suite drives a saver through its async API. Sync-only savers (``SqliteSaver``,
``PostgresSaver``) run it through :class:`SyncAsAsync`, which calls their
sync methods in a worker thread, so the sync code path is what is tested. PostgreSQL runs on a
throwaway cluster (tests/pgcluster.py) and is skipped, with the reason, where it cannot start.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from latent_graph.persist import HandleStore, MemoryBlobStore

TESTS = Path(__file__).resolve().parents[1]


class SyncAsAsync(BaseCheckpointSaver):
    """A sync saver's methods behind the async API (each call in a worker thread)."""

    def __init__(self, inner: BaseCheckpointSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.inner.get_next_version(current, channel)

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.inner.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.inner.put_writes, config, writes, task_id, task_path)

    async def aget_tuple(self, config):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.inner.get_tuple, config)

    async def alist(self, config, *, filter=None, before=None, limit=None) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
        items = await asyncio.to_thread(
            lambda: list(self.inner.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.inner.delete_thread, thread_id)


def _setups(pg: str | None) -> dict[str, Any]:
    async def memory():
        yield InMemorySaver()

    async def sqlite_sync():
        with tempfile.TemporaryDirectory() as d:
            conn = sqlite3.connect(str(Path(d) / "c.db"), check_same_thread=False)
            yield SyncAsAsync(SqliteSaver(conn))
            conn.close()

    async def sqlite_async():
        with tempfile.TemporaryDirectory() as d:
            async with AsyncSqliteSaver.from_conn_string(str(Path(d) / "c.db")) as saver:
                yield saver

    async def postgres_sync():
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(pg) as saver:
            saver.setup()
            yield SyncAsAsync(saver)
            _truncate_pg(saver)

    async def postgres_async():
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(pg) as saver:
            await saver.setup()
            yield saver
            await asyncio.to_thread(_truncate_pg_url, pg)

    out = {"InMemorySaver": memory, "SqliteSaver": sqlite_sync, "AsyncSqliteSaver": sqlite_async}
    if pg is not None:
        out.update({"PostgresSaver": postgres_sync, "AsyncPostgresSaver": postgres_async})
    return out


def _truncate_pg(saver: Any) -> None:
    with saver._cursor() as cur:  # noqa: SLF001 - test clean-up between suites
        cur.execute("TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes")


def _truncate_pg_url(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes")


def _report(name: str, factory: Any) -> dict[str, Any]:
    registered = checkpointer_test(name=name)(factory)
    report = asyncio.run(validate(registered))
    failures = {k: r.failures for k, r in report.results.items() if r.passed is False}
    return {
        "base": report.passed_all_base(),
        "failures": failures,
        "passed": sum(r.tests_passed for r in report.results.values()),
    }


@pytest.mark.parametrize("name", ["InMemorySaver", "SqliteSaver", "AsyncSqliteSaver"])
def test_conformance(name):
    r = _report(name, _setups(None)[name])
    assert r["failures"] == {} and r["base"] and r["passed"] >= 58


@pytest.mark.parametrize("name", ["PostgresSaver", "AsyncPostgresSaver"])
def test_conformance_postgres(name, pg_url):
    r = _report(name, _setups(pg_url)[name])
    assert r["failures"] == {} and r["base"] and r["passed"] >= 58


# ------------------------------------------------------------ handle references in the values
def _ref_values(llama) -> dict[str, Any]:
    store = HandleStore(MemoryBlobStore())
    ref = store.save(llama.think(None, ["a", "b"], 1))
    return {"handle": ref, "branches": {"x[0]": {**ref, "writer": "x:1"}}, "refs": [ref] * 50}


def _round_trip_sync(saver: BaseCheckpointSaver, values: dict[str, Any]) -> None:
    ckpt = empty_checkpoint()
    ckpt["channel_values"] = dict(values)
    ckpt["channel_versions"] = {k: saver.get_next_version(None, None) for k in values}
    cfg = saver.put({"configurable": {"thread_id": "r", "checkpoint_ns": ""}}, ckpt, {}, ckpt["channel_versions"])
    saver.put_writes(cfg, [("handle", values["handle"])], "task-1")
    back = saver.get_tuple(cfg)
    assert back.checkpoint["channel_values"] == values and back.pending_writes[0][2] == values["handle"]


async def _round_trip_async(saver: BaseCheckpointSaver, values: dict[str, Any]) -> None:
    ckpt = empty_checkpoint()
    ckpt["channel_values"] = dict(values)
    ckpt["channel_versions"] = {k: saver.get_next_version(None, None) for k in values}
    cfg = await saver.aput(
        {"configurable": {"thread_id": "r", "checkpoint_ns": ""}}, ckpt, {}, ckpt["channel_versions"]
    )
    await saver.aput_writes(cfg, [("handle", values["handle"])], "task-1")
    back = await saver.aget_tuple(cfg)
    assert back.checkpoint["channel_values"] == values and back.pending_writes[0][2] == values["handle"]


def test_handle_refs_round_trip_sync_and_async(llama, tmp_path):
    values = _ref_values(llama)
    _round_trip_sync(InMemorySaver(), values)
    _round_trip_sync(SqliteSaver(sqlite3.connect(str(tmp_path / "s.db"), check_same_thread=False)), values)
    asyncio.run(_round_trip_async(InMemorySaver(), values))

    async def aio() -> None:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "a.db")) as saver:
            await _round_trip_async(saver, values)

    asyncio.run(aio())


def test_postgres_end_to_end_with_resume_in_a_second_process(llama, pg_url, tmp_path):
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    values = _ref_values(llama)
    with PostgresSaver.from_conn_string(pg_url) as saver:
        saver.setup()
        _round_trip_sync(saver, values)

    async def aio() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_url) as saver:
            await _round_trip_async(saver, values)

    asyncio.run(aio())
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent), "LATENT_GRAPH_CACHE": str(tmp_path / "c")}

    def script(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(TESTS / "stock_savers_run.py"), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))

    assert '"next": ["b"]' in script("pause", pg_url, "pg-thread")
    import json

    r = json.loads(script("resume", pg_url, "pg-thread")[len("RESULT ") :])
    assert r["answers"] == r["reference"] and r["loads"] == 1  # agent a's handle, read from PostgresBlobStore
    from latent_graph.persist.pg_blobs import PostgresBlobStore

    blobs = PostgresBlobStore(pg_url)
    assert len(blobs.keys()) >= 3 and blobs.nbytes > 0  # the thread's tensors live in Postgres
    key = blobs.keys()[0]
    assert key in blobs and 0 <= blobs.age(key) < 600 and blobs.get(key)
    blobs.delete([key])  # the SQL SqliteBlobStore shares, run with %s on an autocommit connection
    assert key not in blobs and blobs.age(key) is None and blobs.get(key) is None
    blobs.close()
