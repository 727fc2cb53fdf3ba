"""Measure realigners and adapters: embedding fit, continuation quality, relay through an edge.

- :func:`evaluate_realigners` — on (instruction, target) pairs, for each
  realigner/adapter: mean cosine of its output to the target's first-token
  input embedding, first-token accuracy (nearest input embedding by cosine is
  t0), and continuation quality of the frozen receiver reading the output in
  place of t0 (mean CE and teacher-forced accuracy on t1…EOS);
- :func:`relay_probe` — a fact only in agent 1's prompt, latent steps, then a
  judger that reads *only the latent columns* (``memory="latent"``) and is asked
  the question; also the "text" edge (judger reads the prompt) and "none" (no edge);
- :func:`cross_relay_probe` — the same through :func:`~latent_graph.adapters.cross.cross_handoff`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from tqdm.auto import tqdm

from latent_graph.adapters.cross import cross_handoff
from latent_graph.adapters.data import Pair
from latent_graph.adapters.features import (
    receiver_context,
    receiver_logits,
    source_hiddens,
    target_embeddings,
    target_ids,
)
from latent_graph.adapters.trained_realigner import AdapterRealigner
from latent_graph.errors import InvalidArgumentError

Mapper = Callable[[torch.Tensor], torch.Tensor]  # (B, H_src) -> (B, H_dst)


@torch.no_grad()
def evaluate_realigners(
    mappers: Mapping[str, Mapper],
    model: Any,
    pairs: list[Pair],
    *,
    target_model: Any = None,
    context: str = "prompt",
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics per mapper: mean_cosine, first_token_acc, continuation_ce, continuation_acc, n."""
    dst = target_model or model
    w = torch.nn.functional.normalize(dst.input_embedding_matrix().float(), dim=-1)  # (V, H_dst)
    sums = {k: dict(cos=0.0, first=0.0, ce=0.0, acc=0.0, tokens=0.0) for k in mappers}
    for i in tqdm(range(0, len(pairs), batch_size), desc="evaluate", disable=not progress, leave=False):
        chunk = pairs[i : i + batch_size]
        instr = [p.instruction for p in chunk]
        h = source_hiddens(model, instr)  # (b, H_src)
        ids = target_ids(dst, [p.target for p in chunk])
        tgt = target_embeddings(dst, ids)  # (b, H_dst)
        t0 = torch.tensor([t[0] for t in ids], device=tgt.device)
        ctx = receiver_context(dst, instr, context)
        for name, mapper in mappers.items():
            e = mapper(h.to(model.dtype)).float()  # (b, H_dst)
            s = sums[name]
            s["cos"] += float(torch.nn.functional.cosine_similarity(e, tgt, dim=-1).sum())
            s["first"] += float(((torch.nn.functional.normalize(e, dim=-1) @ w.T).argmax(-1) == t0).sum())
            logits, labels = receiver_logits(dst, ctx, e, ids)
            real = labels != -100
            ce = torch.nn.functional.cross_entropy(logits[real], labels[real], reduction="sum")
            s["ce"] += float(ce)
            s["acc"] += float((logits.argmax(-1)[real] == labels[real]).sum())
            s["tokens"] += float(real.sum())
    n = len(pairs)
    return {
        k: {
            "mean_cosine": s["cos"] / n,
            "first_token_acc": s["first"] / n,
            "continuation_ce": s["ce"] / s["tokens"],
            "continuation_acc": s["acc"] / s["tokens"],
            "n": n,
        }
        for k, s in sums.items()
    }


def relay_probes(pairs: list[Pair]) -> list[Pair]:
    """The pairs that carry a separate ``fact`` and ``question`` (relay rows)."""
    return [p for p in pairs if "fact" in p.extra and "question" in p.extra]


def _score(texts: list[str], probes: list[Pair]) -> tuple[int, list[dict[str, str]]]:
    hits = [p.target.lower() in t.lower() for t, p in zip(texts, probes)]
    rows = [{"question": p.extra["question"], "answer": p.target, "output": t} for t, p in zip(texts, probes)]
    return sum(hits), rows


def relay_probe(
    model: Any,
    probes: list[Pair],
    *,
    realigner: Any = None,
    mode: str = "latent",
    steps: int = 4,
    max_new_tokens: int = 6,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Accuracy of a judger answering each probe's question about a fact only agent 1 saw.

    Args:
        model: The shared model (both agents).
        probes: Pairs with ``extra["fact"]`` and ``extra["question"]``.
        realigner: Realigner for agent 1's latent steps (None = the model's own).
        mode: "latent" (judger reads only the latent columns), "text" (the judger's
            own prompt holds the fact and the question: the upper bound) or "none" (no edge).
            "text" is one prompt, so the bound does not depend on how a model copes
            with multi-turn caches.
        steps: Agent 1's latent steps.
    """
    if mode not in ("latent", "text", "none"):
        raise InvalidArgumentError(f"mode must be 'latent', 'text' or 'none', got {mode!r}")
    m = model.with_realigner(realigner) if realigner is not None else model
    hits, rows = 0, []
    for i in range(0, len(probes), batch_size):
        chunk = probes[i : i + batch_size]
        facts, questions = [p.extra["fact"] for p in chunk], [p.extra["question"] for p in chunk]
        if mode == "none":
            out = m.decode(None, questions, max_new_tokens=max_new_tokens)
        elif mode == "text":
            out = m.decode(None, [f"{f} {q}" for f, q in zip(facts, questions)], max_new_tokens=max_new_tokens)
        else:
            h = m.think(None, facts, steps=steps, agent="reader")
            out = m.decode(h, questions, max_new_tokens=max_new_tokens, memory="latent")
        k, r = _score(out.texts, chunk)
        hits, rows = hits + k, rows + r
    return {"accuracy": hits / len(probes), "n": len(probes), "examples": rows[:5]}


def cross_relay_probe(
    src_model: Any,
    dst_model: Any,
    adapter: AdapterRealigner,
    probes: list[Pair],
    *,
    steps: int = 4,
    max_new_tokens: int = 6,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Relay accuracy when agent 1 runs on ``src_model`` and the judger on ``dst_model``."""
    hits, rows = 0, []
    for i in range(0, len(probes), batch_size):
        chunk = probes[i : i + batch_size]
        h = src_model.think(None, [p.extra["fact"] for p in chunk], steps=steps, agent="reader")
        hd = cross_handoff(src_model, h, dst_model, adapter, agent="reader")
        out = dst_model.decode(hd, [p.extra["question"] for p in chunk], max_new_tokens=max_new_tokens)
        k, r = _score(out.texts, chunk)
        hits, rows = hits + k, rows + r
    return {"accuracy": hits / len(probes), "n": len(probes), "examples": rows[:5]}
