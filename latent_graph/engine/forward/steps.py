"""The latent-step loop: a hidden state realigned and fed back as the next input, ``steps`` times.

Each step: last hidden state (B, H) → the model's realigner → ``inputs_embeds`` (B, 1, H) → one forward
of the *base* model through the call's :class:`~latent_graph.engine.forward.work.Work` (no lm_head, no
vocab logits). The realigned vectors become the agent's ``latent`` segment, frozen into the new handle.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.engine.forward.feed import Fed
from latent_graph.engine.handle import LatentHandle
from latent_graph.engine.options import check_finite
from latent_graph.engine.protocols import StepCallback
from latent_graph.engine.results import StepInfo


def latent_steps(model: Any, fed: Fed, steps: int, agent: str, on_step: StepCallback | None = None) -> LatentHandle:
    """Take ``steps`` latent steps from the fed hidden state and freeze the result into a new handle (the caller
    runs it under ``torch.no_grad``)."""
    work, h = fed.work, fed.hidden  # (B, H)
    ones = work.ones(work.mask.shape[0])
    thoughts, hiddens = [], []
    for i in range(steps):
        e = model.realigner(h.to(model.device))  # (B, H) (h comes from the last layer's device)
        if on_step is not None:  # a callback may look at it: check now (else once at the end, no sync per step)
            check_finite(e, f"agent {agent!r} latent step {i}")
        h_next = work.forward(model.decoder, ones, model.layer, inputs_embeds=e[:, None].to(model.dtype))[:, -1]
        if on_step is not None:
            on_step(StepInfo(agent, i, h, e))
        thoughts.append(e)
        hiddens.append(h)
        h = h_next
    if steps:
        latents = torch.stack(thoughts, dim=1)  # (B, steps, H)
        check_finite(latents, f"agent {agent!r} latent step", steps_dim=1)
        work.add_segment(agent, "latent", steps)
        work.latents.append(latents)
        work.hiddens.append(torch.stack(hiddens, dim=1))  # (B, steps, H)
        work.latent_steps += steps
    return work.freeze(h)
