"""Serve a latent graph to many concurrent users over HTTP with Ray Serve (``latent-graph serve``).

Topology: an HTTP ingress (validation, named errors, retryable 503s) in front
of model replicas; one replica = one :class:`~latent_graph.LocalLatentModel`
and its compiled graphs, so every agent of a run stays on the model that built
its latent handles. Concurrent requests with equal settings are batched into
one ``graph.invoke``. See docs/serving.md.

Ray is optional (``pip install "latent-graph[serve]"``): the config, the client
and :class:`GraphWorker` import without it; ``start`` / ``build_app`` need it.

    from latent_graph.serve import ServeConfig, ServeClient, start
    url = start(ServeConfig(max_batch_size=8, steps=4, max_new_tokens=64))
    print(ServeClient(url).ask("What is 12 times 7?").body["answer"])
"""

from __future__ import annotations

from typing import Any

from latent_graph.serve.client import Reply, ServeClient
from latent_graph.serve.config import SERVABLE_GRAPHS, ServeConfig
from latent_graph.serve.worker import GraphWorker, Item

_RAY_NAMES = ("build_app", "start", "stop", "replica_pid")

__all__ = ["SERVABLE_GRAPHS", "GraphWorker", "Item", "Reply", "ServeClient", "ServeConfig", *_RAY_NAMES]


def __getattr__(name: str) -> Any:
    """``start``, ``stop``, ``build_app``, ``replica_pid`` import Ray only when first used."""
    if name in _RAY_NAMES:
        from latent_graph.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'latent_graph.serve' has no attribute {name!r}")
