"""Named errors of the serving layer, and the HTTP status each one maps to.

Why: every failed request gets a JSON body ``{"error": ClassName, "message": ...}``
so clients can branch on the name; the status tells them whether to retry
(503 carries ``Retry-After``) or fix the request (4xx).
"""

from __future__ import annotations

from latent_graph import InvalidArgumentError, LatentGraphError


class InvalidRequestError(InvalidArgumentError):
    """The request body does not match the schema or exceeds a limit (HTTP 422)."""


class RequestTooLargeError(InvalidArgumentError):
    """The request body is larger than ``max_body_bytes`` (HTTP 413)."""


class RequestCancelledError(LatentGraphError, RuntimeError):
    """The client went away, so its run was stopped at the next agent boundary (HTTP 499, never sent)."""


class ServiceUnavailableError(LatentGraphError, RuntimeError):
    """No replica could take the request right now (it died or is restarting): retry (HTTP 503)."""


class RequestTimeoutError(LatentGraphError, TimeoutError):
    """The replica did not answer within ``request_timeout_s`` (HTTP 504)."""


def http_status(exc: BaseException) -> int:
    """The HTTP status of an error raised while serving a request."""
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, InvalidRequestError):
        return 422
    if isinstance(exc, RequestCancelledError):
        return 499
    if isinstance(exc, ServiceUnavailableError):
        return 503
    if isinstance(exc, RequestTimeoutError):
        return 504
    if isinstance(exc, LatentGraphError):
        return 400  # the graph refused the input (bad edges for this graph, context overflow...)
    return 500
