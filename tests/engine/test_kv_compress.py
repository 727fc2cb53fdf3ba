"""Compressed latent edges (kv_keep / kv_budget), cache budgets and the text agents' message budget, on tiny models."""

from __future__ import annotations

import json
import math

import pytest
import torch
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from latent_graph import DecodeOptions, InvalidArgumentError
from latent_graph.engine import KVPolicy, compress, kept_total, observing
from latent_graph.engine.kv import probe as attention_probe
from latent_graph.graphs import build_compact, build_hierarchical, build_sequential
from latent_graph.nodes import JudgerNode, LatentAgentNode, add_agent
from latent_graph.persist import handle_from_chunks, handle_to_chunks
from latent_graph.state import LatentState

QS = ["The code word is FALCON. What is the code word?", "Alice has 3 apples and buys 5 more.", "Plan it."]
FAST = dict(steps=2, max_new_tokens=4)


def _handle(ref):
    """Graph output holds a handle reference; the default store gives the tensors back."""
    from latent_graph.persist import default_handle_store

    return default_handle_store().load(ref)


def _same(a, b) -> bool:
    a, b = _handle(a), _handle(b)
    return (
        a.segments == b.segments
        and torch.equal(a.attention_mask, b.attention_mask)
        and torch.equal(a.position_ids, b.position_ids)
        and all(torch.equal(x, y) for x, y in zip(a.keys, b.keys))
    )


def test_kv_keep_one_is_bit_identical(llama):
    """kv_keep=1.0 (the default) keeps today's behaviour exactly: same answers, same final cache."""
    plain = build_sequential(llama, **FAST).invoke({"questions": QS})
    kept = build_sequential(llama, kv_keep=1.0, **FAST).invoke({"questions": QS})
    assert plain["answers"] == kept["answers"]
    assert _same(plain["handle"], kept["handle"])
    assert "kv_kept" not in kept["trace"][0]


def test_routing_attention_changes_no_output(llama):
    """The attention probe's routing delegates to the model's own kernel: greedy outputs stay equal."""
    h = llama.think(None, QS, 2)
    before = llama.decode(h, QS, max_new_tokens=6)
    attention_probe.route(llama.hf_model)
    after = llama.decode(h, QS, max_new_tokens=6)
    assert before.texts == after.texts and _same(before.handle, after.handle)
    with attention_probe.recording(4) as store:
        llama.think(h, QS, 1)
    assert store and all(w.shape[0] == len(QS) for w in store)
    assert all(bool((w >= 0).all()) for w in store)


@pytest.mark.parametrize("score", ["knorm", "attention"])
def test_compress_keeps_protected_columns_and_positions(llama, score):
    pol = KVPolicy(keep=0.2, score=score)
    with observing(llama, pol) as rec:
        h = llama.think(None, QS, 3, agent="planner")
    c = compress(llama, h, pol, 0, rec)
    assert c.batch_size == h.batch_size and c.seq_len < h.seq_len
    kept, total = kept_total(c)
    assert total == int(h.attention_mask.sum()) and kept < total
    for r in range(h.batch_size):  # kept columns keep their positions: a subset of the row's real positions
        orig = h.position_ids[r][h.attention_mask[r].bool()].tolist()
        new = c.position_ids[r][c.attention_mask[r].bool()].tolist()
        assert set(new) <= set(orig) and new == sorted(new)
        assert orig[: pol.sink] == new[: pol.sink] and orig[-pol.recent :] == new[-pol.recent :]  # sink + last columns
        assert len(new) == math.ceil(0.2 * len(orig))  # the budget counts every column, protected ones included
    assert torch.equal(c.next_positions(), h.next_positions())  # the next agent continues after the max
    # the kept columns carry the very same K/V they had
    r, j = 0, int(c.attention_mask[0].nonzero()[0])
    src = int((h.position_ids[0] == c.position_ids[0, j]).logical_and(h.attention_mask[0].bool()).nonzero()[0])
    assert torch.equal(c.keys[0][0, :, j], h.keys[0][0, :, src])
    assert sum(s.dropped for s in c.segments) == total - kept
    assert [s.kind for s in c.segments] == [s.kind for s in h.segments]  # a segment that lost columns keeps its place
    again = llama.decode(c, QS, max_new_tokens=3)  # a compressed handle extends like any other
    assert len(again.texts) == len(QS)


