"""Issue 21 item 3: a hardened server (ASGI guard, question caps, cancelled work), then probes on Ray Serve.

The guard and worker tests run in-process; the probes start Ray Serve on 127.0.0.1
with a tiny model, keep every call bounded, measure the ingress/proxy RSS, and stop it.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import os
import socket
import sys
import time

import pytest

from latent_graph.serve import GraphWorker, Item, ServeConfig
from latent_graph.serve.guard import Limits, RequestGuard, json_depth
from latent_graph.serve.schema import AnswerRequest, parse, settings_of

from conftest import make_model

LIM = Limits(("127.0.0.1", "localhost", "::1"), (), 1000, 8)


async def _ok_app(scope, receive, send):
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(method="POST", headers=None, chunks=(b"{}",), lim=LIM):
    """(status, body, chunks the guard pulled) of one request through the guard."""
    pulled, sent = [0], []
    hdrs = {"host": "127.0.0.1:8000", "content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": "/v1/answer",
        "headers": [(k.encode(), v.encode()) for k, v in hdrs.items() if v is not None],
    }
    chunks = list(chunks)

    async def receive():
        i = pulled[0]
        pulled[0] += 1
        if i >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

    async def send(m):
        sent.append(m)

    asyncio.run(RequestGuard(_ok_app, lambda scope: lim)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), pulled[0]


def test_chunked_body_past_the_limit_is_refused_without_reading_on():
    status, body, pulled = _call(chunks=[b"x" * 400] * 10_000)  # 4 MB, no Content-Length
    assert status == 413 and json.loads(body)["error"] == "RequestTooLargeError"
    assert pulled == 3  # stopped at the chunk that crossed 1000 bytes; the rest was never read


def test_declared_length_past_the_limit_is_refused_before_reading():
    status, _, pulled = _call(headers={"content-length": "5000"})
    assert status == 413 and pulled == 0


def test_json_depth_limit():
    assert json_depth(b'{"a": "[[[[{{{{", "b": [[1]]}') == 3
    status, body, _ = _call(chunks=[b"[" * 9 + b"]" * 9])
    assert status == 422 and b"nested deeper" in body
    assert _call(chunks=[b"[" * 8 + b"]" * 8])[0] == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None, "multipart/form-data"])
def test_post_bodies_must_be_json(ctype):
    assert _call(headers={"content-type": ctype})[0] == 415
    assert _call(headers={"content-type": "application/json; charset=utf-8"})[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", ""])
def test_foreign_host_is_refused(host):
    assert _call(headers={"host": host})[0] == 421
    assert _call(headers={"host": "localhost:8000"})[0] == 200 and _call(headers={"host": "[::1]:8000"})[0] == 200


def test_origin_allow_list():
    assert _call(headers={"origin": "http://evil.example"})[0] == 403
    assert _call(headers={"origin": "null"})[0] == 403
    assert _call(headers={"origin": "http://localhost:3000"})[0] == 200
    mine = Limits(("api.example",), ("https://app.example",), 1000, 8)
    assert _call(headers={"host": "api.example", "origin": "https://app.example"}, lim=mine)[0] == 200
    assert _call(headers={"host": "api.example", "origin": "https://api.example"}, lim=mine)[0] == 403


def test_serve_config_caps_batches_by_max_questions():
    from latent_graph.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="max_questions"):
        ServeConfig(max_batch_size=16, max_questions=8)


def test_cli_sets_the_allow_lists():
    import argparse

    from latent_graph.cli import serve as cli_serve

    parser = argparse.ArgumentParser()
    cli_serve.register(parser.add_subparsers())
    cfg = cli_serve.config_of(
        parser.parse_args(["serve", "--allow-host", "api.example,localhost", "--allow-origin", "https://app.example"])
    )
    assert cfg.allowed_hosts == ("api.example", "localhost") and cfg.allowed_origins == ("https://app.example",)
    assert cli_serve.config_of(parser.parse_args(["serve"])).allowed_hosts == ("127.0.0.1", "localhost", "::1")


CFG = dict(steps=2, max_new_tokens=6, max_batch_size=4, batch_wait_timeout_s=0.05)


def test_worker_stops_a_cancelled_batch_at_an_agent_boundary():
    worker = GraphWorker(make_model("llama"), ServeConfig(**CFG))
    s = settings_of(parse(AnswerRequest, {"question": "q", "steps": 2}), worker.cfg)
    asked = []

    def cancelled() -> bool:
        asked.append(time.perf_counter())
        return len(asked) >= 2  # the client goes away after the first agent

    out = worker.run(s, [Item("What is 2+2?")], cancelled)
    assert out[0]["error"] == "RequestCancelledError" and out[0]["status"] == 499
    assert len(asked) == 2 and worker.cancelled == 1 and worker.runs == 0
    assert "answer" in worker.run(s, [Item("What is 2+2?")], lambda: False)[0]


# ------------------------------------------------------------------ Ray Serve probes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_rss_mb() -> dict[str, float]:
    """RSS (MB) of this session's Ray HTTP proxy and ingress actors, by process title."""
    import psutil

    out: dict[str, float] = {}
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            title = " ".join(p.cmdline())
            if "ProxyActor" in title or "Ingress" in title:
                key = "proxy" if "ProxyActor" in title else "ingress"
                out[key] = out.get(key, 0.0) + p.memory_info().rss / 2**20
        except psutil.Error:
            pass
    return out


