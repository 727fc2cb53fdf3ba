"""The one owner of the engine's settings, their defaults and their checks.

Every layer above (nodes, prebuilt graphs, the chat-model face, bench, CLI)
takes its decoding defaults from :class:`DecodeOptions` and validates steps and
memory policies with :func:`check_steps` / :func:`check_memory`, so a default or
an error message is written exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch

from latent_graph.errors import BatchSizeMismatchError, InvalidArgumentError, InvalidStepsError, NonFiniteLatentError

MemoryPolicy = Literal["all", "last", "latent"]
MEMORY_POLICIES: tuple[str, ...] = ("all", "last", "latent")
"""What of an incoming handle an agent reads: every column, the previous agent's only, latent segments only."""
DEFAULT_MEMORY: MemoryPolicy = "all"
"""What an agent reads of the incoming handle unless told otherwise: all of it."""

DEFAULT_STEPS = 8
"""Latent steps a latent agent takes when nobody says otherwise."""


@dataclass(frozen=True)
class DecodeOptions:
    """How the judger (or a text agent) generates text.

    Attributes:
        max_new_tokens: Generation budget per row (>= 1).
        temperature: 0 = greedy; > 0 samples.
        top_p: Nucleus mass in (0, 1]; 1 = off.
        seed: Makes sampling reproducible (None = unseeded).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        check_sampling(self.temperature, self.top_p, self.max_new_tokens)
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
            raise InvalidArgumentError(f"seed must be an int in [0, 2**64) or None, got {seed!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def pick(cls, options: dict[str, Any]) -> DecodeOptions:
        """Options from a mapping that may hold other keys too (those are ignored)."""
        return cls(**{k: options[k] for k in cls.names() if k in options})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_steps(steps: Any) -> int:
    """``steps`` if it is an int >= 0, else :class:`InvalidStepsError`."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise InvalidStepsError(f"steps must be an int >= 0, got {steps!r}")
    return steps


def check_memory(memory: Any) -> MemoryPolicy:
    """``memory`` if it is a known policy, else :class:`InvalidArgumentError`."""
    if memory not in MEMORY_POLICIES:
        raise InvalidArgumentError(f"unknown memory policy {memory!r}; choose one of {MEMORY_POLICIES}")
    return memory


def check_sampling(temperature: float, top_p: float, max_new_tokens: int) -> None:
    """Named errors for a bad temperature, top_p or generation budget."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise InvalidArgumentError(f"temperature must be >= 0, got {temperature!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise InvalidArgumentError(f"top_p must be in (0, 1], got {top_p!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InvalidArgumentError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")


def check_finite(t: torch.Tensor, where: str, steps_dim: int | None = None) -> None:
    """:class:`NonFiniteLatentError` if ``t`` holds NaN/inf; with ``steps_dim``, names the first bad index along it."""
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return
    if steps_dim is not None:
        bad = (~finite).movedim(steps_dim, 0).flatten(1).any(dim=1)
        where = f"{where} {int(bad.nonzero()[0])}"
    raise NonFiniteLatentError(f"{where} contains NaN or infinity")


def check_embeds(embeds: Any, hidden_size: int, batch: int | None = None) -> None:
    """Named errors unless ``embeds`` is a (B >= 1, n >= 1, ``hidden_size``) tensor with ``batch`` rows (if given)."""
    if (
        not isinstance(embeds, torch.Tensor)
        or embeds.dim() != 3
        or embeds.shape[-1] != hidden_size
        or 0 in embeds.shape
    ):
        raise InvalidArgumentError(
            f"embeds must be a (B >= 1, n >= 1, {hidden_size}) tensor, got {getattr(embeds, 'shape', embeds)!r}"
        )
    if batch is not None and embeds.shape[0] != batch:
        raise BatchSizeMismatchError(f"{embeds.shape[0]} rows of embeddings for a handle of batch {batch}")


DECODE_CALL_KEYS = ("agent", "system", "memory", "constraint", "messages", "tools")
"""``decode`` keyword arguments that are not :class:`DecodeOptions` fields."""


def split_decode_kwargs(kwargs: dict[str, Any]) -> tuple[DecodeOptions, dict[str, Any]]:
    """``decode`` keyword arguments as (decoding options, call arguments); unknown names are an error."""
    unknown = set(kwargs) - set(DecodeOptions.names()) - set(DECODE_CALL_KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown decode arguments: {sorted(unknown)}; known: {[*DECODE_CALL_KEYS, *DecodeOptions.names()]}"
        )
    call = {k: kwargs[k] for k in DECODE_CALL_KEYS if k in kwargs}
    return DecodeOptions.pick(kwargs), call
