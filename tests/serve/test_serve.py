"""latent_graph.serve: validation and batching without Ray, then the real service on Ray Serve.

The Ray part starts Ray in-process (2 CPUs, no dashboard) once for the module,
serves a tiny random model on 127.0.0.1 only, and keeps every call bounded by
a client timeout. It is skipped, with the reason, when ``ray[serve]`` is not
installed.
"""

from __future__ import annotations

import functools
import json
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from latent_graph.cli import main as cli_main
from latent_graph.serve import GraphWorker, Item, ServeClient, ServeConfig
from latent_graph.serve.errors import InvalidRequestError
from latent_graph.serve.schema import AnswerRequest, ChatRequest, answer_request_of_chat, parse, settings_of

CFG = dict(
    steps=2,
    max_new_tokens=6,
    max_batch_size=4,
    batch_wait_timeout_s=0.2,
    max_question_chars=2000,
    default_graph="sequential",
)  # these tests exercise the four-agent chain
RAY_MISSING = "ray[serve] is not installed (pip install 'latent-graph[serve]')"


def settings(cfg: ServeConfig, **body: object):
    return settings_of(parse(AnswerRequest, {"question": "q", **body}), cfg)


# ---------------------------------------------------------------- without Ray
@pytest.mark.parametrize(
    "body",
    [
        {"question": 3},
        {"question": ""},
        {"question": "   "},
        {"question": "x", "steps": True},
        {"question": "x", "steps": -1},
        {"question": "x", "steps": 999},
        {"question": "x", "graph": "os:system"},
        {"question": "x", "edges": ["latent", "bogus"]},
        {"question": "x", "edges": []},
        {"question": "x", "top_p": 0},
        {"question": "x", "max_new_tokens": 10**6},
        {"question": "x", "extra": 1},
        {"question": "x" * 2001},
        {"question": "x", "context": ["not", "a", "string"]},
        {"question": "x", "seed": "1"},
    ],
)
def test_bad_requests_are_named_errors(body: dict) -> None:
    with pytest.raises(InvalidRequestError):
        settings_of(parse(AnswerRequest, body), ServeConfig(**CFG))


def test_every_graph_option_reaches_the_served_graph(tiny_factory) -> None:
    """A request may set every GraphOptions field (kv_keep included): it lands in the settings and the graph."""
    from latent_graph.graphs import GraphOptions
    from latent_graph.serve.schema import REQUEST_OPTIONS

    cfg = ServeConfig(**CFG)
    body = dict(
        steps=3,
        memory="last",
        max_new_tokens=5,
        message_tokens=7,
        temperature=0.5,
        top_p=0.9,
        seed=3,
        task="plain",
        inspect=2,
        kv_keep=0.5,
        kv_budget=40,
        cache_budget=90,
    )
    assert set(body) == set(REQUEST_OPTIONS)  # a new option must be added here: it is served too
    s = settings(cfg, **body)
    assert s.options == GraphOptions(**body, max_questions=cfg.max_questions)
    assert {k: s.graph_kwargs()[k] for k in body} == body
    for bad in (
        {"kv_keep": 0.0},
        {"kv_keep": 1.5},
        {"kv_budget": 0},
        {"cache_budget": -1},
        {"memory": "most"},
        {"message_tokens": 10**6},
        {"inspect": 10**6},
        {"kv_keep": "0.5"},
    ):
        with pytest.raises(InvalidRequestError):
            settings(cfg, **bad)
    worker = GraphWorker(tiny_factory("llama"), cfg)
    s = settings(cfg, kv_keep=0.5, steps=2)
    out = worker.run(s, [Item("What is 3+5?", None, "a")])[0]
    assert "error" not in out and out["settings"]["kv_keep"] == 0.5
    assert worker.graph(s).builder.nodes["planner"].runnable.kv_keep == 0.5  # the served graph compresses
    chat = parse(ChatRequest, {"kv_keep": 0.5, "messages": [{"role": "user", "content": "hi"}]})
    assert answer_request_of_chat(chat, cfg).kv_keep == 0.5


