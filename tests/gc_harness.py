"""A randomized garbage-collection race: writers, refreshers, deleters, a verifier and the collector on one store.

Shared by tests/persist/test_gc_races.py and test_gc_random.py. Every role runs ``rounds`` rounds in its own
thread or (``fork``) process on one blob store and one saver:

- writers put blobs (new ones, old shared ones from the seeded pool, their own earlier ones: every ``put`` of a
  present blob refreshes it) and then commit a checkpoint naming them, then check that each is still there;
- a refresher re-puts old pool blobs and checks each is readable right after;
- a deleter runs ``delete_thread`` (which collects) on a random thread;
- the collector runs the collection back to back;
- a verifier reads a random thread's checkpoints and checks the blobs they name.

A blob missing while a checkpoint naming it exists (read before and after) is a loss. A writer slower than the
lease (``grace``: its commit more than that after its ``put``) is outside the contract: such checkpoints are counted
as ``excused``, not as losses. At the end one more collection runs and every remaining checkpoint is checked.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph.persist import FolderBlobStore, MemoryBlobStore, SqliteBlobStore, collect_blobs, delete_thread
from latent_graph.persist.gc import referenced_blobs

THREADS = [f"t{i}" for i in range(6)]
POOL = 256  # old shared blobs, seeded before the roles start


def blob(tag: str) -> tuple[str, bytes]:
    data = f"blob {tag}".encode()
    return hashlib.sha256(data).hexdigest(), data


def backdate(store: Any, keys: list[str], age: float) -> None:
    """Make ``keys`` look last written ``age`` seconds ago (the store's own clock field)."""
    then = time.time() - age
    if isinstance(store, MemoryBlobStore):
        store._times.update(dict.fromkeys(keys, then))
    elif isinstance(store, FolderBlobStore):
        for key in keys:
            os.utime(store.root / key[:2] / key, (then, then))
    else:
        with store.lock:
            for key in keys:
                store._run("UPDATE latent_blobs SET written = ? WHERE key = ?", (then, key))
            if not store.autocommit:
                store.conn.commit()


def put_old(store: Any, n: int, first: int = 0, age: float = 3600.0) -> dict[str, bytes]:
    """``n`` blobs last written ``age`` seconds ago (garbage to a collection with a shorter grace)."""
    blobs = dict(blob(str(i)) for i in range(first, first + n))
    for key, data in blobs.items():
        store.put(key, data)
    backdate(store, list(blobs), age)
    assert all(store.age(key) > age / 2 for key in blobs)
    return blobs


def open_store(kind: str, where: Any) -> Any:
    if kind == "memory":
        return where  # the object itself (threads only)
    if kind == "folder":
        return FolderBlobStore(where)
    if kind == "sqlite":
        return SqliteBlobStore(where)
    from latent_graph.persist.pg_blobs import PostgresBlobStore

    return PostgresBlobStore(where)


def open_saver(kind: str, where: Any) -> Any:
    if kind == "memory":
        return where
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        return SqliteSaver(sqlite3.connect(where, check_same_thread=False, timeout=60))
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    return PostgresSaver(psycopg.connect(where, autocommit=True, prepare_threshold=0, row_factory=dict_row))


def close(obj: Any) -> None:
    conn = getattr(obj, "conn", None)
    if conn is not None and not isinstance(obj, InMemorySaver):
        conn.close()


def keys_of(tup: Any) -> list[str]:
    ref = (tup.checkpoint.get("channel_values") or {}).get("handle") or {}
    return [ref["digest"], *ref["chunks"]] if ref else []


Collect = Callable[[Any, list[Any], float], Any]


def gc_collect(store: Any, savers: list[Any], grace: float) -> Any:
    return collect_blobs(store, savers, grace=grace)


def two_step_collect(store: Any, savers: list[Any], grace: float) -> Any:
    """The collection issue 32 measured losing blobs: ages checked while scanning, the list deleted afterwards."""
    live = referenced_blobs(savers)
    old = [key for key in store.keys() if key not in live and (store.age(key) or 0.0) >= grace]
    time.sleep(0.02)  # the scan of a store of thousands of blobs takes this long and more
    return store.delete(old)


def role(name: str, rounds: int, seed: int, store: Any, saver: Any, grace: float, collect: Collect) -> dict[str, Any]:
    """Run one role; what it saw: ``losses`` (checkpoint id, key, role), ``excused`` checkpoint ids, ``ops``."""
    rng, losses, excused = random.Random(seed), [], []
    pool = dict(blob(str(i)) for i in range(POOL))
    own: dict[str, bytes] = {}

    def still_there(config: dict[str, Any]) -> bool:
        return saver.get_tuple(config) is not None

    for r in range(rounds):
        if name.startswith("writer"):
            tid = rng.choice(THREADS)
            names = dict(blob(f"{name}-{r}-{j}") for j in range(2))
            names.update((k, pool[k]) for k in rng.sample(list(pool), 3))
            names.update((k, own[k]) for k in rng.sample(list(own), min(2, len(own))))
            started = time.time()
            for key, data in names.items():
                store.put(key, data)
            cp, version = empty_checkpoint(), f"{r:032}.{seed}{rng.randrange(10**9):016}"
            keys = list(names)
            cp["channel_values"] = {"handle": {"latent_graph_ref": 1, "digest": keys[0], "chunks": keys[1:]}}
            cp["channel_versions"] = {"handle": version}
            config = saver.put(
                {"configurable": {"thread_id": tid, "checkpoint_ns": ""}},
                cp,
                {"source": "loop", "step": r, "parents": {}},
                {"handle": version},
            )
            if time.time() - started > grace * 0.8:
                excused.append(cp["id"])
            missing = [k for k in keys if k not in store]
            if missing and still_there(config):
                losses += [(cp["id"], k, name) for k in missing]
            own.update(list(names.items())[:2])
            while len(own) > 16:
                own.pop(next(iter(own)))
        elif name == "refresher":
            key = rng.choice(list(pool))
            store.put(key, pool[key])
            if store.get(key) != pool[key]:
                losses.append(("-", key, name))
        elif name == "deleter":
            delete_thread(saver, rng.choice(THREADS[:4]), store, grace=grace)  # t4, t5 live to the end
        elif name == "collector":
            collect(store, [saver], grace)
        else:  # verifier
            config = {"configurable": {"thread_id": rng.choice(THREADS)}}
            for tup in list(saver.list(config, limit=3)):
                missing = [k for k in keys_of(tup) if k not in store]
                if missing and still_there(tup.config):
                    losses += [(tup.config["configurable"]["checkpoint_id"], k, name) for k in missing]
    return {"losses": losses, "excused": excused, "ops": rounds}


ROLES = ["writer0", "writer1", "writer2", "refresher", "deleter", "collector", "verifier"]


def _in_process(
    queue: Any, name: str, rounds: int, seed: int, spec: tuple[Any, ...], grace: float, collect: Collect
) -> None:
    try:
        store, saver = open_store(spec[0], spec[1]), open_saver(spec[2], spec[3])
        queue.put((name, role(name, rounds, seed, store, saver, grace, collect)))
        close(store), close(saver)
    except BaseException:
        queue.put((name, {"error": traceback.format_exc()}))


def race(
    spec: tuple[Any, ...],
    *,
    processes: bool,
    rounds: int,
    grace: float = 1.0,
    collect: Collect = gc_collect,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every role for ``rounds`` rounds on ``spec`` = (store kind, store location, saver kind, saver location).

    Returns the totals: ``losses`` (every loss seen during the run and at the end), ``excused``, ``checkpoints``
    (left at the end), ``errors`` (tracebacks of roles that raised).
    """
    store, saver = open_store(spec[0], spec[1]), open_saver(spec[2], spec[3])
    put_old(store, POOL)
    if hasattr(saver, "setup"):
        saver.setup()  # once, before the roles
    if processes:
        close(store), close(saver)  # every process opens its own connections
    results: dict[str, Any] = {}
    if processes:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_in_process, args=(queue, n, rounds, seed * 100 + i, spec, grace, collect))
            for i, n in enumerate(ROLES)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            name, res = queue.get(timeout=600)
            results[name] = res
        for p in procs:
            p.join(60)
        store, saver = open_store(spec[0], spec[1]), open_saver(spec[2], spec[3])
    else:

        def run(i: int, name: str) -> None:
            try:
                results[name] = role(name, rounds, seed * 100 + i, store, saver, grace, collect)
            except BaseException:
                results[name] = {"error": traceback.format_exc()}

        threads = [threading.Thread(target=run, args=(i, n)) for i, n in enumerate(ROLES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    collect(store, [saver], grace)
    losses = [loss for res in results.values() for loss in res.get("losses", [])]
    excused = {cp for res in results.values() for cp in res.get("excused", [])}
    tuples = list(saver.list(None))
    for tup in tuples:
        cp = tup.config["configurable"]["checkpoint_id"]
        losses += [(cp, key, "end") for key in keys_of(tup) if key not in store]
    close(store), close(saver)
    return {
        "losses": [loss for loss in losses if loss[0] not in excused],
        "excused": len(excused),
        "checkpoints": len(tuples),
        "errors": [res["error"] for res in results.values() if "error" in res],
    }
