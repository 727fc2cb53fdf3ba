"""Settings of a served latent graph, and how they map onto Ray Serve's own options.

Why one frozen dataclass: the same settings travel from the CLI (or Python
caller) to the HTTP ingress (request limits, defaults) and to every model
replica (which model to load, batching), so they must be picklable and
immutable. Nothing here imports Ray: the mapping returns plain dicts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from latent_graph.engine import DEFAULT_PREFIX_BYTES, LatentModel, check_quantization, load_model
from latent_graph.errors import InvalidArgumentError
from latent_graph.graphs import DEFAULT_GRAPH, GRAPHS, GraphOptions
from latent_graph.state.schema import MAX_QUESTIONS

SERVABLE_GRAPHS: tuple[str, ...] = tuple(GRAPHS)
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
"""``Host`` names a server answers by default."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``latent-graph serve`` needs.

    Attributes:
        model: "default" (embedded SmolLM2-135M), a local HF folder or a hub id already on disk.
        model_factory: Instead of ``model``: a zero-argument callable (or "module:attr") that
            returns a :class:`LatentModel` (either engine); it runs inside each replica process.
        dtype, device: Passed to the model loader (``device`` defaults to "cuda" when
            ``num_gpus > 0``).
        realign: A realigner spec of ``REALIGNERS`` ("soft:k=8" ...), None = the model's default (ridge).
        quantization: "4bit", "8bit" (bitsandbytes, CPU or GPU) or None.
        engine, threads: "transformers" | "llamacpp" (None: llamacpp for a .gguf model) and llama.cpp's threads.
        prefix_cache_bytes: Byte budget of each replica's shared-prefix cache (0 = off).
        graphs: Graph names clients may ask for (a subset of :data:`SERVABLE_GRAPHS`).
        default_graph: The graph of requests that name none: the registry's
            :data:`~latent_graph.graphs.DEFAULT_GRAPH` (as on the CLI) when served, else the first of ``graphs``.
        steps, max_new_tokens, task: Defaults for requests that leave them out.
        max_steps, max_tokens_limit, max_question_chars, max_context_chars, max_body_bytes:
            Hard request limits (larger requests get 422/413).
        max_batch_size, batch_wait_timeout_s: Ray Serve request batching (``@serve.batch``).
        num_replicas: Fixed replica count, or None with ``autoscale=(min, max)``.
        autoscale: (min_replicas, max_replicas) for Ray's autoscaler, or None.
        target_ongoing_requests: Autoscaling target per replica.
        num_cpus, num_gpus: Ray resources per model replica (one replica = one model).
        torch_threads: torch intra-op threads per replica (default: ``max(1, num_cpus)``).
        request_timeout_s: The ingress gives up (504) after this long.
        checkpoint_dir: If set, every replica checkpoints its runs to
            ``<dir>/<replica>.sqlite`` (see docs/serving.md); None = no checkpoints.
        host, port: HTTP bind address (loopback by default).
        allowed_hosts: ``Host`` header names the server answers (others get 421: no DNS rebinding);
            loopback names by default, add your public name when binding elsewhere; "*" = any.
        allowed_origins: Browser ``Origin`` values allowed to call (others get 403: no CSRF); empty =
            http(s) origins on an allowed host; "*" = any.
        max_json_depth: Deepest JSON nesting a body may have (deeper gets 422).
        max_questions: Questions one graph invocation (a replica batch) may carry; at least ``max_batch_size``.
        app_name: Ray Serve application name.
    """

    model: str = "default"
    model_factory: Callable[[], LatentModel] | str | None = None
    dtype: str | None = None
    device: str | None = None
    realign: str | None = None
    quantization: str | None = None
    engine: str | None = None
    threads: int | None = None
    prefix_cache_bytes: int = DEFAULT_PREFIX_BYTES
    graphs: tuple[str, ...] = SERVABLE_GRAPHS
    default_graph: str = ""
    steps: int = GraphOptions.steps
    max_new_tokens: int = GraphOptions.max_new_tokens
    task: str = GraphOptions.task
    max_steps: int = 64
    max_tokens_limit: int = 1024
    max_question_chars: int = 4000
    max_context_chars: int = 16000
    max_body_bytes: int = 64_000
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.05
    num_replicas: int | None = 1
    autoscale: tuple[int, int] | None = None
    target_ongoing_requests: float = 8.0
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    torch_threads: int | None = None
    request_timeout_s: float = 300.0
    checkpoint_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    allowed_origins: tuple[str, ...] = ()
    max_json_depth: int = 32
    max_questions: int = MAX_QUESTIONS
    app_name: str = "latent_graph"
    extra_actor_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_quantization(self.quantization)
        unknown = set(self.graphs) - set(SERVABLE_GRAPHS)
        checks = [
            (
                bool(self.graphs) and not unknown,
                f"graphs must be a non-empty subset of {SERVABLE_GRAPHS}, got {self.graphs}",
            ),
            (0 <= self.steps <= self.max_steps, f"steps must be in [0, max_steps={self.max_steps}], got {self.steps}"),
            (
                1 <= self.max_new_tokens <= self.max_tokens_limit,
                f"max_new_tokens must be in [1, {self.max_tokens_limit}], got {self.max_new_tokens}",
            ),
            (self.max_batch_size >= 1, f"max_batch_size must be >= 1, got {self.max_batch_size}"),
            (self.batch_wait_timeout_s >= 0, f"batch_wait_timeout_s must be >= 0, got {self.batch_wait_timeout_s}"),
            (
                (self.num_replicas is None) != (self.autoscale is None),
                "give exactly one of num_replicas or autoscale=(min, max)",
            ),
            (
                self.num_replicas is None or self.num_replicas >= 1,
                f"num_replicas must be >= 1, got {self.num_replicas}",
            ),
            (
                self.autoscale is None or 0 <= self.autoscale[0] <= self.autoscale[1] and self.autoscale[1] >= 1,
                f"autoscale must be (min, max) with 0 <= min <= max, max >= 1, got {self.autoscale}",
            ),
            (self.num_cpus >= 0 and self.num_gpus >= 0, "num_cpus and num_gpus must be >= 0"),
            (0 < self.port < 65536, f"port must be in 1..65535, got {self.port}"),
            (bool(self.allowed_hosts), 'allowed_hosts must name at least one host (or "*")'),
            (self.max_json_depth >= 2, f"max_json_depth must be >= 2, got {self.max_json_depth}"),
            (
                self.max_batch_size <= self.max_questions,
                f"max_batch_size ({self.max_batch_size}) must be <= max_questions ({self.max_questions})",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise InvalidArgumentError(msg)
        if not self.default_graph:  # frozen: set the resolved default once
            object.__setattr__(self, "default_graph", DEFAULT_GRAPH if DEFAULT_GRAPH in self.graphs else self.graphs[0])
        if self.default_graph not in self.graphs:
            raise InvalidArgumentError(f"default_graph {self.default_graph!r} must be one of graphs {self.graphs}")

    # ------------------------------------------------------------------ Ray
    def replica_options(self) -> dict[str, Any]:
        """``serve.deployment(...)`` options of the model replica deployment."""
        opts: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, **self.extra_actor_options},
            # room for a full batch waiting while the previous one runs
            "max_ongoing_requests": max(2 * self.max_batch_size, 16),
            "health_check_period_s": 2.0,
            "graceful_shutdown_timeout_s": 5.0,
        }
        if self.autoscale is not None:
            opts["autoscaling_config"] = {
                "min_replicas": self.autoscale[0],
                "max_replicas": self.autoscale[1],
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            opts["num_replicas"] = self.num_replicas
        return opts

    def ingress_options(self) -> dict[str, Any]:
        """Options of the light HTTP ingress (no model, no CPU reservation)."""
        return {"ray_actor_options": {"num_cpus": 0}, "max_ongoing_requests": 1024, "num_replicas": 1}

    # --------------------------------------------------------------- model
    def load_model(self) -> LatentModel:
        """Build this replica's model (called inside the replica process)."""
        factory = self.model_factory
        if isinstance(factory, str):
            mod, _, attr = factory.partition(":")
            try:
                factory = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError, ValueError) as exc:
                raise InvalidArgumentError(f"model_factory {self.model_factory!r}: cannot import it") from exc
        if factory is not None:
            model = factory()
            if not isinstance(model, LatentModel):
                raise InvalidArgumentError(f"model_factory returned {type(model).__name__}, not a LatentModel")
            return model
        device = self.device or ("cuda" if self.num_gpus > 0 else None)
        return load_model(
            self.model,
            engine=self.engine,
            threads=self.threads,
            dtype=self.dtype,
            device=device,
            realign=self.realign,
            quantization=self.quantization,
        )