def _raw(port: int, head: str, body_iter=(), timeout: float = 20.0) -> int:
    """Send a raw HTTP/1.1 request (chunked when body_iter is given); the status, or 0 if the server hung up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head.encode())
        if body_iter:
            try:
                for chunk in body_iter:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # refused mid-body: the server closed the connection
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        sock.close()


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed", exc_type=ImportError)
    from ray import cloudpickle

    from latent_graph.serve import ServeClient, start, stop

    cloudpickle.register_pickle_by_value(sys.modules[make_model.__module__])
    cfg = ServeConfig(
        model_factory=functools.partial(make_model, "llama"),
        port=_free_port(),
        max_body_bytes=20_000,
        max_tokens_limit=4096,
        max_steps=2048,
        **CFG,
    )
    url = start(cfg)
    try:
        yield ServeClient(url, timeout_s=60, retries=30), cfg
    finally:
        stop()


def test_server_probes_answer_4xx_and_memory_returns(served):
    client, cfg = served
    assert client.ask("What is 3+5?").status == 200
    port = cfg.port
    start = _ray_rss_mb()
    post = "POST /v1/answer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    statuses = {
        "chunked 8 MB": _raw(port, post + "Transfer-Encoding: chunked\r\n\r\n", [b"x" * 65536] * 128),
        "depth 1000": _raw(port, post + "Content-Length: 2000\r\n\r\n" + "[" * 1000 + "]" * 1000),
        "text/plain": _raw(port, post.replace("application/json", "text/plain") + "Content-Length: 2\r\n\r\n{}"),
        "foreign Host": _raw(port, post.replace("127.0.0.1", "evil.example") + "Content-Length: 2\r\n\r\n{}"),
        "foreign Origin": _raw(port, post + "Origin: http://evil.example\r\nContent-Length: 2\r\n\r\n{}"),
    }
    for _ in range(20):  # 160 MB of rejected chunked bodies
        statuses["chunked 8 MB"] = _raw(port, post + "Transfer-Encoding: chunked\r\n\r\n", [b"x" * 65536] * 128)
    time.sleep(1.0)
    end = _ray_rss_mb()
    grown = sum(end.values()) - sum(start.values())
    print(f"probes {statuses}; RSS before {start} after {end} MB: +{grown:.0f} MB (load {os.getloadavg()[0]:.1f})")
    assert statuses["chunked 8 MB"] in (413, 0)  # 413, or the connection closed mid-body after it
    assert statuses["depth 1000"] == 422 and statuses["text/plain"] == 415
    assert statuses["foreign Host"] == 421 and statuses["foreign Origin"] == 403
    assert grown < 50
    assert client.ask("What is 3+5?").status == 200


def test_abandoned_heavy_request_is_cancelled(served):
    client, cfg = served
    from latent_graph.serve import ServeClient

    health = client.health().body
    before, runs = health["cancelled"], health["runs"]
    heavy = json.dumps({"question": "Plan it.", "steps": 500, "max_new_tokens": 6})  # 3 agents x 500 latent steps
    sock = socket.create_connection(("127.0.0.1", cfg.port), timeout=5)
    sock.sendall(
        f"POST /v1/answer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(heavy)}\r\n\r\n{heavy}".encode()
    )
    time.sleep(1.0)
    sock.close()  # the client goes away
    gone = time.perf_counter()
    deadline = time.time() + 60
    while time.time() < deadline and client.health().body["cancelled"] == before:
        time.sleep(0.2)
    stopped = time.perf_counter() - gone
    light = time.perf_counter()
    assert ServeClient(client.base_url, timeout_s=60).ask("What is 3+5?").status == 200
    light = time.perf_counter() - light
    health = client.health().body
    print(
        f"abandoned heavy request stopped {stopped:.1f} s after its client left; next light request {light:.2f} s "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    assert health["cancelled"] == before + 1
    assert health["runs"] == runs + 1  # only the light request ran to the end


pytestmark = pytest.mark.reliability("attack")  # counted in the reliability summary (tests/conftest.py)