def test_equal_settings_are_equal_keys_and_others_are_not() -> None:
    cfg = ServeConfig(**CFG)
    assert settings(cfg) == settings(cfg, steps=2, edges="latent")
    assert (
        len(
            {
                settings(cfg),
                settings(cfg, steps=3),
                settings(cfg, temperature=0.5),
                settings(cfg, graph="single"),
                settings(cfg, edges=["latent", "text", "latent"]),
            }
        )
        == 5
    )


def test_worker_batch_matches_rows_alone_and_isolates_a_bad_row(tiny_factory) -> None:
    cfg = ServeConfig(**CFG)
    worker = GraphWorker(tiny_factory("llama", ctx=1200), cfg)  # room for two 128-token text messages
    s = settings(cfg, edges=["latent", "text", "latent"])
    items = [Item("What is 3+5?", None, "a"), Item("What is 12 times 7?", "secret", "b")]
    batched = worker.run(s, items)
    alone = [worker.run(s, [it])[0] for it in items]
    assert [r["answer"] for r in batched] == [r["answer"] for r in alone]
    assert [r["request_id"] for r in batched] == ["a", "b"] and batched[0]["batch_size"] == 2
    assert batched[1]["trace"][0]["prompts"][0].count("secret") == 1 and len(batched[1]["trace"][0]["prompts"]) == 1
    too_long = Item("apples " * 900, None, "c")  # overflows the 1200-token context window
    mixed = worker.run(s, [items[0], too_long])
    assert mixed[0]["answer"] == alone[0]["answer"]
    assert mixed[1]["error"] == "ContextOverflowError" and mixed[1]["status"] == 400


def test_worker_checkpoints_each_run_to_its_own_sqlite_file(tiny_factory, tmp_path) -> None:
    worker = GraphWorker(tiny_factory("llama"), ServeConfig(checkpoint_dir=str(tmp_path), **CFG), "replica/1")
    with ThreadPoolExecutor(1) as pool:  # replicas run graphs in worker threads
        out = pool.submit(worker.run, settings(worker.cfg), [Item("What is 3+5?"), Item("What is 2+2?")]).result()
    assert "error" not in out[0] and out[1]["checkpoint"]["row"] == 1
    assert out[0]["checkpoint"]["file"] == "replica_1.sqlite" and (tmp_path / "replica_1.sqlite").stat().st_size > 0
    graph = worker.graph(settings(worker.cfg))
    state = graph.get_state({"configurable": {"thread_id": out[0]["checkpoint"]["thread_id"]}})
    assert state.values["answers"] == [out[0]["answer"], out[1]["answer"]]


def test_chat_request_maps_to_answer_request_and_rejects_an_empty_question() -> None:
    cfg = ServeConfig(**CFG)
    chat = parse(
        ChatRequest,
        {
            "model": "single",
            "max_tokens": 5,
            "messages": [
                {"role": "system", "content": "notes"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "What is 3+5?"},
            ],
        },
    )
    req = answer_request_of_chat(chat, cfg)
    assert (req.question, req.graph, req.max_new_tokens) == ("What is 3+5?", "single", 5)
    assert req.context == "notes\nuser: hi\nassistant: yo"
    with pytest.raises(InvalidRequestError):
        answer_request_of_chat(parse(ChatRequest, {"messages": [{"role": "user", "content": ""}]}), cfg)


def test_cli_registers_serve_and_rejects_bad_settings(capsys) -> None:
    assert cli_main(["serve", "--autoscale", "3,1"]) == 2
    assert "InvalidArgumentError" in capsys.readouterr().err
    assert cli_main(["serve", "--graphs", "sequential,nope"]) == 2


# ------------------------------------------------------------------ with Ray
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tiny_factory) -> Iterator[tuple[ServeClient, ServeConfig]]:
    pytest.importorskip("ray.serve", reason=RAY_MISSING, exc_type=ImportError)
    from ray import cloudpickle

    from latent_graph.serve import start, stop

    cloudpickle.register_pickle_by_value(sys.modules[tiny_factory.__module__])  # replicas build the tiny model
    cfg = ServeConfig(
        model_factory=functools.partial(tiny_factory, "llama"), port=_free_port(), max_body_bytes=20_000, **CFG
    )
    url = start(cfg)
    try:
        yield ServeClient(url, timeout_s=60, retries=30), cfg
    finally:
        stop()


