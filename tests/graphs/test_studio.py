"""LangGraph Server / Studio: ``langgraph dev`` serves every graph of langgraph.json with pickle_fallback off.

Starts the in-memory dev server on 127.0.0.1 (a free port, bounded in time, stopped at the end),
then through ``langgraph_sdk``: every graph has an input schema, a run interrupted after its
first node resumes to an answer, and the handle in ``threads.get_state`` is plain JSON.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "langgraph.json").read_text())
pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the server's process: SIGTERM it when the test process dies (a killed pytest never reaches ``finally``)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def dev_server(work: Path, config: Path, env: dict[str, str], headers: dict[str, str] | None = None) -> Iterator[str]:
    """``langgraph dev`` on ``config`` (127.0.0.1, a free port), its URL once every graph is served; stopped after."""
    pytest.importorskip("langgraph_sdk")
    cli = Path(sys.executable).with_name("langgraph")
    if not cli.exists() or shutil.which("langgraph", path=str(cli.parent)) is None:
        pytest.skip("langgraph-cli is not installed (pip install -e '.[studio]')")
    port = _free_port()
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
        + ["--config", str(config)],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LATENT_GRAPH_LOG": "0", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        from langgraph_sdk import get_sync_client

        client = get_sync_client(url=url, headers=headers)
        deadline = time.time() + 240
        while True:
            try:
                if len(client.assistants.search()) >= len(CONFIG["graphs"]):
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"langgraph dev did not start: {(work / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from langgraph_sdk import get_sync_client

    with dev_server(tmp_path_factory.mktemp("studio"), ROOT / "langgraph.json", {}) as url:
        yield get_sync_client(url=url)


def test_config_turns_pickle_off():
    assert CONFIG["checkpointer"]["serde"]["pickle_fallback"] is False


def test_every_graph_has_schemas_and_a_run_resumes(server):
    ids = {a["graph_id"]: a["assistant_id"] for a in server.assistants.search()}
    assert set(ids) == set(CONFIG["graphs"])
    for graph_id, assistant in ids.items():
        schemas = server.assistants.get_schemas(assistant)
        assert "questions" in schemas["input_schema"]["properties"], graph_id
        assert "answers" in schemas["output_schema"]["properties"], graph_id
        assert "torch" not in json.dumps(schemas)
    cfg = {"configurable": {"steps": 1, "max_new_tokens": 8}}
    for graph_id in CONFIG["graphs"]:
        thread = server.threads.create()["thread_id"]
        drawn = server.assistants.get_graph(ids[graph_id])
        first = next(e["target"] for e in drawn["edges"] if e["source"] == "__start__")
        ran = server.runs.wait(
            thread, ids[graph_id], input={"questions": ["What is 2 plus 3?"]}, config=cfg, interrupt_after=[first]
        )
        paused = server.threads.get_state(thread)
        agents = [n for n in drawn["nodes"] if not n["id"].startswith("__")]
        if len(agents) == 1:  # a one-node graph has nothing left to resume
            assert ran["answers"], graph_id
            continue
        assert not paused["values"].get("answers") and paused["values"]["trace"], (graph_id, first, ran)
        handle = paused["values"].get("handle")
        if handle is not None:  # a latent first agent: its handle reference is plain JSON with content
            assert handle["latent_graph_ref"] == 1 and handle["columns"] > 0 and len(handle["digest"]) == 64
        out = server.runs.wait(thread, ids[graph_id], input=None, config=cfg)
        assert out["answers"] and out["answers"][0].strip(), graph_id
        final = server.threads.get_state(thread)["values"]
        assert json.loads(json.dumps(final)) == final


# ------------------------------------------------------------------ issue 32: authenticated users, handle namespaces
TOKENS = {"alice": "a" * 40, "bob": "b" * 40}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """The same server with the shipped ``auth`` handler (latent_graph/graphs/studio_auth.py) and a deployment key."""
    work = tmp_path_factory.mktemp("studio-auth")
    config = work / "langgraph.json"
    auth = {"path": f"{ROOT / 'latent_graph' / 'graphs' / 'studio_auth.py'}:auth"}
    config.write_text(json.dumps({**CONFIG, "dependencies": [str(ROOT)], "auth": auth}))
    env = {
        "LATENT_GRAPH_STUDIO_TOKENS": ",".join(f"{t}:{u}" for u, t in TOKENS.items()),
        "LATENT_GRAPH_KEYS": "deployment-secret-" + "s" * 32,
        "LATENT_GRAPH_CACHE": str(work / "cache"),
    }
    with dev_server(work, config, env, {"Authorization": f"Bearer {TOKENS['alice']}"}) as url:
        yield url, work / "cache" / "handles"


def test_a_handle_of_another_user_does_not_resolve(auth_server):
    """Bob passes Alice's handle reference as his input: refused by name, with one message whether or not it exists."""
    from langgraph_sdk import get_sync_client

    url, blobs = auth_server
    alice, bob = (get_sync_client(url=url, headers={"Authorization": f"Bearer {TOKENS[u]}"}) for u in ("alice", "bob"))
    with pytest.raises(Exception, match="Bearer <token>' is required"):
        get_sync_client(url=url, headers={"Authorization": "Bearer " + "c" * 40}).threads.create()
    graph = {a["graph_id"]: a["assistant_id"] for a in alice.assistants.search()}["sequential"]
    cfg = {"configurable": {"steps": 1, "max_new_tokens": 4}}
    thread = alice.threads.create()["thread_id"]
    alice.runs.wait(thread, graph, input={"questions": ["What is 2 plus 3?"]}, config=cfg, interrupt_after=["planner"])
    ref = alice.threads.get_state(thread)["values"]["handle"]  # the planner's handle
    assert ref["namespace"] == "user=alice" and ref["sig"]
    with pytest.raises(Exception, match="404|not found|Not Found"):
        bob.threads.get_state(thread)  # the auth handler keeps Bob out of Alice's thread

    def bob_runs_on(value) -> dict:
        mine = bob.threads.create()["thread_id"]
        out = bob.runs.wait(mine, graph, input={"questions": ["Hi?"], "handle": value}, config=cfg, raise_error=False)
        return out["__error__"]

    first = bob_runs_on(ref)
    assert first["error"] == "HandleNamespaceError", first
    for key in [ref["digest"], *ref["chunks"]]:
        (blobs / key[:2] / key).unlink()
    assert bob_runs_on(ref) == first  # the content gone: the same answer (no membership oracle)
    forged = bob_runs_on({**ref, "namespace": "user=bob"})
    assert forged["error"] == "HandleSignatureError", forged
