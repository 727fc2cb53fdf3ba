"""Merge the handles of parallel branches that grew from one shared prefix.

In a hierarchical graph, experts run as parallel branches on top of the same
prefix handle (possibly empty). The judger must see every branch, so their
caches are concatenated after the shared prefix:

    [prefix][branch 1 suffix][branch 2 suffix]...[judger prompt]

Positions: each branch suffix keeps the positions it was encoded at, so all
branches start right after the prefix and *share* a position range (like
parallel context windows). Keys are never re-rotated, so nothing is silently
inconsistent; the judger continues after the highest position of any branch.
Branch columns do not attend to each other — they were computed independently —
but every later column attends to all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from latent_graph.engine.handle import LatentHandle, Segment
from latent_graph.errors import InvalidArgumentError


def merge_branches(prefix: LatentHandle | None, branches: Sequence[LatentHandle]) -> LatentHandle:
    """Concatenate branch suffixes after their shared ``prefix`` (None = empty prefix)."""
    if not branches:
        raise InvalidArgumentError("merge_branches needs at least one branch handle")
    first = branches[0]
    p = prefix.seq_len if prefix is not None else 0
    for b in branches:
        first.fingerprint.check(b.fingerprint)
        if b.batch_size != first.batch_size:
            raise InvalidArgumentError("branch handles have different batch sizes")
        if b.seq_len < p or (prefix is not None and tuple(b.segments[: len(prefix.segments)]) != prefix.segments):
            raise InvalidArgumentError("a branch handle does not start with the shared prefix")
    if len(branches) == 1:
        return first
    n_prefix_seg = len(prefix.segments) if prefix is not None else 0
    n_prefix_lat = sum(1 for s in prefix.segments if s.kind == "latent") if prefix is not None else 0

    def cat(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
        return torch.cat(parts, dim=dim)

    keys = tuple(
        cat([first.keys[i][:, :, :p]] + [b.keys[i][:, :, p:] for b in branches], 2) for i in range(first.num_layers)
    )
    values = tuple(
        cat([first.values[i][:, :, :p]] + [b.values[i][:, :, p:] for b in branches], 2) for i in range(first.num_layers)
    )
    mask = cat([first.attention_mask[:, :p]] + [b.attention_mask[:, p:] for b in branches], 1)
    pos = cat([first.position_ids[:, :p]] + [b.position_ids[:, p:] for b in branches], 1)
    segments: list[Segment] = list(first.segments[:n_prefix_seg])
    latents = list(first.latents[:n_prefix_lat])
    hiddens = list(first.hiddens[:n_prefix_lat])
    offset = p
    for b in branches:
        for s in b.segments[n_prefix_seg:]:
            segments.append(Segment(s.agent, s.kind, s.start - p + offset, s.end - p + offset, s.dropped))
        latents.extend(b.latents[n_prefix_lat:])
        hiddens.extend(b.hiddens[n_prefix_lat:])
        offset += b.seq_len - p
    base_prompt = prefix.prompt_tokens if prefix is not None else 0
    base_steps = prefix.latent_steps if prefix is not None else 0
    base_gen = prefix.generated_tokens if prefix is not None else 0
    return replace(
        first,
        keys=keys,
        values=values,
        attention_mask=mask,
        position_ids=pos,
        segments=tuple(segments),
        latents=tuple(latents),
        hiddens=tuple(hiddens),
        last_hidden=None,
        prompt_tokens=base_prompt + sum(b.prompt_tokens - base_prompt for b in branches),
        latent_steps=base_steps + sum(b.latent_steps - base_steps for b in branches),
        generated_tokens=base_gen + sum(b.generated_tokens - base_gen for b in branches),
    )