@pytest.fixture(scope="module")
def local(tiny_factory) -> GraphWorker:
    return GraphWorker(tiny_factory("llama"), ServeConfig(**CFG))


def test_health_and_answer_equal_in_process(served, local) -> None:
    client, cfg = served
    health = client.health()
    assert health.status == 200 and health.body["model"] == "tiny-llama-s0" and "pid" not in health.body
    reply = client.ask("What is 3+5?", context="secret", steps=1)
    expected = local.run(settings(cfg, steps=1), [Item("What is 3+5?", "secret")])[0]
    assert reply.status == 200 and reply.body["answer"] == expected["answer"]
    assert [r["node"] for r in reply.body["trace"]] == ["planner", "critic", "refiner", "judger"]


def test_http_errors_are_named_and_the_replica_survives(served) -> None:
    client, _ = served
    cases = [
        (client.call("/v1/answer", b"{nope", retry=False), 422, "InvalidRequestError"),
        (client.call("/v1/answer", [1, 2], retry=False), 422, "InvalidRequestError"),
        (client.ask("x", graph="evil"), 422, "InvalidRequestError"),
        (client.call("/v1/answer", {"question": "x" * 30_000}, retry=False), 413, "RequestTooLargeError"),
        (client.ask("x", edges=["latent", "text"]), 400, "InvalidArgumentError"),
        (client.call("/v1/nothing"), 404, "NotFoundError"),
    ]
    for reply, status, name in cases:
        assert (reply.status, reply.body["error"]) == (status, name) and reply.body["message"]
    assert client.ask("What is 3+5?").status == 200


def test_concurrent_requests_batch_but_never_mix_settings(served, local) -> None:
    client, cfg = served
    jobs = [("What is 3+5?", 1), ("What is 2+2?", 2), ("What is 12 times 7?", 1), ("What is 9-4?", 2)] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        replies = list(pool.map(lambda j: client.ask(j[0], steps=j[1]), jobs))
    assert all(r.status == 200 for r in replies)
    for (question, steps), r in zip(jobs, replies):
        assert r.body["settings"]["steps"] == steps
        assert all(rec["latent_steps"] == steps for rec in r.body["trace"] if rec["kind"] == "latent")
        assert r.body["answer"] == local.run(settings(cfg, steps=steps), [Item(question)])[0]["answer"]
    assert max(r.body["batch_size"] for r in replies) > 1  # coalesced by @serve.batch


def test_stream_sends_latent_steps_tokens_then_done(served) -> None:
    client, _ = served
    events = list(client.stream("What is 3+5?", steps=2))
    names = [e for e, _ in events]
    assert names.count("latent_step") == 6 and "token" in names and names[-1] == "done"
    tokens = "".join(d["text"] for e, d in events if e == "token" and d["node"] == "judger")
    assert tokens == events[-1][1]["answer"]


def test_openai_chat_completions(served) -> None:
    client, _ = served
    reply = client.call(
        "/v1/chat/completions",
        {
            "model": "single",
            "max_tokens": 4,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 3+5?"}],
        },
    )
    assert reply.status == 200 and reply.body["object"] == "chat.completion"
    assert isinstance(reply.body["choices"][0]["message"]["content"], str)
    assert reply.body["latent_graph"]["graph"] == "single"
    bad = client.call("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert bad.status == 422 and bad.body["error"] == "InvalidRequestError"


def test_killed_replica_gives_retryable_503_then_recovers(served) -> None:
    import os
    import signal

    from latent_graph.serve import replica_pid

    client, cfg = served
    no_retry = ServeClient(client.base_url, timeout_s=60, retries=0)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(no_retry.ask, f"What is {i}+1?", max_new_tokens=40) for i in range(4)]
        time.sleep(0.3)
        os.kill(replica_pid(cfg), signal.SIGKILL)
        first = [f.result(timeout=90) for f in futures]
    assert all(r.status in (200, 503) for r in first), [(r.status, r.body) for r in first]
    for r in first:
        if r.status == 503:
            assert r.retry_after and r.body["error"] == "ServiceUnavailableError"
    again = client.ask("What is 3+5?")  # retries until the restarted replica answers
    assert again.status == 200, json.dumps(again.body)[:300]
