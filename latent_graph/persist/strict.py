"""Strict checkpoint loading: refuse every msgpack type outside an explicit allow-list.

Why: LangGraph's ``JsonPlusSerializer`` rebuilds objects from msgpack extension
records naming a module, a callable and its arguments. Its default is
permissive: a checkpoint row holding ``Ext(1, packb(["os", "system", [cmd]]))``
runs ``cmd`` when the checkpoint is read (``graph.get_state``, a resume...). In
its strict mode a blocked type is silently replaced by its raw arguments, so a
tampered checkpoint still loads (with wrong values).

:func:`check_payload` walks a msgpack payload *before* LangGraph decodes it,
without importing or calling anything, and raises
:class:`~latent_graph.errors.CheckpointSecurityError` when any record names a
type (or method) outside the allow-list. The allow-list is LangGraph's own
``SAFE_MSGPACK_TYPES`` (datetime, uuid, set, ``Send``, ``Command``, LangChain
messages...) plus the types a caller registers; latent handles never appear as
msgpack records (they are stored as plain marker dicts + safetensors chunks).
"""

from __future__ import annotations

from collections.abc import Iterable
from inspect import isclass
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES

from latent_graph.errors import CheckpointSecurityError

__all__ = ["SAFE_TYPES", "check_payload", "type_keys"]

SAFE_TYPES: frozenset[tuple[str, ...]] = frozenset(SAFE_MSGPACK_TYPES)
"""Types every latent_graph saver rebuilds: LangGraph's curated safe set, nothing else."""

# LangGraph's msgpack extension codes (langgraph.checkpoint.serde.jsonplus)
_CONSTRUCTORS = (0, 1, 2, 4, 5)  # single arg, positional, keyword, pydantic v1, pydantic v2
_METHOD = 3
_NESTED = 7  # delta snapshot: a msgpack value inside
_MAX_DEPTH = 64


def type_keys(types: Iterable[type | tuple[str, ...]]) -> frozenset[tuple[str, ...]]:
    """``(module, name)`` keys of classes (or keys given as tuples)."""
    keys: set[tuple[str, ...]] = set()
    for t in types:
        if isclass(t):
            keys.add((t.__module__, t.__name__))
        elif isinstance(t, tuple) and all(isinstance(x, str) for x in t):
            keys.add(t)
        else:
            raise TypeError(f"allowed types must be classes or (module, name) tuples, got {t!r}")
    return frozenset(keys)


def check_payload(payload: bytes, allowed: frozenset[tuple[str, ...]] | set[tuple[str, ...]]) -> None:
    """Raise :class:`CheckpointSecurityError` if ``payload`` names a type outside ``allowed``.

    Nothing is imported or called. Payloads that are not valid msgpack are left
    to the normal decoder (which reports them its own way).
    """
    blocked: list[str] = []
    depth = [0]

    def hook(code: int, data: bytes) -> Any:
        if code not in (*_CONSTRUCTORS, _METHOD, _NESTED):
            return None  # numpy arrays and unknown codes: data only, nothing is called
        depth[0] += 1
        try:
            if depth[0] > _MAX_DEPTH:
                blocked.append(f"<records nested deeper than {_MAX_DEPTH}>")
                return None
            inner = ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
        finally:
            depth[0] -= 1
        if code == _NESTED:
            return None
        name = _record_name(inner, code)
        if name is None:
            blocked.append(f"<malformed extension record {code}>")
        elif (code == _METHOD and name not in SAFE_MSGPACK_METHODS) or (code != _METHOD and name not in allowed):
            blocked.append(".".join(name))
        return None

    try:
        ormsgpack.unpackb(payload, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
    except (ValueError, TypeError):
        if not blocked:
            return  # not msgpack (or a broken record): the real decoder reports it
    if blocked:
        raise CheckpointSecurityError(
            f"checkpoint refused: it asks to rebuild {', '.join(sorted(set(blocked)))}, "
            "outside this serializer's allow-list; nothing was imported or run. If the type is "
            "yours and the checkpoint trusted, pass it in allowed_types=[...] when building the saver."
        )


def _record_name(inner: Any, code: int) -> tuple[str, ...] | None:
    """``(module, name)`` of a constructor record, ``(module, name, method)`` of a method record."""
    need = 4 if code == _METHOD else 3
    if not isinstance(inner, (list, tuple)) or len(inner) < need:
        return None
    parts = (inner[0], inner[1], inner[3]) if code == _METHOD else (inner[0], inner[1])
    if not all(isinstance(p, str) for p in parts):
        return None
    return tuple(parts)
