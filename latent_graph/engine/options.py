"""The one owner of the engine's settings, their defaults and their checks.

Every layer above (nodes, prebuilt graphs, the chat-model face, bench, CLI)
takes its decoding defaults from :class:`DecodeOptions` and validates steps and
memory policies with :func:`check_steps` / :func:`check_memory`, so a default or
an error message is written exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch

from latent_graph.errors import (
    BatchSizeMismatchError,
    InvalidArgumentError,
    InvalidStepsError,
    NonFiniteLatentError,
    ResourceLimitError,
    TextTooLongError,
)

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


@dataclass(frozen=True)
class GrammarLimits:
    """How large a decoding constraint may be (a model's are ``model.limits.grammar``, see :class:`EngineLimits`).

    Attributes:
        max_schema_chars: Characters of one JSON schema's text.
        max_depth: Nesting of JSON objects/arrays in one schema's text.
        max_enum: Values of one ``enum`` (and options of one ``choice``).
        max_properties: Properties of one object schema.
        max_regex_chars: Characters of one regular expression (a ``pattern`` inside a schema too).
        max_ebnf_chars: Characters of one EBNF grammar (and of one ``choice``'s options together).
        max_ebnf_rules: Rules (``::=``) of one EBNF grammar.
        max_literal_chars: Characters of one literal (``text``).
        max_parts: Nodes of one constraint tree (``concat``/``union`` parts and their leaves, counted).
        compile_seconds: Wall-clock budget of parsing and compiling one constraint.
        max_cached: Compiled grammars a model keeps (least recently used go first).
    """

    max_schema_chars: int = 100_000
    max_depth: int = 64
    max_enum: int = 4096
    max_properties: int = 256
    max_regex_chars: int = 4096
    max_ebnf_chars: int = 65_536
    max_ebnf_rules: int = 1024
    max_literal_chars: int = 4096
    max_parts: int = 256
    compile_seconds: float = 10.0
    max_cached: int = 64

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(f"GrammarLimits.{name} must be a positive number, got {value!r}")


CHARS_PER_POSITION = 16
"""Default character cap of one text per position of the context window: a text this long cannot fit (English
averages about 4 characters per token), so it is refused before tokenizing costs memory."""


@dataclass(frozen=True)
class EngineLimits:
    """Resource caps of every engine call, checked before anything is tokenized or allocated.

    A model holds one (``model.limits``; replace it to change a cap: ``model.limits = EngineLimits(max_rows=4096)``).
    The graph builders' ``max_questions`` stays the tighter, friendlier cap; these hold for every caller of the
    engine. Past a cap: :class:`~latent_graph.errors.ResourceLimitError`.

    Attributes:
        max_rows: Batch rows of one call (prompts, chats, rows of tool results or embeddings).
        max_text_chars: Characters of one text fed to the model (a prompt, a system message, a chat message,
            a tool result), checked before it is tokenized (its tokens are then checked against the context
            window); None: :data:`CHARS_PER_POSITION` per position of the model's context window.
        max_cache_bytes: K/V bytes one call may reserve: rows x columns (the handle's, the input's and the
            reserve) x the model's bytes per column, checked before the buffers are allocated.
        grammar: The bounds of decoding constraints (:class:`GrammarLimits`, checked by
            :mod:`latent_graph.engine.decode.limits` before compiling).
    """

    max_rows: int = 1024
    max_text_chars: int | None = None
    max_cache_bytes: int = 8 * 2**30
    grammar: GrammarLimits = field(default_factory=GrammarLimits)

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_text_chars", "max_cache_bytes"):
            value = getattr(self, name)
            if name == "max_text_chars" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"EngineLimits.{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.grammar, GrammarLimits):
            raise InvalidArgumentError(f"EngineLimits.grammar must be a GrammarLimits, got {self.grammar!r}")

    def check_rows(self, rows: int, what: str) -> None:
        """:class:`ResourceLimitError` if one call has more than :attr:`max_rows` rows."""
        if rows > self.max_rows:
            raise ResourceLimitError(f"{rows} {what} in one call exceed EngineLimits.max_rows={self.max_rows}")

    def check_texts(self, texts: Any, what: str, context: int) -> None:
        """:class:`~latent_graph.errors.TextTooLongError` if a text of ``texts`` is longer than :attr:`max_text_chars` (before
        tokenizing; ``context``: the model's window, which the default cap is derived from)."""
        cap = self.max_text_chars or CHARS_PER_POSITION * context
        for text in texts:
            if isinstance(text, str) and len(text) > cap:
                raise TextTooLongError(
                    f"a {what} of {len(text)} characters exceeds the cap of {cap} (EngineLimits.max_text_chars; "
                    f"default {CHARS_PER_POSITION} per position of the context window), checked before tokenizing"
                )

    def check_reserve(self, rows: int, columns: int, column_bytes: int, what: str) -> None:
        """:class:`ResourceLimitError` if ``rows`` x ``columns`` K/V columns exceed :attr:`max_cache_bytes`."""
        need = rows * columns * column_bytes
        if need > self.max_cache_bytes:
            raise ResourceLimitError(
                f"{what}: {rows} rows x {columns} columns x {column_bytes} bytes = {need} bytes of K/V "
                f"exceed EngineLimits.max_cache_bytes={self.max_cache_bytes} (checked before allocating)"
            )


def limits_of(model: Any) -> EngineLimits:
    """``model.limits``, or the defaults for a model object that has none."""
    limits = getattr(model, "limits", None)
    return limits if isinstance(limits, EngineLimits) else EngineLimits()


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
