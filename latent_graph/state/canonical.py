"""Channel values whose pickle depends on their content alone, so LangGraph's default node cache key hits.

``CachePolicy()``'s default key is ``pickle.dumps`` of the node's input (the state dict, as the channels hold
it). Pickle writes a string, list or dict once and refers back to it wherever the *same object* appears again,
so two equal states pickle differently when their objects are shared differently: a node's fresh output (a
segment's agent name that is also the trace record's ``node``, a one-character token that is CPython's shared
object) against the same output read back from the cache (every value a new object, keys from msgpack's key
cache). Every value the package's channels hold is therefore rebuilt by :func:`canonical`: every string interned
(one object per distinct string, so sharing follows equality), containers new, tuples as the lists a serializer
gives back. Equal content, equal pickle; in another process too (``SqliteCache``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from langgraph.channels import LastValue


def canonical(value: Any) -> Any:
    """``value`` rebuilt so that its pickle depends on its content only (see the module docstring)."""
    if isinstance(value, str):
        return sys.intern(value if type(value) is str else str.__str__(value))
    if isinstance(value, dict):
        return {canonical(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


class CanonicalValue(LastValue):  # type: ignore[type-arg]
    """LangGraph's ``LastValue`` channel holding :func:`canonical` values (one write per step, as ``LastValue``)."""

    def update(self, values: Sequence[Any]) -> bool:
        changed = super().update(values)
        if changed:
            self.value = canonical(self.value)
        return changed

    def from_checkpoint(self, checkpoint: Any) -> CanonicalValue:
        channel = super().from_checkpoint(checkpoint)
        if channel.is_available():
            channel.value = canonical(channel.value)
        return channel
