"""A small stdlib HTTP client for a served latent graph, with the retry rule the server expects.

Why: HTTP 503 (+ ``Retry-After``) means "no replica could take this right now"
(one died or is restarting); requests are stateless, so retrying them is safe.
The same rule applies to a dropped connection. Used by the tests, the
benchmark and as the reference for writing clients in other languages.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """One finished call: HTTP status, decoded JSON body and how many attempts it took."""

    status: int
    body: dict[str, Any]
    attempts: int = 1
    retry_after: str | None = None


class ServeClient:
    """Talks to ``latent-graph serve`` at ``base_url`` (e.g. ``http://127.0.0.1:8000``)."""

    def __init__(self, base_url: str, *, timeout_s: float = 120.0, retries: int = 8, max_wait_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_wait_s = max_wait_s

    def _request(self, path: str, body: Any | None) -> urllib.request.Request:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        return urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method="GET" if data is None else "POST"
        )

    def call(self, path: str, body: Any | None = None, *, retry: bool = True) -> Reply:
        """GET (no body) or POST ``body``; retries 503s and dropped connections when ``retry``."""
        attempts = 0
        while True:
            attempts += 1
            try:
                with urllib.request.urlopen(self._request(path, body), timeout=self.timeout_s) as resp:
                    return Reply(resp.status, json.loads(resp.read() or b"{}"), attempts)
            except urllib.error.HTTPError as err:
                reply = Reply(err.code, _json_or_text(err.read()), attempts, err.headers.get("Retry-After"))
                if not (retry and err.code == 503 and attempts <= self.retries):
                    return reply
                wait = float(reply.retry_after) if (reply.retry_after or "").isdigit() else 1.0
            except (ConnectionError, urllib.error.URLError, TimeoutError):
                if not (retry and attempts <= self.retries):
                    raise
                wait = 1.0
            time.sleep(min(wait, self.max_wait_s))

    def ask(self, question: str, **settings: Any) -> Reply:
        """``POST /v1/answer``."""
        return self.call("/v1/answer", {"question": question, **settings})

    def health(self) -> Reply:
        return self.call("/healthz", retry=False)

    def stream(self, question: str, **settings: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """``POST /v1/stream``: yields ``(event, data)`` server-sent events as they arrive."""
        req = self._request("/v1/stream", {"question": question, **settings})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            event = "message"
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    yield event, json.loads(line[len("data: ") :])


def _json_or_text(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
        return body if isinstance(body, dict) else {"body": body}
    except json.JSONDecodeError:
        return {"error": "HTTPError", "message": raw.decode("utf-8", "replace")[:500]}
