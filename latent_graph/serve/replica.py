"""The model replica as a Ray Serve deployment: one process = one model + its graphs.

Why a deployment of its own (behind a separate HTTP ingress): Ray scales and
restarts replicas independently, each reserving the CPUs/GPUs of one model,
while the ingress stays up to validate requests and to turn a replica that died
mid-request into a retryable HTTP 503 instead of a hung or lost request.

Concurrent ``answer`` calls are coalesced by ``@serve.batch``; one batch may
mix settings, so it is split into groups of equal :class:`RunSettings` and each
group runs as one batched ``graph.invoke`` (in a worker thread, so the replica's
event loop keeps accepting requests and health checks meanwhile).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from latent_graph.serve.config import ServeConfig
from latent_graph.serve.schema import RunSettings
from latent_graph.serve.worker import GraphWorker, Item

_DONE = object()


@serve.deployment
class GraphReplica:
    """Holds one :class:`GraphWorker`; batch size and wait come from :class:`ServeConfig`."""

    def __init__(self, cfg: ServeConfig) -> None:
        import torch

        torch.set_num_threads(cfg.torch_threads or max(1, int(cfg.num_cpus)))
        try:
            replica_id = serve.get_replica_context().replica_tag
        except Exception:  # outside a Serve replica (unit use)
            replica_id = f"pid{os.getpid()}"
        self.worker = GraphWorker(cfg.load_model(), cfg, replica_id)
        self.gone: set[str] = set()  # request ids whose client went away (Ray Serve cancelled them)
        self.run_batch.set_max_batch_size(cfg.max_batch_size)
        self.run_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)

    async def answer(self, settings: RunSettings, item: Item) -> dict[str, Any]:
        """One request; coalesced with concurrent ones into a batch.

        When its client disconnects, Ray Serve cancels this call: the request is marked gone,
        and a batch whose every request is gone stops at its next agent boundary.
        """
        try:
            return await self.run_batch((settings, item))
        except asyncio.CancelledError:
            self.gone.add(item.request_id)
            raise

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def run_batch(self, requests: list[tuple[RunSettings, Item]]) -> list[dict[str, Any]]:
        groups: dict[RunSettings, list[int]] = {}
        for i, (settings, _) in enumerate(requests):
            groups.setdefault(settings, []).append(i)
        results: list[dict[str, Any]] = [{} for _ in requests]
        for settings, rows in groups.items():
            items = [requests[i][1] for i in rows]
            ids = {it.request_id for it in items}
            outs = await asyncio.to_thread(self.worker.run, settings, items, lambda ids=ids: ids <= self.gone)
            self.gone -= ids
            for i, out in zip(rows, outs):
                results[i] = out
        return results

    async def stream(self, settings: RunSettings, item: Item) -> AsyncIterator[dict[str, Any]]:
        """Events of one streamed run, as ``{"event", "data"}`` dicts (not batched)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(event: str, data: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, {"event": event, "data": data})

        def produce() -> None:
            try:
                self.worker.stream(settings, item, emit, cancelled)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        task = loop.run_in_executor(None, produce)
        try:
            while (event := await queue.get()) is not _DONE:
                yield event
        finally:
            cancelled.set()  # the client went away: stop at the next event
            await asyncio.shield(task)

    def health(self) -> dict[str, Any]:
        return {**self.worker.health(), "pid": os.getpid()}
