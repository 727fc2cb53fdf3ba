"""Continuous batching: with ``model.batch_rows`` set, no forward runs more rows than that, a row that ends frees its
slot for the next waiting row, and every row's greedy output (and its continued cache) equals running it alone."""

from __future__ import annotations

import pytest
import torch

from latent_graph.engine.decode.schedule import RowSchedule

from conftest import ARCHS

QS = [
    "What is 12 times 7?",
    "Alice has 3 apples and buys 5 more. How many apples?",
    "Plan it.",
    "A train leaves at noon and travels for three hours. When does it arrive?",
    "Name a colour.",
]


def _spread(m, arch: str) -> None:
    """Larger random weights and one more end token, so rows generate different tokens and end at different times."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.hf_model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.15)
    alone = [[c.token_id for c in m.decode_stream(m.think(None, q, steps=2), "Answer.", max_new_tokens=10)] for q in QS]

    def ends(t: int) -> list[int]:
        return [ids.index(t) if t in ids else len(ids) for ids in alone]

    stops = [t for ids in alone for t in ids[:6] if min(ends(t)) < max(ends(t))]
    assert stops, f"{arch}: every row generates the same tokens"
    m.eos_ids = set(m.eos_ids) | {stops[0]}


@pytest.mark.parametrize("arch", ARCHS)
def test_rows_enter_freed_slots_and_match_alone(tiny_factory, arch):
    m = tiny_factory(arch)
    _spread(m, arch)
    alone = [m.decode(m.think(None, q, steps=2), "Answer.", max_new_tokens=10) for q in QS]
    batch_rows: list[int] = []  # rows of every forward
    steps: list[tuple[int, bool]] = []  # decode steps: (rows, some row entered with a masked column)

    def seen(mod, args, kw):
        x = kw.get("input_ids") if kw.get("input_ids") is not None else kw.get("inputs_embeds")
        batch_rows.append(int(x.shape[0]))
        if kw.get("input_ids") is not None and x.shape[1] == 1:
            mask = kw.get("attention_mask")
            steps.append((int(x.shape[0]), mask is not None and bool((mask[:, -1] == 0).any())))

    m.batch_rows = 2
    hook = m.base.register_forward_pre_hook(seen, with_kwargs=True)
    try:
        h = m.think(None, QS, steps=2)
        batch = m.decode(h, "Answer.", max_new_tokens=10)
        chunks = list(m.decode_stream(h, "Answer.", max_new_tokens=10))
    finally:
        hook.remove()
        m.batch_rows = None
    assert batch.texts == [a.text for a in alone]  # greedy outputs equal to each row alone
    assert batch.new_tokens == [a.new_tokens[0] for a in alone]
    streamed = ["".join(c.text for c in chunks if c.row == r) for r in range(len(QS))]
    assert streamed == batch.texts
    assert max(batch_rows) == 2  # no forward ran more rows than the slots
    rows = [n for n, _ in steps]
    assert any(entered for _, entered in steps)  # a waiting row took a freed slot
    # while rows wait, every slot is busy: a step runs fewer rows only once no row waits (per decode call)
    first = rows[: len(rows) // 2]
    assert first == sorted(first, reverse=True) and first[0] == 2
    # the reassembled cache continues every row like its own handle
    nb = m.think(batch.handle, "Go on.", steps=1)
    for i, a in enumerate(alone):
        n1 = m.think(a.handle, "Go on.", steps=1)
        torch.testing.assert_close(nb.last_hidden[i : i + 1], n1.last_hidden, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_sliced_think_equals_whole_batch(tiny_factory, arch):
    m = tiny_factory(arch)
    whole = m.think(m.think(None, QS, steps=2), "Go on.", steps=2)
    m.batch_rows = 2
    sliced = m.think(m.think(None, QS, steps=2), "Go on.", steps=2)
    assert sliced.segments == whole.segments
    torch.testing.assert_close(sliced.attention_mask, whole.attention_mask)
    torch.testing.assert_close(sliced.last_hidden, whole.last_hidden, atol=1e-4, rtol=1e-4)
    real = whole.attention_mask.bool()  # padding columns differ (a slice skips its own: zero K/V), all masked
    for k1, k2 in zip(sliced.keys, whole.keys):
        torch.testing.assert_close(k1.transpose(1, 2)[real], k2.transpose(1, 2)[real], atol=1e-4, rtol=1e-4)
    skipped = (sliced.keys[0].transpose(1, 2)[~real] == 0).flatten(1).all(dim=1)
    assert bool(skipped.any())  # a slice skipped padding no row of it needed (zero K/V there)


def test_schedule_fills_freed_slots_in_row_order():
    plan = RowSchedule([3, 0, 2, 5, 1], width=2)
    assert plan.start() == [0, 2]  # row 1 has no budget: it never takes a slot
    assert [plan.made_one(0), plan.made_one(1)] == [False, False]
    assert plan.made_one(1)  # row 2's budget of 2 is used up
    entering, empty = plan.free([1])
    assert (entering, empty, plan.slots) == ({1: 3}, [], [0, 3])
    entering, empty = plan.free([0, 1])  # both end; only row 4 waits
    assert (entering, empty, plan.slots) == ({0: 4}, [1], [4])
    assert plan.free([0]) == ({}, [0]) and plan.done
