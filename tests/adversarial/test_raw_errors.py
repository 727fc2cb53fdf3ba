"""The reliability suite's gate: no bad input at a store, saver or reference edge gives a raw (non-latent_graph) error.

Hypothesis throws arbitrary JSON-like values, non-keys and references with one field replaced at every edge
that takes user data before a store or saver: blob keys (every blob store's methods), handle references
(both handle stores' ``load``), run configs (:func:`check_config`) and collection settings. Each call either
succeeds or raises a :class:`LatentGraphError`; anything else fails the test, and the count of inputs tried is
reported in the suite's summary line (``cases``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latent_graph.errors import LatentGraphError
from latent_graph.persist import (
    FolderBlobStore,
    HandleStore,
    LiveHandleStore,
    MemoryBlobStore,
    SqliteBlobStore,
    collect_blobs,
)
from latent_graph.state.threads import check_config

EXAMPLES = 150
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
KEYLIKE = st.text(alphabet="0123456789abcdefABCDEF./\\\x00 g", min_size=0, max_size=80) | VALUES
REF = {
    "latent_graph_ref": 1,
    "digest": "a" * 64,
    "chunks": ["b" * 64],
    "model": "m",
    "fingerprint": "f",
    "batch": 1,
    "columns": 4,
    "layers": 2,
    "kv_heads": 1,
    "head_dim": 8,
    "dtype": "float32",
    "nbytes": 1,
    "segments": [["a", "prompt", 0, 4]],
    "summary": "s",
}
REFS = st.sampled_from([*REF, "live", "writer"]).flatmap(lambda field: VALUES.map(lambda v: {**REF, field: v})) | VALUES


def named_or_fine(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except LatentGraphError:
        pass


@pytest.fixture
def stores(tmp_path: Path) -> list[Any]:
    sqlite = SqliteBlobStore(tmp_path / "b.db")
    yield [MemoryBlobStore(), FolderBlobStore(tmp_path / "f"), sqlite]
    sqlite.close()


def test_no_bad_input_gives_a_raw_error(stores: list[Any], record_property: Any) -> None:
    tried = [0]
    handle_stores = [HandleStore(stores[0]), LiveHandleStore()]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(key=KEYLIKE, ref=REFS, config=VALUES | st.fixed_dictionaries({"configurable": VALUES}), grace=VALUES)
    def edges(key: Any, ref: Any, config: Any, grace: Any) -> None:
        for store in stores:
            named_or_fine(store.get, key)
            named_or_fine(store.age, key)
            named_or_fine(lambda s, k: k in s, store, key)
            named_or_fine(store.delete, [key])
            named_or_fine(store.put, key, b"x")
        for handles in handle_stores:
            named_or_fine(handles.load, ref)
        named_or_fine(check_config, config)
        named_or_fine(check_config, {"configurable": {"thread_id": key}})
        named_or_fine(collect_blobs, stores[0], (), (), grace)
        tried[0] += 13

    edges()
    record_property("cases", tried[0])
    assert tried[0] >= EXAMPLES


pytestmark = pytest.mark.reliability("bad_input")  # counted in the reliability summary (tests/conftest.py)
