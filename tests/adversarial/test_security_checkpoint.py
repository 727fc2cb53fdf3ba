"""Issue 11 item 1: a crafted checkpoint row must not execute code when loaded.

State holds plain data and handle references only, so a saver whose serializer is LangGraph's in strict
mode (``JsonPlusSerializer(allowed_msgpack_modules=None)``, or ``LANGGRAPH_STRICT_MSGPACK=true``) stores
every prebuilt graph; serve's checkpoints (:func:`~latent_graph.serve.worker.open_checkpoints`) use it.
"""

from __future__ import annotations

import sqlite3

import ormsgpack
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from latent_graph.graphs import build_sequential
from latent_graph.persist import HandleStore, MemoryBlobStore
from latent_graph.serve.worker import open_checkpoints


def _evil(marker) -> ormsgpack.Ext:
    """LangGraph's 'constructor with positional args' record calling os.system(cmd)."""
    return ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [f"touch {marker}"]]))


def _tamper_memory(saver, marker) -> None:
    for key in list(saver.blobs):  # test-only: rewrite the stored rows
        saver.blobs[key] = ("msgpack", ormsgpack.packb({"x": _evil(marker)}))


def _tamper_sqlite(saver, marker) -> None:
    with saver.cursor() as cur:
        rows = cur.execute("SELECT thread_id, checkpoint_id, type, checkpoint FROM checkpoints").fetchall()
        for thread, cid, type_, blob in rows:
            ckpt = saver.serde.loads_typed((type_, blob))
            ckpt["channel_values"] = {k: "x" for k in ckpt["channel_values"]} | {"questions": _evil(marker)}
            data = ormsgpack.packb(ckpt, option=ormsgpack.OPT_NON_STR_KEYS)
            cur.execute(
                "UPDATE checkpoints SET type = 'msgpack', checkpoint = ? WHERE thread_id = ? AND checkpoint_id = ?",
                (data, thread, cid),
            )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_crafted_checkpoint_runs_nothing(llama, tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "memory":
        saver, handles = (
            InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=None)),
            HandleStore(MemoryBlobStore()),
        )
    else:
        saver, handles = open_checkpoints(tmp_path / "c.sqlite")  # what serve uses
    graph = build_sequential(llama, checkpointer=saver, handle_store=handles, steps=1, max_new_tokens=2)
    config = {"configurable": {"thread_id": "t"}}
    out = graph.invoke({"questions": ["What is 2+2?"]}, config)
    assert graph.get_state(config).values["answers"] == out["answers"]  # strict mode stores the whole state
    (_tamper_memory if kind == "memory" else _tamper_sqlite)(saver, marker)
    values = graph.get_state(config).values
    assert not marker.exists()  # nothing was called: the record came back as its inert arguments
    assert f"['touch {marker}']" in repr(values)


def test_every_blocked_record_kind_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    records = [
        ormsgpack.Ext(0, ormsgpack.packb(["os", "system", f"touch {marker}"])),
        ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [f"touch {marker}"]])),
        ormsgpack.Ext(2, ormsgpack.packb(["subprocess", "run", {"args": ["touch", str(marker)]}])),
        ormsgpack.Ext(3, ormsgpack.packb(["os", "system", f"touch {marker}", "__call__"])),
        ormsgpack.Ext(5, ormsgpack.packb(["os", "system", {}, None])),
        # hidden inside an allowed type's arguments
        ormsgpack.Ext(1, ormsgpack.packb(["langgraph.types", "Send", ["n", {"a": _evil(marker)}]])),
    ]
    for rec in records:
        serde.loads_typed(("msgpack", ormsgpack.packb([rec])))  # blocked: its arguments come back as inert data
        assert not marker.exists()


def test_serve_names_a_damaged_checkpoint_file(tmp_path):
    from latent_graph.errors import CheckpointFileError

    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointFileError, match="damaged"):
        open_checkpoints(bad)
    sqlite3.connect(str(tmp_path / "ok.sqlite")).close()
    saver, handles = open_checkpoints(tmp_path / "ok.sqlite")
    assert saver.serde is not None and handles.blobs.keys() == []


pytestmark = pytest.mark.reliability("attack")  # counted in the reliability summary (tests/conftest.py)
