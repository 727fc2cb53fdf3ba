"""Rows that finish early leave the decode batch (their K/V rows compacted away); greedy outputs stay equal."""

from __future__ import annotations

import pytest
import torch

from conftest import ARCHS

QS = ["What is 12 times 7?", "Alice has 3 apples and buys 5 more. How many apples?", "Plan it."]


@pytest.mark.parametrize("arch", ARCHS)
def test_finished_rows_stop_costing_compute(tiny_factory, arch):
    m = tiny_factory(arch)  # a fresh copy: its eos ids and weights may change
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # larger random weights: rows generate different tokens (at std 0.02 some archs repeat one)
        for p in m.hf_model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.15)
    alone_ids = [
        [c.token_id for c in m.decode_stream(m.think(None, q, steps=2), "Answer.", max_new_tokens=10)] for q in QS
    ]
    # an extra EOS: a token some row generates early and some other row generates later or never

    def ends(t: int) -> list[int]:
        return [ids.index(t) if t in ids else len(ids) for ids in alone_ids]

    candidates = [t for ids in alone_ids for t in ids[:6] if min(ends(t)) < max(ends(t))]
    assert candidates, f"{arch}: every row generates the same tokens"
    stop = candidates[0]
    m.eos_ids = set(m.eos_ids) | {stop}
    h = m.think(None, QS, steps=2)
    rows_per_step: list[int] = []
    hook = m.base.register_forward_pre_hook(
        lambda mod, args, kw: (
            rows_per_step.append(int(kw["input_ids"].shape[0]))
            if kw.get("input_ids") is not None and kw["input_ids"].shape[1] == 1
            else None
        ),
        with_kwargs=True,
    )
    try:
        batch = m.decode(h, "Answer.", max_new_tokens=10)
    finally:
        hook.remove()
    alone = [m.decode(m.think(None, q, steps=2), "Answer.", max_new_tokens=10) for q in QS]
    assert batch.texts == [a.text for a in alone]  # greedy outputs equal to each row alone
    assert batch.new_tokens == [a.new_tokens[0] for a in alone]
    # after a row stopped, later steps ran on fewer rows: the finished row cost nothing more
    assert rows_per_step and max(rows_per_step) <= len(QS) and min(rows_per_step) < len(QS)
    assert sum(rows_per_step) < len(QS) * len(rows_per_step)
    # the reassembled cache still continues every row like its own handle
    nb = m.think(batch.handle, "Go on.", steps=1)
    for i, a in enumerate(alone):
        n1 = m.think(a.handle, "Go on.", steps=1)
        torch.testing.assert_close(nb.last_hidden[i : i + 1], n1.last_hidden, atol=1e-4, rtol=1e-4)
