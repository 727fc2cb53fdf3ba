"""An ASGI guard in front of the HTTP API: who may call it, what a body may be, how large and how deep.

Why at the ASGI level (before FastAPI reads anything): a body past the limit is
refused while it streams in, chunk by chunk, so at most ``max_body_bytes`` of it is
ever held (chunked bodies have no ``Content-Length`` to check up front). Checked,
in order, for every request:

- ``Host`` must name an allowed host (loopback names by default), so a page on
  another site cannot reach a localhost server through DNS rebinding (421);
- ``Origin``, when a browser sends one, must be an allowed origin (403): no
  cross-site request forgery from a web page;
- ``POST`` bodies must be ``application/json`` (415): browsers send ``text/plain``
  forms cross-site without a preflight;
- the body may hold at most ``max_body_bytes`` (413, read no further) and nest
  JSON at most ``max_json_depth`` deep (422, counted in one pass before parsing).

No Ray or FastAPI import: it wraps any ASGI app and is tested in-process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes, stop_above: int | None = None) -> int:
    """Deepest ``[``/``{`` nesting in ``body`` (brackets inside strings do not count); linear time.

    Strings are cut out and everything but brackets dropped (both in C) before the Python loop,
    which returns as soon as the depth passes ``stop_above``.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        else:
            depth -= 1
    return deepest


def host_of(value: str) -> str:
    """The host name of a ``Host`` header value (port and IPv6 brackets removed, lower case)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Limits:
    """The guard's settings (from :class:`~latent_graph.serve.config.ServeConfig`'s fields of the same names)."""

    def __init__(
        self, allowed_hosts: Iterable[str], allowed_origins: Iterable[str], max_body_bytes: int, max_json_depth: int
    ) -> None:
        self.hosts = {h.lower() for h in allowed_hosts}
        self.origins = {o.lower().rstrip("/") for o in allowed_origins}
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    @classmethod
    def of(cls, cfg: Any) -> Limits:
        return cls(cfg.allowed_hosts, cfg.allowed_origins, cfg.max_body_bytes, cfg.max_json_depth)

    def __call__(self, scope: Scope) -> Limits:
        """The same limits for every request (pass a :class:`Limits` as the guard's ``limits``)."""
        return self


class RequestGuard:
    """ASGI middleware enforcing the checks above; refusals are ``{"error", "message"}`` JSON bodies.

    Args:
        app: The wrapped ASGI app.
        limits: The :class:`Limits` of a request's scope (read when the request arrives, so a
            deployment can install its settings after the middleware was built).
    """

    def __init__(self, app: ASGIApp, limits: Callable[[Scope], Limits]) -> None:
        self.app = app
        self.limits = limits

    @staticmethod
    def origin_allowed(lim: Limits, origin: str) -> bool:
        """Listed origins only; with none listed, an http(s) origin on an allowed host (any port)."""
        origin = origin.lower().rstrip("/")
        if lim.origins:
            return origin in lim.origins or "*" in lim.origins
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in lim.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        lim = self.limits(scope)
        refusal = self.refusal(lim, scope, headers)
        if refusal is None and scope.get("method") == "POST":
            body, refusal = await self._read(lim, receive)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        await self.app(scope, receive, send)

    def refusal(self, lim: Limits, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        """(status, error name, message) for a request refused on its headers, else None."""
        host = host_of(headers.get("host", ""))
        if host not in lim.hosts and "*" not in lim.hosts:
            return 421, "HostNotAllowedError", f"Host {host[:80]!r} is not served here (allowed: {sorted(lim.hosts)})"
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(lim, origin):
            return 403, "OriginNotAllowedError", f"Origin {origin[:80]!r} may not call this server"
        if scope.get("method") == "POST":
            ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                return 415, "UnsupportedMediaTypeError", f"POST bodies must be application/json, got {ctype[:80]!r}"
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > lim.max_body_bytes):
                return 413, "RequestTooLargeError", f"body: at most {lim.max_body_bytes} bytes"
        return None

    async def _read(self, lim: Limits, receive: Receive) -> tuple[bytes, tuple[int, str, str] | None]:
        """The body, read chunk by chunk and abandoned as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", (499, "ClientDisconnectedError", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > lim.max_body_bytes:
                return b"", (413, "RequestTooLargeError", f"body: at most {lim.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body, lim.max_json_depth) > lim.max_json_depth:
            return b"", (422, "InvalidRequestError", f"body: JSON nested deeper than {lim.max_json_depth}")
        return body, None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then the real channel (disconnects)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _respond(send: Send, status: int, name: str, message: str) -> None:
    payload = json.dumps({"error": name, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


LIMITS_ENV = "LATENT_GRAPH_SERVE_LIMITS"
"""JSON of the :class:`Limits` Ray's HTTP proxy guards with (set by ``start`` before Ray starts)."""
PROXY_CALLBACK = "latent_graph.serve.guard:proxy_middlewares"
"""Import path given to Ray Serve as ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``."""


def limits_env(lim: Limits) -> str:
    return json.dumps(
        {
            "allowed_hosts": sorted(lim.hosts),
            "allowed_origins": sorted(lim.origins),
            "max_body_bytes": lim.max_body_bytes,
            "max_json_depth": lim.max_json_depth,
        }
    )


def proxy_middlewares() -> list[Any]:
    """Ray Serve's HTTP-proxy callback: the guard, so refused bodies are never read on by the proxy."""
    import os

    from starlette.middleware import Middleware

    raw = os.environ.get(LIMITS_ENV)
    return [] if not raw else [Middleware(RequestGuard, limits=Limits(**json.loads(raw)))]
