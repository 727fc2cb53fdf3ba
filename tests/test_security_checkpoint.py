"""Issue 11 item 1: a crafted checkpoint row must not execute code when loaded."""

from __future__ import annotations

import dataclasses
import operator
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from latent_graph.errors import CheckpointSecurityError, LatentGraphError
from latent_graph.persist import LatentSerializer, memory_checkpointer, sqlite_checkpointer
from latent_graph.persist.stores import InMemoryChunkStore


class State(TypedDict, total=False):
    question: str
    handle: Any
    log: Annotated[list[Any], operator.add]


def _graph(model, saver):
    def think(state: State) -> dict:
        return {"handle": model.think(state.get("handle"), state["question"], steps=2, agent="a"), "log": ["a"]}

    g = StateGraph(State)
    g.add_node("a", think)
    g.add_edge(START, "a")
    g.add_edge("a", END)
    return g.compile(checkpointer=saver)


def _evil(marker) -> ormsgpack.Ext:
    """LangGraph's 'constructor with positional args' record calling os.system(cmd)."""
    return ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [f"touch {marker}"]]))


def _tamper_memory(saver, marker) -> None:
    for key in list(saver.blobs):
        saver.blobs[key] = ("msgpack", ormsgpack.packb({"x": _evil(marker)}))


def _tamper_sqlite(saver, marker) -> None:
    with saver.cursor() as cur:
        rows = cur.execute("SELECT thread_id, checkpoint_id, type, checkpoint FROM checkpoints").fetchall()
        for thread, cid, type_, blob in rows:
            ckpt = saver.serde.loads_typed((type_, blob))
            ckpt["channel_values"] = {k: "x" for k in ckpt["channel_values"]} | {"question": _evil(marker)}
            data = ormsgpack.packb(ckpt, option=ormsgpack.OPT_NON_STR_KEYS)
            cur.execute(
                "UPDATE checkpoints SET type = 'msgpack', checkpoint = ? WHERE thread_id = ? AND checkpoint_id = ?",
                (data, thread, cid),
            )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_crafted_checkpoint_raises_and_runs_nothing(llama, tmp_path, kind):
    marker = tmp_path / "pwned"
    saver = memory_checkpointer() if kind == "memory" else sqlite_checkpointer(tmp_path / "c.sqlite")
    graph = _graph(llama, saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"question": "What is 2+2?"}, config)
    (_tamper_memory if kind == "memory" else _tamper_sqlite)(saver, marker)
    with pytest.raises(CheckpointSecurityError, match="os.system"):
        graph.get_state(config)
    assert not marker.exists()
    assert issubclass(CheckpointSecurityError, LatentGraphError)


def test_every_blocked_record_kind_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    serde = LatentSerializer(InMemoryChunkStore())
    records = [
        ormsgpack.Ext(0, ormsgpack.packb(["os", "system", f"touch {marker}"])),
        ormsgpack.Ext(2, ormsgpack.packb(["subprocess", "run", {"args": ["touch", str(marker)]}])),
        ormsgpack.Ext(3, ormsgpack.packb(["os", "system", f"touch {marker}", "__call__"])),
        ormsgpack.Ext(5, ormsgpack.packb(["os", "system", {}, None])),
        # hidden inside an allowed type's arguments
        ormsgpack.Ext(1, ormsgpack.packb(["langgraph.types", "Send", ["n", {"a": _evil(marker)}]])),
    ]
    for rec in records:
        with pytest.raises(CheckpointSecurityError):
            serde.loads_typed(("msgpack", ormsgpack.packb([rec])))
        with pytest.raises(CheckpointSecurityError):  # the handle-carrying type tag too
            serde.loads_typed(("latent_graph.msgpack", ormsgpack.packb({"h": rec})))
    assert not marker.exists()
    with pytest.raises(ValueError, match="strict"):
        LatentSerializer(allowed_msgpack_modules=True)


@dataclasses.dataclass
class Note:
    text: str


def test_allowed_types_still_round_trip(llama, tmp_path):
    h = llama.think(None, "Hi", steps=1)
    value = {"send": Send("n", {"handle": h}), "s": {1, 2}, "note": Note("x")}
    strict = LatentSerializer(InMemoryChunkStore())
    blob = strict.dumps_typed(value)
    with pytest.raises(CheckpointSecurityError, match="Note"):
        strict.loads_typed(blob)  # an unregistered dataclass is refused by name
    ok = LatentSerializer(strict.chunk_store, allowed_types=[Note])
    back = ok.loads_typed(blob)
    assert isinstance(back["send"], Send) and back["s"] == {1, 2} and back["note"] == Note("x")
    saver = sqlite_checkpointer(tmp_path / "n.sqlite", allowed_types=[Note])
    assert ("tests.test_security_checkpoint", "Note") in saver.serde.allowed_types or any(
        k[1] == "Note" for k in saver.serde.allowed_types
    )
    saver.conn.close()
