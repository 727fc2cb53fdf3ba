"""Issue 32 item 0: a randomized collection race on every store loses no blob a live checkpoint names.

Writers, a refresher, a deleter (``delete_thread``), a verifier and the collector run 200 rounds each
(tests/gc_harness.py), in threads (``InMemorySaver``) and in processes (``SqliteSaver`` in a file, or
``PostgresSaver``), on the memory, folder, SQLite and PostgreSQL blob stores. The harness itself is shown
to catch losses: the two-step collection issue 32 measured (ages checked while scanning, deleted later)
loses blobs in the same race.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gc_harness import race, two_step_collect
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph.persist import MemoryBlobStore

ROUNDS = 200


@pytest.fixture
def interleaved() -> Iterator[None]:
    """Threads switch every 100 µs, so roles run inside each other's steps, not only between them."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(switch)


def spec(kind: str, processes: bool, tmp_path: Path, request: Any) -> tuple[Any, ...]:
    """(store kind, where, saver kind, where): threads share an InMemorySaver, processes a SQL saver."""
    if kind == "postgres":
        url = request.getfixturevalue("pg_url")
        from latent_graph.persist.pg_blobs import PostgresBlobStore

        store = PostgresBlobStore(url)
        store.delete(store.keys())  # the cluster is shared by the module's tests
        store.close()
        saver: tuple[Any, ...] = ("postgres", url) if processes else ("memory", InMemorySaver())
        if processes:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:  # a fresh saver per test
                for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute("DROP TABLE IF EXISTS checkpoint_migrations")
        return ("postgres", url, *saver)
    where = {"memory": MemoryBlobStore(), "folder": tmp_path / "blobs", "sqlite": str(tmp_path / "blobs.db")}[kind]
    return (kind, where, *(("sqlite", str(tmp_path / "saver.db")) if processes else ("memory", InMemorySaver())))


def check(result: dict[str, Any]) -> None:
    assert not result["errors"], result["errors"][0]
    assert not result["losses"], f"{len(result['losses'])} live blobs lost: {result['losses'][:5]}"
    assert result["excused"] < ROUNDS  # writers mostly kept their lease; else the race tested little
    assert result["checkpoints"] > 0


@pytest.mark.parametrize("kind", ["memory", "folder", "sqlite", "postgres"])
def test_threads_lose_no_live_blob(kind: str, tmp_path: Path, request: Any, interleaved: None) -> None:
    check(race(spec(kind, False, tmp_path, request), processes=False, rounds=ROUNDS))


@pytest.mark.parametrize("kind", ["folder", "sqlite", "postgres"])
def test_processes_lose_no_live_blob(kind: str, tmp_path: Path, request: Any) -> None:
    check(race(spec(kind, True, tmp_path, request), processes=True, rounds=ROUNDS))


def test_the_race_catches_a_two_step_collection(tmp_path: Path, interleaved: None) -> None:
    """The harness is not blind: the collection that checks ages before it deletes loses live blobs in it."""
    result = race(spec("folder", False, tmp_path, None), processes=False, rounds=ROUNDS, collect=two_step_collect)
    assert not result["errors"], result["errors"][0]
    assert result["losses"]


pytestmark = pytest.mark.reliability("fault")  # counted in the reliability summary (tests/conftest.py)
