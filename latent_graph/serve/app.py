"""HTTP ingress (FastAPI on Ray Serve) and the Python API that deploys it.

Why an ingress in front of the replicas: it validates every request strictly
(before any model sees it), names every failure (``{"error", "message"}``
with a 4xx/5xx status), and turns a replica that died or is restarting into
HTTP 503 + ``Retry-After`` so clients can retry safely (runs are stateless and,
when greedy, deterministic). It holds no model and reserves no CPU.

Routes: ``POST /v1/answer``, ``POST /v1/stream`` (server-sent events),
``POST /v1/chat/completions`` (OpenAI-compatible, non-streaming),
``GET /v1/models``, ``GET /healthz``.

(No ``from __future__ import annotations`` here: FastAPI must see the real
``Request`` annotations of the ingress methods after Ray Serve rebinds them.)
"""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from latent_graph import LatentGraphError
from latent_graph.jsonl import parse_json
from latent_graph.serve.config import ServeConfig
from latent_graph.serve.errors import (
    InvalidRequestError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServiceUnavailableError,
    http_status,
)
from latent_graph.serve.guard import LIMITS_ENV, PROXY_CALLBACK, Limits, RequestGuard, limits_env
from latent_graph.serve.replica import GraphReplica
from latent_graph.serve.schema import (
    AnswerRequest,
    ChatRequest,
    answer_request_of_chat,
    chat_completion,
    parse,
    settings_of,
)
from latent_graph.serve.worker import Item, error_result

RETRY_AFTER_S = 1
RETRYABLE = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError, BackPressureError)
HTTP_NAMES = {404: "NotFoundError", 405: "MethodNotAllowedError"}

api = FastAPI(title="latent_graph", docs_url=None, redoc_url=None, openapi_url=None)


def _limits(scope: dict[str, Any]) -> Limits:
    """The deployment's guard limits (installed by :class:`Ingress`; defaults before that)."""
    return getattr(scope["app"].state, "limits", None) or Limits.of(ServeConfig())


api.add_middleware(RequestGuard, limits=_limits)  # Host/Origin, JSON only, streamed body and depth limits


def error_response(name: str, message: str, status: int) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"error": name, "message": message}, status_code=status, headers=headers)


@api.exception_handler(LatentGraphError)
async def _named_error(_: Request, exc: LatentGraphError) -> JSONResponse:
    return error_response(type(exc).__name__, " ".join(str(exc).split()), http_status(exc))


@api.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(HTTP_NAMES.get(exc.status_code, "HTTPError"), str(exc.detail), exc.status_code)


@api.exception_handler(RequestValidationError)
async def _schema_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response("InvalidRequestError", str(exc.errors()[:1]), 422)


@api.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    return error_response("InternalError", f"{type(exc).__name__} in the ingress", 500)


def _result_response(result: dict[str, Any]) -> JSONResponse:
    if "error" in result:
        return error_response(result["error"], result["message"], int(result["status"]))
    return JSONResponse(result)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@serve.deployment
