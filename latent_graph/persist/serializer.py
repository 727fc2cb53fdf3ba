"""LangGraph checkpointing for graphs whose state holds latent handles.

Why: LangGraph's default serializer rejects tensors, and its ``pickle_fallback``
executes code on load. :class:`LatentSerializer` is a ``JsonPlusSerializer``
(no pickle) that additionally knows :class:`~latent_graph.engine.handle.LatentHandle`:
wherever a handle sits in what LangGraph asks it to serialize (a channel value,
inside dicts/lists/tuples, dataclasses, ``Send`` packets, pending writes, or the
whole checkpoint dict that ``SqliteSaver`` serializes in one piece) it is
replaced by a small marker holding its manifest, and its tensors go to a
:class:`ChunkStore` as content-addressed safetensors chunks (see
:mod:`latent_graph.persist.handle_format`).

LangGraph stores the live channel values at every superstep (SqliteSaver even
re-serializes all of them), plus each task's pending writes. A run's handles
share their prefix columns bitwise, so with chunks the shared cache prefix is
stored once, and total checkpoint bytes stay close to the final handle's bytes.

Savers using it: :mod:`latent_graph.persist.savers`; chunk stores:
:mod:`latent_graph.persist.stores`.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Send

from latent_graph.engine import LatentHandle
from latent_graph.errors import HandleFormatError
from latent_graph.persist.chunks import handle_from_store, handle_to_store
from latent_graph.persist.handle_format import handle_from_bytes, handle_to_bytes
from latent_graph.persist.stores import ChunkStore
from latent_graph.persist.strict import SAFE_TYPES, check_payload, type_keys

__all__ = ["MANIFEST_KEY", "TYPE_TAG", "LatentSerializer"]

TYPE_TAG = "latent_graph.msgpack"
"""Type string of blobs that contain handle markers (msgpack underneath)."""

MANIFEST_KEY = _MANIFEST = "__latent_graph_handle__"  # marker key: handle stored as chunks + manifest
_INLINE = "__latent_graph_handle_bytes__"  # marker key: handle stored whole, inline


# -------------------------------------------------------------- serializer
class LatentSerializer(JsonPlusSerializer):
    """LangGraph serializer: JsonPlus (never pickle) + latent handles via safetensors.

    Values without handles are serialized exactly as ``JsonPlusSerializer()``
    does. Values containing handles get the type tag :data:`TYPE_TAG`: msgpack
    in which each handle is a marker dict holding its manifest's chunk key (or, with
    ``chunk_store=None``, its whole :func:`~latent_graph.persist.handle_format.handle_to_bytes`
    blob). Handles are found inside dicts, lists, tuples, dataclasses and
    ``Send`` packets; they come back as lists where msgpack makes lists anyway.

    Loading is strict (:mod:`latent_graph.persist.strict`): a payload naming any
    type outside LangGraph's safe set plus ``allowed_types`` raises
    :class:`~latent_graph.errors.CheckpointSecurityError` before anything is
    imported or called. ``with_msgpack_allowlist`` clones (LangGraph's strict
    mode) extend the allow-list and share the chunk store.

    Args:
        chunk_store: Where handle chunks go; None stores every handle whole,
            inline in each blob (no sharing: the naive cost).
        device: Device loaded handles are put on; CPU when None.
        allowed_types: Extra classes (or ``(module, name)`` tuples) that
            checkpoints may rebuild, e.g. dataclasses your state holds.
        **kwargs: Passed to ``JsonPlusSerializer``; ``pickle_fallback`` and a permissive
            msgpack allow-list (``allowed_msgpack_modules`` set to True) are refused.
    """

    def __init__(
        self,
        chunk_store: ChunkStore | None = None,
        *,
        device: str | Any | None = None,
        allowed_types: Iterable[type | tuple[str, ...]] = (),
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("pickle_fallback", False):
            raise ValueError("LatentSerializer never uses pickle; drop pickle_fallback")
        if kwargs.get("allowed_msgpack_modules") is True:
            raise ValueError("LatentSerializer is strict; list the types checkpoints may rebuild in allowed_types")
        extra = set(type_keys(allowed_types)) | set(type_keys(kwargs.pop("allowed_msgpack_modules", None) or ()))
        super().__init__(pickle_fallback=False, allowed_msgpack_modules=tuple(extra) or None, **kwargs)
        self.chunk_store = chunk_store
        self.device = device
        # handle -> manifest key, so a handle serialized again (every superstep) is not re-chunked
        self._stored: weakref.WeakKeyDictionary[LatentHandle, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.handles_dumped = 0
        self.handle_bytes_dumped = 0  # sum of handle.nbytes over every handle serialized

    # ---- protocol
    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        encoded = self._encode(obj)
        if encoded is obj:
            return super().dumps_typed(obj)
        _, data = super().dumps_typed(encoded)
        return TYPE_TAG, data

    @property
    def allowed_types(self) -> frozenset[tuple[str, ...]]:
        """``(module, name)`` of every type checkpoints may rebuild."""
        extra = self._allowed_msgpack_modules
        return SAFE_TYPES | frozenset(extra) if isinstance(extra, set) else SAFE_TYPES

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ in ("msgpack", TYPE_TAG) and isinstance(payload, (bytes, bytearray, memoryview)):
            check_payload(bytes(payload), self.allowed_types)
        if type_ != TYPE_TAG:
            return super().loads_typed(data)
        try:
            raw = super().loads_typed(("msgpack", payload))
            return self._decode(raw)
        except HandleFormatError:
            raise
        except Exception as exc:
            raise HandleFormatError(
                f"corrupt checkpoint blob holding latent handles ({len(payload)} bytes): {type(exc).__name__}: {exc}"
            ) from exc

    # ---- handles
    def _store(self, handle: LatentHandle) -> dict[str, Any]:
        with self._lock:
            self.handles_dumped += 1
            self.handle_bytes_dumped += handle.nbytes
        if self.chunk_store is None:
            return {_INLINE: handle_to_bytes(handle)}
        with self._lock:
            key = self._stored.get(handle)
        if key is None:
            store = self.chunk_store
            key = handle_to_store(handle, store.put, store.__contains__)
            with self._lock:
                self._stored[handle] = key
        return {_MANIFEST: key}

    def _load(self, marker: dict[str, Any]) -> LatentHandle:
        if _INLINE in marker:
            return handle_from_bytes(marker[_INLINE], device=self.device)
        if self.chunk_store is None:
            raise HandleFormatError("checkpoint refers to latent handle chunks but this serializer has no chunk store")
        key = marker[_MANIFEST]
        handle = handle_from_store(key, self.chunk_store.get, device=self.device)
        with self._lock:
            self._stored[handle] = key  # a resumed run re-serializes it without re-chunking
        return handle

    def forget(self, keys: set[str]) -> None:
        """Drop cached handle -> manifest entries whose chunks were collected (they are re-chunked if seen again)."""
        with self._lock:
            for handle, key in list(self._stored.items()):
                if key in keys:
                    del self._stored[handle]

    # ---- walking
    def _encode(self, obj: Any) -> Any:
        """``obj`` with handles replaced by markers; ``obj`` itself when it holds none."""
        return _walk(obj, lambda x: self._store(x) if isinstance(x, LatentHandle) else None)

    def _decode(self, obj: Any) -> Any:
        def visit(x: Any) -> Any:
            if isinstance(x, dict) and len(x) == 1 and (_MANIFEST in x or _INLINE in x):
                return self._load(x)
            return None

        return _walk(obj, visit)


def _walk(obj: Any, visit: Callable[[Any], Any]) -> Any:
    """Rebuild containers whose leaves ``visit`` replaces (it returns None to keep a leaf).

    Returns ``obj`` itself (same identity) when nothing was replaced.
    """
    hit = visit(obj)
    if hit is not None:
        return hit
    if isinstance(obj, dict):
        new = {k: _walk(v, visit) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else _same_type(obj, new)
    if isinstance(obj, (list, tuple)):
        items = [_walk(v, visit) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        if _is_namedtuple(obj):
            return type(obj)(*items)
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, Send):
        arg = _walk(obj.arg, visit)
        if arg is obj.arg:
            return obj
        return Send(obj.node, arg, timeout=getattr(obj, "timeout", None))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _walk_dataclass(obj, visit)
    return obj


def _same_type(old: dict[Any, Any], new: dict[Any, Any]) -> dict[Any, Any]:
    if type(old) is dict:
        return new
    try:
        return type(old)(new)
    except Exception:
        return new


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _walk_dataclass(obj: Any, visit: Callable[[Any], Any]) -> Any:
    changed = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        new = _walk(value, visit)
        if new is not value:
            changed[f.name] = new
    if not changed:
        return obj
    clone = copy.copy(obj)
    for name, value in changed.items():
        object.__setattr__(clone, name, value)  # works for frozen dataclasses too
    return clone
