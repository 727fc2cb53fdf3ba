"""Which LangGraph task a node runs as: its graph node and, for ``Send`` tasks, its index.

``Send("worker", payload)`` runs the node ``worker`` once per payload; every such
task must keep its own branch. LangGraph tells a task where it sits through the
runnable config's *metadata* (``langgraph_node``, ``langgraph_path``: for a Send
task ``("__pregel_push", index, ...)``, nested for Sends from Send tasks); nothing
else of LangGraph is read. Outside a graph run there is no task: the node name is
the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PUSH = "__pregel_push"
"""First element of ``langgraph_path`` for tasks started by ``Send``."""
_KEY = re.compile(r"^(?P<name>.*)\[(?P<index>\d+(?:\.\d+)*)\]$")


def _ints(path: Any) -> list[int]:
    if isinstance(path, bool):
        return []
    if isinstance(path, int):
        return [path]
    if isinstance(path, (tuple, list)):
        return [i for p in path for i in _ints(p)]
    return []


def ambient(config: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``config``, or when None the config of the LangGraph task running now (a node called inside a
    functional-API ``@task`` without its config still learns which task it is); None outside a run."""
    if config is not None:
        return config
    try:
        from langgraph.config import get_config

        return get_config()
    except RuntimeError:  # not inside a runnable context
        return None


def send_index(config: Mapping[str, Any] | None) -> tuple[int, ...] | None:
    """The Send payload index (nested: one per level) of the running task, or None for a normal task."""
    meta = (ambient(config) or {}).get("metadata") or {}
    path = meta.get("langgraph_path") or ()
    if not path or path[0] != PUSH:
        return None
    return tuple(_ints(path[1:]))


def task_id(config: Mapping[str, Any] | None) -> str:
    """The running task's checkpoint namespace (``node:task id``), "" outside a graph run."""
    c = ambient(config) or {}
    return str(
        (c.get("metadata") or {}).get("langgraph_checkpoint_ns")
        or (c.get("configurable") or {}).get("checkpoint_ns")
        or ""
    )


def nested(config: Mapping[str, Any] | None) -> bool:
    """Whether the running task belongs to a graph that runs inside another graph (a subgraph node, or a graph
    a parent's node invoked): its checkpoint namespace has more than one level (LangGraph joins them with "|")."""
    return "|" in task_id(config)


def graph_node(config: Mapping[str, Any] | None, default: str) -> str:
    """The LangGraph node the running task belongs to (``default`` outside a graph run)."""
    meta = (ambient(config) or {}).get("metadata") or {}
    return str(meta.get("langgraph_node") or default)


def branch_key(name: str, config: Mapping[str, Any] | None) -> str:
    """``name`` for a normal task, ``name[i]`` for the i-th Send task (``name[i.j]`` when nested)."""
    index = send_index(config)
    if not index:
        return name
    return f"{name}[{'.'.join(str(i) for i in index)}]"


def key_order(key: str) -> tuple[str, tuple[int, ...]]:
    """Sort key of a branch key: by name, then Send index numerically (``w[2]`` before ``w[10]``)."""
    m = _KEY.match(key)
    if not m:
        return key, ()
    return m["name"], tuple(int(i) for i in m["index"].split("."))


def ordered(keys: Iterable[str]) -> list[str]:
    """Branch keys in their stable merge order."""
    return sorted(keys, key=key_order)
