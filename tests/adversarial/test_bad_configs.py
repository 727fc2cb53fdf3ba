"""Issue 32 item 6 ("validate every input that reaches a store or saver first"): bad thread ids get a named error.

A thread id of 1 MB or with a NUL reached PostgresSaver raw (``ProgramLimitExceeded``/``DataError``). Every
prebuilt graph is a :class:`CheckedGraph`: runs, state reads, history and updates check the config's ids
(:func:`check_config`) before its checkpointer sees them; the checkpointer is the caller's own object.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from latent_graph.errors import InvalidConfigError
from latent_graph.graphs import build_sequential
from latent_graph.persist import HandleStore, MemoryBlobStore

Q = {"questions": ["What is 2 plus 3?"]}
BAD = {
    "1MB": "t" * (1 << 20),
    "nul": "thread\x00id",
    "surrogate": "thread\ud800",
    "dict": {"id": 1},
    "list": ["t"],
    "float": 1.5,
    "bool": True,
    "bytes": b"t",
}
CALLS = {
    "invoke": lambda g, c: g.invoke(Q, c),
    "stream": lambda g, c: list(g.stream(Q, c)),
    "ainvoke": lambda g, c: asyncio.run(g.ainvoke(Q, c)),
    "get_state": lambda g, c: g.get_state(c),
    "aget_state": lambda g, c: asyncio.run(g.aget_state(c)),
    "history": lambda g, c: list(g.get_state_history(c)),
    "update_state": lambda g, c: g.update_state(c, {"questions": ["x"]}),
}


class Spy(InMemorySaver):
    """Counts every call that reaches the saver."""

    calls = 0

    def get_tuple(self, config: Any) -> Any:
        Spy.calls += 1
        return super().get_tuple(config)

    async def aget_tuple(self, config: Any) -> Any:
        Spy.calls += 1
        return await super().aget_tuple(config)

    def list(self, config: Any, **kwargs: Any) -> Any:
        Spy.calls += 1
        return super().list(config, **kwargs)


@pytest.fixture(scope="module")
def graph(llama) -> Any:
    saver = Spy()
    g = build_sequential(
        llama, steps=1, max_new_tokens=2, checkpointer=saver, handle_store=HandleStore(MemoryBlobStore())
    )
    assert g.checkpointer is saver
    return g


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_thread_id_is_a_named_error_before_the_saver(graph: Any, bad: str, call: str) -> None:
    Spy.calls = 0
    with pytest.raises(InvalidConfigError, match="thread_id"):
        CALLS[call](graph, {"configurable": {"thread_id": BAD[bad]}})
    assert Spy.calls == 0


@pytest.mark.parametrize("field", ["checkpoint_id", "checkpoint_ns"])
def test_bad_checkpoint_ids_are_named_errors(graph: Any, field: str) -> None:
    with pytest.raises(InvalidConfigError, match=field):
        graph.get_state({"configurable": {"thread_id": "t", field: "x" * 10_000}})


def test_good_thread_ids_still_run(graph: Any) -> None:
    for tid in ["plain", 7, uuid.uuid4(), "ü" * 512]:
        out = graph.invoke(Q, {"configurable": {"thread_id": tid}})
        assert out["answers"] and graph.get_state({"configurable": {"thread_id": tid}}).values["answers"]


def test_postgres_saver_never_sees_a_bad_thread_id(llama: Any, pg_url: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(pg_url) as saver:
        saver.setup()
        g = build_sequential(
            llama, steps=1, max_new_tokens=2, checkpointer=saver, handle_store=HandleStore(MemoryBlobStore())
        )
        for bad in ("1MB", "nul"):
            with pytest.raises(InvalidConfigError):
                g.invoke(Q, {"configurable": {"thread_id": BAD[bad]}})


pytestmark = pytest.mark.reliability("bad_input")  # counted in the reliability summary (tests/conftest.py)
