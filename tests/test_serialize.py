"""Handle persistence: safetensors byte formats, chunk sharing, LangGraph checkpointers."""

from __future__ import annotations

import dataclasses
import json
import operator
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from safetensors.torch import save as st_save

from latent_graph import HandleFormatError, LatentHandle
from latent_graph.persist import (
    TYPE_TAG,
    InMemoryChunkStore,
    LatentSerializer,
    SqliteChunkStore,
    checkpoint_nbytes,
    memory_checkpointer,
    sqlite_checkpointer,
)
from latent_graph.persist import (
    chunk_key,
    handle_from_bytes,
    handle_from_chunks,
    handle_from_store,
    handle_to_bytes,
    handle_to_chunks,
    handle_to_store,
    manifest_chunk_keys,
)

QUESTION = "What is 12 times 7? Alice has 3 apples and buys 5 more."
ROWS = ["What is 12 times 7?", "The secret code is BLUE-42. Answer with the final number in boxed form."]


# ------------------------------------------------------------------ helpers
def assert_same(a: LatentHandle, b: LatentHandle) -> None:
    """Every field equal; tensors bitwise (dtype and shape included)."""

    def same(x: torch.Tensor, y: torch.Tensor) -> None:
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x.view(torch.uint8) if x.numel() else x, y.view(torch.uint8) if y.numel() else y)

    assert len(a.keys) == len(b.keys) and len(a.values) == len(b.values)
    for x, y in zip((*a.keys, *a.values), (*b.keys, *b.values)):
        same(x, y)
    same(a.attention_mask, b.attention_mask)
    same(a.position_ids, b.position_ids)
    assert len(a.latents) == len(b.latents) and len(a.hiddens) == len(b.hiddens)
    for x, y in zip((*a.latents, *a.hiddens), (*b.latents, *b.hiddens)):
        same(x, y)
    assert (a.last_hidden is None) == (b.last_hidden is None)
    if a.last_hidden is not None:
        same(a.last_hidden, b.last_hidden)
    assert a.segments == b.segments
    assert a.fingerprint == b.fingerprint
    assert (a.prompt_tokens, a.latent_steps, a.generated_tokens) == (b.prompt_tokens, b.latent_steps, b.generated_tokens)
    assert a.meta == b.meta
    assert b.device == torch.device("cpu")


@pytest.fixture(scope="module")
def chain(llama) -> list[LatentHandle]:
    """A batch-2 planner -> critic -> refiner -> judger run: prompt, latent and text segments."""
    h1 = llama.think(None, ROWS, steps=4, agent="planner")
    h2 = llama.think(h1, "Check the plan carefully.", steps=3, agent="critic")
    h3 = llama.think(h2, ["Refine it.", "Refine the plan step by step and check it."], steps=3, agent="refiner")
    d = llama.decode(h3, "Answer with the final number.", max_new_tokens=10, agent="judger")
    final = dataclasses.replace(d.handle, meta={"run": "test", "ünï": "✓"})
    return [h1, h2, h3, final]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


# ------------------------------------------------------------ byte format
def test_bytes_round_trip_is_exact(chain):
    final = chain[-1]
    assert final.batch_size == 2 and {s.kind for s in final.segments} == {"prompt", "latent", "text"}
    assert bool((final.attention_mask == 0).any())  # rows were padded
    for h in chain:
        assert_same(h, handle_from_bytes(handle_to_bytes(h)))
    assert handle_to_bytes(final) == handle_to_bytes(final)  # deterministic


def test_bf16_round_trip(chain):
    h = chain[-1].to(dtype=torch.bfloat16)
    back = handle_from_bytes(handle_to_bytes(h))
    assert back.dtype == torch.bfloat16 and back.latents[0].dtype == torch.bfloat16
    assert_same(h, back)
    split = handle_to_chunks(h)
    assert_same(h, handle_from_chunks(split.manifest, split.chunks.get))


def test_handle_without_segments_or_last_hidden(llama):
    h = llama.think(None, "hi", steps=0, agent="a")
    empty = dataclasses.replace(h.select_columns([]), last_hidden=None)
    assert empty.seq_len == 0
    assert_same(empty, handle_from_bytes(handle_to_bytes(empty)))
    split = handle_to_chunks(empty)
    assert_same(empty, handle_from_chunks(split.manifest, split.chunks.get))


def test_latents_sharing_storage_are_saved(chain):
    h = chain[0]
    aliased = dataclasses.replace(h, hiddens=h.latents)  # identity realigner: same tensors
    assert_same(aliased, handle_from_bytes(handle_to_bytes(aliased)))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b"garbage",
        lambda b: b[: len(b) // 2],
        lambda b: b[:-1],
        lambda b: _flip(b, len(b) - 100),  # inside tensor data: checksum catches it
        lambda b: _flip(b, 20),  # inside the JSON header
    ],
    ids=["empty", "garbage", "half", "minus-one-byte", "flipped-data", "flipped-header"],
)
def test_corrupt_bytes_raise(chain, mangle):
    with pytest.raises(HandleFormatError):
        handle_from_bytes(mangle(handle_to_bytes(chain[0])))