def test_latent_segments_kept_whole_on_request(llama):
    h = llama.think(None, QS, 3, agent="planner")
    c = compress(llama, h, KVPolicy(keep=0.2, latent=True))
    lat = [s for s in c.segments if s.kind == "latent"]
    assert len(lat) == 1 and lat[0].length == 3 and lat[0].dropped == 0
    assert torch.equal(c.latents[0], h.latents[0])


def _spiky(h, cols):
    """Scores (B, T): zero everywhere, 1 at ``cols[r]`` of row r."""
    s = torch.zeros(h.attention_mask.shape)
    for r, j in enumerate(cols):
        s[r, j] = 1.0
    return s


def test_pooling_keeps_the_span_around_a_high_score(llama):
    """One high score keeps its neighbours too (a code word spans several tokens): max-pooled scores."""
    from latent_graph.engine.kv import select

    h = llama.think(None, QS, 0)
    real = h.attention_mask.bool()
    mid = [int(real[r].nonzero()[real[r].sum() // 2]) for r in range(h.batch_size)]  # a column inside each row
    for pool in (1, 5):
        pol = KVPolicy(keep=0.7, pool=pool, sink=0, recent=1)
        keep = select(h, _spiky(h, mid), pol)
        for r, j in enumerate(mid):
            assert bool(keep[r, j - pool // 2 : j + pool // 2 + 1].all())
    tight = select(h, _spiky(h, mid), KVPolicy(keep=0.2, pool=5, sink=0, recent=1))
    roomy = [r for r in range(h.batch_size) if math.ceil(0.2 * int(real[r].sum())) - 1 >= 5]  # room for the span
    assert roomy and all(bool(tight[r, mid[r] - 2 : mid[r] + 3].all()) for r in roomy)
    one = select(h, _spiky(h, mid), KVPolicy(keep=0.2, pool=1, sink=0, recent=1))
    assert not any(bool(one[r, mid[r] - 2 : mid[r] + 3].all()) for r in roomy)  # unpooled: the spike alone


def test_budget_is_respected_per_row_and_padding_never_kept(llama):
    """Rows of different lengths: each keeps exactly ceil(keep * n) of its own n real columns, never padding,
    and pooling never spreads a score from padding or from columns outside the span."""
    from latent_graph.engine.kv import select

    base = llama.think(None, QS, 2, agent="a")
    h = llama.think(base, ["Go on.", "Think more about the apples, then answer.", "Yes."], 2, agent="b")
    start = base.seq_len
    real = h.attention_mask.bool()
    assert len({int(real[r, start:].sum()) for r in range(h.batch_size)}) > 1  # rows differ in length
    for keep in (0.1, 0.2, 0.5):
        for pol in (
            KVPolicy(keep=keep),
            KVPolicy(keep=keep, pool=7),
            KVPolicy(keep=keep, score="attention"),
            KVPolicy(keep=keep, scope="sender"),
            KVPolicy(keep=keep, scope="sender", pool=7, close=3),
        ):
            k = select(h, _spiky(h, [start - 1] * h.batch_size) + torch.rand(h.attention_mask.shape), pol, start)
            assert not bool((k & ~real).any())  # padding is never kept
            if pol.scope == "sender":
                assert bool(k[:, :start].eq(real[:, :start]).all())  # columns before start are untouched
            for r in range(h.batch_size):
                n, before = int(real[r, start:].sum()), int(real[r, :start].sum())
                added = max(math.ceil(keep * n), pol.recent)
                if pol.scope == "sender":
                    assert int(k[r, start:].sum()) == added
                else:  # chain: the same total per row, chosen over every column of the row
                    assert int(k[r].sum()) == before + added
    r = int(real[:, start:].sum(dim=1).argmin())  # the row with the most padding in b's prompt segment
    pad = int((~real[r, start:]).nonzero()[-1]) + start  # its last padding column, right before real ones
    ramp = torch.arange(h.seq_len, dtype=torch.float)[None].expand(h.batch_size, -1).clone()
    ramp[r, pad] = 1e6  # a huge score on padding must not pull its real neighbours in
    k = select(h, ramp, KVPolicy(keep=0.2, pool=7, sink=0, recent=1, scope="sender"), start)
    assert not bool(k[r, pad + 1 : pad + 4].any())


@pytest.mark.parametrize(
    "pol", [KVPolicy(keep=0.3), KVPolicy(keep=0.3, heads=[[0, 0], [1, 0]])], ids=["attention", "key-norm heads"]
)
def test_per_row_selection_matches_single_rows(llama, pol):
    """A batch row keeps exactly the columns that row keeps when compressed alone."""
    h = llama.think(None, QS, 2)
    c = compress(llama, h, pol)
    for r, q in enumerate(QS):
        one = compress(llama, llama.think(None, [q], 2), pol)
        assert (
            one.position_ids[0][one.attention_mask[0].bool()].tolist()
            == c.position_ids[r][c.attention_mask[r].bool()].tolist()
        )


def test_budget_caps_columns_and_dropped_survives_a_checkpoint(llama):
    h = llama.think(None, QS, 2)
    c = compress(llama, h, KVPolicy(budget=20))
    assert int(c.attention_mask.sum(dim=1).max()) <= 20
    split = handle_to_chunks(c)
    back = handle_from_chunks(split.manifest, split.chunks.get)
    assert back.segments == c.segments and any(s.dropped for s in back.segments)
    plain = json.loads(handle_to_chunks(h).manifest)["body"]["header"]["segments"]
    assert all(len(seg) == 4 for seg in plain)  # nothing dropped: the format is unchanged (4-field segments)


@pytest.mark.parametrize("builder", [build_sequential, build_compact, build_hierarchical])
def test_prebuilt_graphs_compress_every_latent_edge(llama, builder):
    out = builder(llama, kv_keep=0.3, **FAST).invoke({"questions": QS})
    recs = [t for t in out["trace"] if t["kind"] == "latent"]
    assert recs and all(t["kv_kept"] < t["kv_total"] for t in recs)
    assert len(out["answers"]) == len(QS)


def test_hand_built_node_takes_kv_fields(llama):
    g = StateGraph(LatentState)
    add_agent(g, LatentAgentNode(model=llama, name="a", instruction="Think.", steps=2, kv_keep=0.5, kv_budget=30))
    add_agent(
        g, JudgerNode(model=llama, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3))
    )
    g.add_edge(START, "a"), g.add_edge("a", "judger"), g.add_edge("judger", END)
    out = g.compile().invoke({"questions": QS})
    rec = out["trace"][0]
    assert rec["kv_kept"] <= 30 * len(QS) and rec["kv_kept"] < rec["kv_total"]


@pytest.mark.parametrize(
    "bad",
    [
        dict(kv_keep=0),
        dict(kv_keep=1.5),
        dict(kv_keep="x"),
        dict(kv_budget=0),
        dict(cache_budget=-1),
        dict(message_tokens=0),
    ],
)
def test_bad_options_are_named_errors(llama, bad):
    with pytest.raises(InvalidArgumentError):
        build_sequential(llama, **bad)


def test_message_tokens_is_the_text_agents_budget(llama):
    out = build_sequential(llama, edges="text", max_new_tokens=2, message_tokens=7, steps=0).invoke({"questions": QS})
    gen = {t["node"]: t["generated_tokens"] for t in out["trace"]}
    assert max(gen["planner"]) <= 7 and max(gen["judger"]) <= 2
    assert max(max(gen[n]) for n in ("planner", "critic", "refiner")) > 2  # messages are not cut to the answer budget


def test_cache_budget_bounds_a_ten_agent_chain(llama):
    agents = {f"a{i}": "Think about it." for i in range(10)}
    out = build_sequential(llama, agents=agents, cache_budget=60, **FAST).invoke({"questions": QS})
    assert len(out["answers"]) == len(QS)
    judger = out["trace"][-1]
    own = [p + g for p, g in zip(judger["prompt_tokens"], judger["generated_tokens"])]
    read = _handle(out["handle"]).attention_mask.sum(dim=1).tolist()  # what the judger read + its own columns
    assert all(c - o <= 60 for c, o in zip(read, own))
    assert sum(s.dropped for s in _handle(out["handle"]).segments) > 0


def test_cache_budget_keeps_a_twenty_turn_thread_bounded(llama):
    g = build_compact(
        llama, agents=("planner",), cache_budget=80, checkpointer=InMemorySaver(), steps=1, max_new_tokens=3
    )
    cfg = {"configurable": {"thread_id": "t", "latent_thread": "continue", "latent_window": 4000}}
    cols = []
    for turn in range(20):
        out = g.invoke({"questions": [f"Turn {turn}: what did I say?"]}, cfg)
        assert len(out["answers"]) == 1
        judger = out["trace"][-1]
        cols.append(judger["kv_len"] - judger["prompt_tokens"][0] - judger["generated_tokens"][0])
    assert max(cols) <= 80 + 60  # the budgeted cache + the planner's turn on top of it


def test_drawing_labels_compressed_edges(llama):
    from latent_graph.present.draw import kept_per_edge, to_mermaid

    g = build_sequential(llama, kv_keep=0.3, **FAST)
    out = g.invoke({"questions": QS})
    kept = kept_per_edge(out["trace"])
    k, t = kept["planner"]
    assert 0 < k < t
    assert f"latent {k}/{t} cols" in to_mermaid(g, kept=kept)
    assert "latent ==>" in to_mermaid(g)  # without a run: the plain drawing


def test_head_scores_per_row_and_bad_heads(llama):
    """Scores from chosen (layer, kv head) key norms: z-scored per row, calibrated heads per model, named errors."""
    from latent_graph.engine.kv import CALIBRATED_HEADS, calibrated_heads, key_norm_scores

    pol = KVPolicy(keep=0.3, heads=[[0, 0], [1, 0]])
    assert pol.heads == ((0, 0), (1, 0))  # per-row selection: test_per_row_selection_matches_single_rows
    h = llama.think(None, QS, 2)
    s = key_norm_scores(h, pol.heads)
    real = h.attention_mask.bool()
    assert torch.allclose(
        s[real].new_tensor([float(s[r][real[r]].mean()) for r in range(len(QS))]), torch.zeros(len(QS)), atol=1e-4
    )  # each head z-scored over the row's real columns
    assert calibrated_heads(h) is None and "SmolLM2-135M-Instruct" in CALIBRATED_HEADS  # a tiny model has none
    with pytest.raises(InvalidArgumentError):
        compress(llama, h, KVPolicy(keep=0.3, heads=[[99, 0]]))
    for bad in ([], [[0]], [[0, -1]], [[True, 0]], "x"):
        with pytest.raises(InvalidArgumentError):
            KVPolicy(keep=0.5, heads=bad)


def test_floor_keeps_at_least_that_many_columns_per_sender(llama):
    """``floor``: a short sender keeps max(ceil(keep * n), min(floor, n)) of its n columns, row by row."""
    from latent_graph.engine.kv import select

    base = llama.think(None, QS, 2, agent="a")
    h = llama.think(base, ["Go on.", "Think more about the apples, then answer.", "Yes."], 2, agent="b")
    start, real = base.seq_len, h.attention_mask.bool()
    scores = torch.rand(h.attention_mask.shape, generator=torch.Generator().manual_seed(0))
    for floor in (0, 6, 1000):
        k = select(h, scores, KVPolicy(keep=0.1, floor=floor, scope="sender"), start)
        assert bool(k[:, :start].eq(real[:, :start]).all()) and not bool((k & ~real).any())
        for r in range(h.batch_size):
            n = int(real[r, start:].sum())
            assert int(k[r, start:].sum()) == max(math.ceil(0.1 * n), min(floor, n), 2)
    with pytest.raises(InvalidArgumentError):
        KVPolicy(keep=0.5, floor=-1)


def test_chain_scope_lets_a_new_sender_outbid_earlier_columns(llama):
    """``scope="chain"``: the row's total is its earlier columns + ceil(keep * n) of the new ones, and the
    earlier senders' columns compete by score (a high-scored new column evicts a low-scored earlier one)."""
    from latent_graph.engine.kv import select

    base = compress(llama, llama.think(None, QS, 2, agent="a"), KVPolicy(keep=0.5))
    h = llama.think(base, ["Go on.", "Think more about the apples, then answer.", "Yes."], 2, agent="b")
    start, real = base.seq_len, h.attention_mask.bool()
    scores = torch.zeros(h.attention_mask.shape)
    scores[:, start:] = 1.0  # every new column outscores every earlier one
    sender = select(h, scores, KVPolicy(keep=0.5, scope="sender"), start)
    chain = select(h, scores, KVPolicy(keep=0.5, scope="chain"), start)
    assert bool(sender[:, :start].eq(real[:, :start]).all())  # the default never touches earlier columns
    for r in range(h.batch_size):
        assert int(chain[r].sum()) == int(sender[r].sum())  # same bytes per row
        n_new = int(real[r, start:].sum())
        assert int(chain[r, start:].sum()) > int(sender[r, start:].sum()) or int(chain[r, start:].sum()) == n_new
        assert bool(chain[r][real[r].nonzero()[0]])  # the sink column stays
    c = compress(llama, h, KVPolicy(keep=0.5, scope="chain"), start)
    assert [s.kind for s in c.segments] == [s.kind for s in h.segments]  # every segment keeps its place
    assert kept_total(c)[1] == kept_total(h)[1]  # dropped columns are counted, earlier ones included
    with pytest.raises(InvalidArgumentError):
        KVPolicy(keep=0.5, scope="edge")


def test_closing_fills_a_one_column_gap_inside_a_kept_span(llama):
    """``close=3``: a low column between two high ones is kept instead of the lowest kept column elsewhere
    (a name split into tokens is not cut in the middle); the count per row is unchanged and a lone peak
    does not pull its neighbours in."""
    from latent_graph.engine.kv import select

    h = llama.think(None, QS, 0)
    real = h.attention_mask.bool()
    cols = real[0].nonzero().flatten()
    n = len(cols)
    scores = torch.zeros(h.attention_mask.shape)
    scores[0, cols] = -1.0 - 0.01 * torch.arange(n, 0, -1, dtype=torch.float)  # background: later is better
    j = int(cols[n // 2])
    scores[0, j - 2 : j + 3] = torch.tensor([5.0, 5.0, -3.0, 5.0, 5.0])  # a span with a hole at j
    scores[0, cols[3]] = 4.0  # a lone peak far from it
    assert n // 2 - 2 > 4 and n // 2 + 2 < n - 2
    for free in (5, 7):
        pol = dict(keep=(free + 0.5) / n, sink=0, recent=1)  # ceil(keep * n) = free + 1 (the last column)
        plain, closed = select(h, scores, KVPolicy(**pol)), select(h, scores, KVPolicy(**pol, close=3))
        assert int(closed[0].sum()) == int(plain[0].sum()) == free + 1
        assert bool(closed[0, j - 2 : j + 3].all()) and not bool(plain[0, j])  # the hole is filled only when closed
        assert not bool(closed[0, cols[2]]) and not bool(closed[0, cols[4]])  # the lone peak is not widened
        assert bool(plain[0, cols[3]]) and bool(closed[0, cols[3]]) == (free == 7)  # the span outbids the peak
    for r in range(1, h.batch_size):  # every row keeps ceil(keep * n) of its own columns
        k = select(h, scores, KVPolicy(keep=0.3, close=3))
        assert int(k[r].sum()) == math.ceil(0.3 * int(real[r].sum()))
    with pytest.raises(InvalidArgumentError):
        KVPolicy(keep=0.5, close=0)


def test_chain_selection_is_per_row_over_two_senders(llama):
    """Chain scope over a two-sender handle: each batch row keeps the columns it keeps when run alone."""
    pol = KVPolicy(keep=0.3)
    later = ["Go on.", "Think more about the apples, then answer.", "Yes."]
    base = compress(llama, llama.think(None, QS, 2, agent="a"), pol)
    h = llama.think(base, later, 2, agent="b")
    c = compress(llama, h, pol, base.seq_len)
    for r, (q, p) in enumerate(zip(QS, later)):
        b1 = compress(llama, llama.think(None, [q], 2, agent="a"), pol)
        one = compress(llama, llama.think(b1, [p], 2, agent="b"), pol, b1.seq_len)
        assert (
            one.position_ids[0][one.attention_mask[0].bool()].tolist()
            == c.position_ids[r][c.attention_mask[r].bool()].tolist()
        )


@pytest.mark.parametrize("how", ["mean", "max"])
def test_chunks_are_kept_whole(llama, how):
    """``chunk=4``: a segment's real columns count in runs of 4 that share one score, so a high column keeps
    its whole run (the run's mean or max) instead of lone columns elsewhere; the count per row is unchanged."""
    from latent_graph.engine.kv import select

    h = llama.think(None, QS, 0)
    real = h.attention_mask.bool()
    cols = real[0].nonzero().flatten()
    n = len(cols)
    scores = torch.zeros(h.attention_mask.shape)
    scores[0, cols] = -0.01 * torch.arange(n, 0, -1, dtype=torch.float)  # background: later is better
    run = cols[8:12]  # the third run of 4 in the row's one prompt segment
    assert len(h.segments) == 1 and n > 20
    scores[0, run[1]] = 9.0
    pol = dict(keep=5.5 / n, sink=0, recent=1)  # ceil(keep * n) = 6: the last column + 5 by score
    plain, chunked = select(h, scores, KVPolicy(**pol)), select(h, scores, KVPolicy(**pol, chunk=4, chunk_score=how))
    assert int(plain[0].sum()) == int(chunked[0].sum()) == 6
    assert bool(chunked[0, run].all()) and int(plain[0, run].sum()) == 1  # the spike keeps its run only in chunks
    with pytest.raises(InvalidArgumentError):
        KVPolicy(keep=0.5, chunk=0)
    with pytest.raises(InvalidArgumentError):
        KVPolicy(keep=0.5, chunk_score="median")
