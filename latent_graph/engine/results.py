"""What the engine hands back: per-step info, streamed tokens and decode results."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latent_graph.engine.handle import LatentHandle


@dataclass(frozen=True)
class StepInfo:
    """What one latent step produced (passed to ``on_step`` callbacks).

    Attributes:
        agent: The agent taking the step.
        step: 0-based step index.
        hidden: (B, H) hidden state the step started from.
        embedding: (B, H) realigned vector fed as the next input.
    """

    agent: str
    step: int
    hidden: torch.Tensor
    embedding: torch.Tensor


@dataclass(frozen=True)
class TokenChunk:
    """One generated token of one batch row, with its decoded text delta.

    Attributes:
        row: Batch row the token belongs to.
        token_id: The token id; -1 for the last chunk of a row that carries only text held back (the bytes of its
            last character never completed).
        text: The text it adds to that row's output ("" while a character split across tokens is incomplete;
            it comes whole with the token that completes it).
    """

    row: int
    token_id: int
    text: str


@dataclass(frozen=True)
class Decoded:
    """Result of :meth:`~latent_graph.engine.model.LocalLatentModel.decode`.

    Attributes:
        texts: Generated text per row.
        handle: The input handle + this prompt + the generated tokens (a "text" segment).
        new_tokens: Number of tokens generated per row (EOS excluded).
        prompt_tokens: Real (unpadded) prompt tokens fed per row.
    """

    texts: list[str]
    handle: LatentHandle
    new_tokens: list[int]
    prompt_tokens: list[int]

    @property
    def text(self) -> str:
        """The first row's text (the usual single-question case)."""
        return self.texts[0]