@serve.ingress(api)
class Ingress:
    """Validates, forwards to a :class:`GraphReplica` and shapes the answer."""

    def __init__(self, replica: DeploymentHandle, cfg: ServeConfig) -> None:
        self.replica = replica
        self.cfg = cfg
        api.state.limits = Limits.of(cfg)

    async def _json(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.cfg.max_body_bytes):
            raise RequestTooLargeError(f"body: at most {self.cfg.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > self.cfg.max_body_bytes:
            raise RequestTooLargeError(f"body: at most {self.cfg.max_body_bytes} bytes")
        data = parse_json(body, InvalidRequestError, "body")  # depth already bounded by the guard
        if not isinstance(data, dict):
            raise InvalidRequestError("body: expected a JSON object")
        return data

    async def _call(self, response: Awaitable[Any], timeout_s: float | None = None) -> Any:
        """Await a replica call; a dead/restarting replica is a retryable 503, a slow one 504."""

        async def wait() -> Any:
            return await response

        try:
            return await asyncio.wait_for(wait(), timeout_s or self.cfg.request_timeout_s)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(f"no answer within {timeout_s or self.cfg.request_timeout_s:.0f} s") from None
        except RETRYABLE as exc:
            raise ServiceUnavailableError(f"replica unavailable ({type(exc).__name__}); retry") from None

    async def _answer(self, req: AnswerRequest) -> dict[str, Any]:
        settings = settings_of(req, self.cfg)
        item = Item(req.question, req.context, uuid.uuid4().hex)
        return await self._call(self.replica.answer.remote(settings, item))

    @api.post("/v1/answer")
    async def answer(self, request: Request) -> JSONResponse:
        """One question (+ private context, graph, edges, steps, sampling) → answer + run trace."""
        return _result_response(await self._answer(parse(AnswerRequest, await self._json(request))))

    @api.post("/v1/stream")
    async def stream(self, request: Request) -> StreamingResponse:
        """Server-sent events: ``latent_step``, ``token``, then ``done`` (or ``error``)."""
        req = parse(AnswerRequest, await self._json(request))
        settings = settings_of(req, self.cfg)
        gen = self.replica.options(stream=True).stream.remote(
            settings, Item(req.question, req.context, uuid.uuid4().hex)
        )

        async def events() -> AsyncIterator[str]:
            try:
                async for ev in gen:
                    yield _sse(ev["event"], ev["data"])
            except RETRYABLE as exc:
                yield _sse(
                    "error", error_result(ServiceUnavailableError(f"replica unavailable ({type(exc).__name__})"))
                )

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @api.post("/v1/chat/completions")
    async def chat(self, request: Request) -> JSONResponse:
        """OpenAI-compatible chat completion (non-streaming); ``model`` may name a served graph."""
        chat = parse(ChatRequest, await self._json(request))
        result = await self._answer(answer_request_of_chat(chat, self.cfg))
        if "error" in result:
            return _result_response(result)
        return JSONResponse(chat_completion(result, chat.model or "latent-graph", int(time.time())))

    @api.get("/v1/models")
    async def models(self) -> JSONResponse:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": g, "object": "model", "owned_by": "latent_graph"} for g in self.cfg.graphs],
            }
        )

    @api.get("/healthz")
    async def health(self) -> JSONResponse:
        info = await self._call(self.replica.health.remote(), timeout_s=10.0)
        return JSONResponse({k: v for k, v in info.items() if k != "pid"})


def build_app(cfg: ServeConfig) -> Any:
    """The Ray Serve application: ingress → model replica(s)."""
    replica = GraphReplica.options(**cfg.replica_options()).bind(cfg)
    return Ingress.options(**cfg.ingress_options()).bind(replica, cfg)


def start(cfg: ServeConfig, *, address: str | None = None, num_cpus: int = 2, blocking: bool = False) -> str:
    """Deploy ``cfg``; returns the base URL.

    Args:
        address: A running cluster (``ray start --head``; "auto" or "ray://host:10001"); None
            starts Ray in-process on this machine with ``num_cpus`` CPUs and no dashboard.
        blocking: Serve until interrupted (the CLI) instead of returning.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # The guard also runs in Ray's HTTP proxy itself (a cluster started here inherits these
    # variables): a refused body is not read on, so the proxy never holds more than the limit.
    # Importing latent_graph in the proxy (torch included) takes seconds on a busy machine: give the
    # proxy's readiness check room so it is not restarted while it imports.
    os.environ["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] = PROXY_CALLBACK
    os.environ[LIMITS_ENV] = limits_env(Limits.of(cfg))
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "120")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING")
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    serve.run(build_app(cfg), name=cfg.app_name, route_prefix="/", blocking=blocking)
    return f"http://{cfg.host}:{cfg.port}"


def replica_pid(cfg: ServeConfig) -> int:
    """Process id of a model replica (for tests and benchmarks that kill one)."""
    handle = serve.get_deployment_handle("GraphReplica", app_name=cfg.app_name)
    return int(handle.health.remote().result(timeout_s=30)["pid"])


def stop() -> None:
    """Tear down the Serve application and Ray (if connected)."""
    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