def test_unknown_version_and_foreign_safetensors_raise():
    t = {"x": torch.zeros(2)}
    info = {"format": "latent_graph.handle", "version": 99, "header": {}, "sha256": ""}
    with pytest.raises(HandleFormatError, match="version 99"):
        handle_from_bytes(st_save(t, metadata={"latent_graph": json.dumps(info)}))
    with pytest.raises(HandleFormatError, match="metadata"):
        handle_from_bytes(st_save(t))  # a plain safetensors file
    with pytest.raises(HandleFormatError):
        handle_from_bytes("not bytes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ chunks
def test_chunk_round_trip_and_prefix_sharing(chain):
    keys = []
    for h in chain:
        split = handle_to_chunks(h)
        assert all(chunk_key(v) == k for k, v in split.chunks.items())
        assert_same(h, handle_from_chunks(split.manifest, split.chunks.get))
        keys.append(manifest_chunk_keys(split.manifest))
    for earlier, later in zip(keys, keys[1:]):
        columns = earlier[:-1]  # last key is the tail (last_hidden), which changes
        assert later[: len(columns)] == columns


def test_chunk_errors(chain):
    store: dict[str, bytes] = {}
    key = handle_to_store(chain[1], store.__setitem__, store.__contains__)
    assert_same(chain[1], handle_from_store(key, store.get))
    victim = manifest_chunk_keys(store[key])[1]
    good = store.pop(victim)
    with pytest.raises(HandleFormatError, match="missing"):
        handle_from_store(key, store.get)
    store[victim] = _flip(good, len(good) - 3)
    with pytest.raises(HandleFormatError, match="corrupt"):
        handle_from_store(key, store.get)
    store[victim] = good
    manifest = store[key].decode()
    with pytest.raises(HandleFormatError, match="checksum"):
        handle_from_chunks(manifest.replace('"critic"', '"critiq"'), store.get)
    with pytest.raises(HandleFormatError, match="version"):
        handle_from_chunks(manifest.replace('"version":1', '"version":7'), store.get)
    with pytest.raises(HandleFormatError):
        handle_from_chunks(manifest[:-5], store.get)


def test_four_agent_chain_stores_prefix_once(chain):
    """Every intermediate handle stored through the serializer: <= 1.2x the final handle."""
    serde = LatentSerializer(InMemoryChunkStore())
    blobs = [serde.dumps_typed(h) for h in chain]
    blobs += [serde.dumps_typed(h) for h in chain]  # stored again next superstep: costs only the marker
    total = sum(len(b) for _, b in blobs) + serde.chunk_store.nbytes
    final = chain[-1].nbytes
    assert total <= 1.2 * final, (total, final)
    naive = LatentSerializer(None)  # whole handle inline in every blob
    naive_total = sum(len(naive.dumps_typed(h)[1]) for h in chain) * 2
    assert naive_total > 2.5 * final
    for (type_, data), h in zip(blobs, chain * 2):
        assert type_ == TYPE_TAG
        assert_same(h, serde.loads_typed((type_, data)))


# -------------------------------------------------------------- serializer
@dataclasses.dataclass
class Box:
    name: str
    handle: Any


def test_serializer_finds_nested_handles(chain):
    h1, h2 = chain[0], chain[1]
    serde = LatentSerializer(InMemoryChunkStore(), allowed_types=[Box])  # loading is strict: register own types
    value = {
        "branches": {"planner": h1, "critic": h2},
        "list": [1, "x", h1, {"deep": [h2]}],
        "tuple": (h2, 3),
        "send": Send("node", {"handle": h1, "n": 1}),
        "box": Box("b", h2),
        "plain": {"a": [1, 2.5, None, "s"]},
    }
    back = serde.loads_typed(serde.dumps_typed(value))
    assert_same(h1, back["branches"]["planner"])
    assert_same(h2, back["branches"]["critic"])
    assert back["list"][:2] == [1, "x"]
    assert_same(h1, back["list"][2])
    assert_same(h2, back["list"][3]["deep"][0])
    assert_same(h2, back["tuple"][0]) and back["tuple"][1] == 3
    assert isinstance(back["send"], Send) and back["send"].node == "node"
    assert_same(h1, back["send"].arg["handle"])
    assert isinstance(back["box"], Box) and back["box"].name == "b"
    assert_same(h2, back["box"].handle)
    assert back["plain"] == value["plain"]


def test_serializer_is_jsonplus_without_handles():
    plain = {"q": "hi", "n": [1, 2, {"x": 1.5}], "none": None}
    assert LatentSerializer(InMemoryChunkStore()).dumps_typed(plain) == JsonPlusSerializer().dumps_typed(plain)
    assert LatentSerializer().loads_typed(JsonPlusSerializer().dumps_typed(plain)) == plain
    with pytest.raises(ValueError, match="pickle"):
        LatentSerializer(pickle_fallback=True)
    with pytest.raises(NotImplementedError):
        LatentSerializer().loads_typed(("pickle", b"\x80\x04N."))


def test_serializer_inline_mode_and_corrupt_blobs(chain):
    inline = LatentSerializer(None)
    blob = inline.dumps_typed({"h": chain[2]})
    assert_same(chain[2], inline.loads_typed(blob)["h"])
    serde = LatentSerializer(InMemoryChunkStore())
    type_, data = serde.dumps_typed({"h": chain[2]})
    for bad in (data[: len(data) // 2], b"", b"\xc1\xc1"):
        with pytest.raises(HandleFormatError):
            serde.loads_typed((type_, bad))
    with pytest.raises(HandleFormatError, match="missing"):
        LatentSerializer(InMemoryChunkStore()).loads_typed((type_, data))  # another store
    with pytest.raises(HandleFormatError, match="no chunk store"):
        LatentSerializer(None).loads_typed((type_, data))


def test_sqlite_chunk_store_persists(tmp_path):
    path = tmp_path / "chunks.db"
    store = SqliteChunkStore(path)
    store.put("k", b"abc")
    store.put("k", b"abc")
    assert "k" in store and store.get("k") == b"abc" and store.get("nope") is None
    assert store.nbytes == 3 and len(store) == 1
    store.conn.close()
    again = SqliteChunkStore(sqlite3.connect(path))
    assert again.get("k") == b"abc" and again.nbytes == 3
    again.conn.close()


# -------------------------------------------------------------- LangGraph
class State(TypedDict, total=False):
    question: str
    handle: Any
    branches: Annotated[dict[str, Any], operator.or_]
    answer: str


def _agent(model, name: str, prompt: str, calls: dict[str, int], fail_once: set[str]) -> Callable[[State], dict]:
    def node(state: State) -> dict:
        calls[name] = calls.get(name, 0) + 1
        if name in fail_once:
            fail_once.discard(name)
            raise RuntimeError(f"{name} crashed")
        h = model.think(state.get("handle"), f"{prompt} {state['question']}", steps=3, agent=name)
        return {"handle": h, "branches": {name: h}}

    return node


def _judge(model) -> Callable[[State], dict]:
    def node(state: State) -> dict:
        d = model.decode(state["handle"], "Answer with the final number.", max_new_tokens=12, agent="judger")
        return {"handle": d.handle, "answer": d.text}

    return node


def chain_graph(model, calls: dict[str, int] | None = None, fail_once: set[str] | None = None) -> StateGraph:
    """a -> b -> c -> judge, each agent extending the previous handle."""
    calls = {} if calls is None else calls
    fail = set() if fail_once is None else fail_once
    g = StateGraph(State)
    for name, prompt in (("a", "Plan:"), ("b", "Critique:"), ("c", "Refine:")):
        g.add_node(name, _agent(model, name, prompt, calls, fail))
    g.add_node("judge", _judge(model))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "judge")
    g.add_edge("judge", END)
    return g


@pytest.fixture(params=["memory", "sqlite"])
def make_saver(request, tmp_path) -> Callable[[], Any]:
    """Factory of checkpointers; sqlite ones reopen the same file (a fresh process's view)."""
    opened: list[Any] = []

    def make() -> Any:
        if request.param == "memory":
            if not opened:
                opened.append(memory_checkpointer())
            return opened[0]
        saver = sqlite_checkpointer(tmp_path / "ckpt.sqlite")
        opened.append(saver)
        return saver

    yield make
    for saver in opened:
        if hasattr(saver, "conn"):
            saver.conn.close()


@pytest.fixture(scope="module")
def reference(llama) -> dict:
    return chain_graph(llama).compile().invoke({"question": QUESTION})


def test_interrupt_after_critic_then_resume(llama, make_saver, reference):
    cfg = {"configurable": {"thread_id": "t1"}}
    app = chain_graph(llama).compile(checkpointer=make_saver(), interrupt_after=["b"])
    first = app.invoke({"question": QUESTION}, cfg)
    assert "answer" not in first and app.get_state(cfg).next == ("c",)
    calls: dict[str, int] = {}
    resumed = chain_graph(llama, calls).compile(checkpointer=make_saver())  # sqlite: new connection
    out = resumed.invoke(None, cfg)
    assert calls == {"c": 1}
    assert out["answer"] == reference["answer"]
    assert_same(reference["handle"], out["handle"])
    assert sorted(out["branches"]) == ["a", "b", "c"]
    for name in "abc":
        assert_same(reference["branches"][name], out["branches"][name])
    assert_same(reference["handle"], resumed.get_state(cfg).values["handle"])


def test_crash_in_refiner_then_resume(llama, make_saver, reference):
    cfg = {"configurable": {"thread_id": "t2"}}
    calls: dict[str, int] = {}
    app = chain_graph(llama, calls, fail_once={"c"}).compile(checkpointer=make_saver())
    with pytest.raises(RuntimeError, match="c crashed"):
        app.invoke({"question": QUESTION}, cfg)
    resumed = chain_graph(llama, calls).compile(checkpointer=make_saver())
    out = resumed.invoke(None, cfg)
    assert calls == {"a": 1, "b": 1, "c": 2}
    assert out["answer"] == reference["answer"]
    assert_same(reference["handle"], out["handle"])


def test_pending_writes_with_handles_survive_a_crash(llama, make_saver):
    """Fan-out: b succeeds, x crashes; on resume b's handle comes from its pending write."""

    def graph(calls: dict[str, int], fail: set[str]) -> StateGraph:
        g = StateGraph(State)
        g.add_node("a", _agent(llama, "a", "Plan:", calls, fail))
        g.add_node("b", _agent(llama, "b", "Critique:", calls, fail))

        def x(state: State) -> dict:
            calls["x"] = calls.get("x", 0) + 1
            if "x" in fail:
                fail.discard("x")
                raise RuntimeError("x crashed")
            return {"branches": {"x": llama.think(state["handle"], "Other view.", steps=2, agent="x")}}

        g.add_node("x", x)
        g.add_node("judge", _judge(llama))
        g.add_edge(START, "a")
        g.add_edge("a", "b")
        g.add_edge("a", "x")
        g.add_edge(["b", "x"], "judge")
        g.add_edge("judge", END)
        return g

    ref = graph({}, set()).compile().invoke({"question": QUESTION})
    cfg = {"configurable": {"thread_id": "t3"}}
    calls: dict[str, int] = {}
    with pytest.raises(RuntimeError, match="x crashed"):
        graph(calls, {"x"}).compile(checkpointer=make_saver()).invoke({"question": QUESTION}, cfg)
    out = graph(calls, set()).compile(checkpointer=make_saver()).invoke(None, cfg)
    assert calls == {"a": 1, "b": 1, "x": 2}  # b was not re-run: its write was restored
    assert out["answer"] == ref["answer"]
    assert_same(ref["handle"], out["handle"])
    assert_same(ref["branches"]["x"], out["branches"]["x"])


def test_checkpoint_bytes_stay_near_final_handle(llama, make_saver, reference):
    saver = make_saver()
    out = chain_graph(llama).compile(checkpointer=saver).invoke({"question": QUESTION}, {"configurable": {"thread_id": "t4"}})
    stored = checkpoint_nbytes(saver)
    final = out["handle"].nbytes
    naive = saver.serde.handle_bytes_dumped  # what storing every handle whole would cost
    assert final < stored < 1.6 * final  # tiny model: fixed per-chunk headers weigh more
    assert naive > 5 * stored


def _corrupt_stored_chunk(saver: Any) -> None:
    store = saver.serde.chunk_store
    if isinstance(store, InMemoryChunkStore):
        key = store.keys()[0]
        store._data[key] = _flip(store._data[key], 40)
    else:
        with saver.lock:
            saver.conn.execute("UPDATE latent_chunks SET data = substr(data, 1, 100)")
            saver.conn.commit()


def _corrupt_handle_blob(saver: Any) -> None:
    if isinstance(saver, InMemorySaver):
        for key, (type_, data) in list(saver.blobs.items()):
            if type_ == TYPE_TAG:
                saver.blobs[key] = (type_, data[: len(data) // 2])
    else:
        with saver.lock:
            saver.conn.execute("UPDATE checkpoints SET checkpoint = substr(checkpoint, 1, length(checkpoint) / 2)")
            saver.conn.commit()


@pytest.mark.parametrize("corrupt", [_corrupt_stored_chunk, _corrupt_handle_blob], ids=["chunk", "blob"])
def test_corrupt_checkpoint_raises_handle_format_error(llama, make_saver, corrupt):
    saver = make_saver()
    cfg = {"configurable": {"thread_id": "t5"}}
    app = chain_graph(llama).compile(checkpointer=saver, interrupt_after=["a"])
    app.invoke({"question": QUESTION}, cfg)
    corrupt(saver)
    with pytest.raises(HandleFormatError):
        app.get_state(cfg)
    with pytest.raises(HandleFormatError):
        app.invoke(None, cfg)
