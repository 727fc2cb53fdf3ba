"""The measured run path of a default ``latent-graph run`` (benchmarks/run_path.py's hook) on a tiny model.

docs/design.md ("Following one prompt") lists the modules the default command enters on the
default model; this checks the same hook on a tiny random llama: while the graph runs (question
in -> answer printed) only the 26 modules listed in :data:`IN_RUN` are entered (the issue's goal
of 16 is not met), and every call going up a layer is made through a declared Protocol callback.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from latent_graph.engine import StepCallback

from conftest import make_model

ROOT = Path(__file__).resolve().parents[2]
IN_RUN = {  # every module a default run enters while the graph runs, and its one job there
    "latent_graph.present.console": "streams the graph, prints the answer tokens and progress",
    "latent_graph.nodes.latent": "a latent agent: think, pass the handle on",
    "latent_graph.nodes.base": "what every agent shares: inputs from state, prompt, handle out, the step callback",
    "latent_graph.nodes.text": "the judger: decode the answer",
    "latent_graph.nodes.streaming": "latent-step events (custom stream) and the judger's tokens (messages stream)",
    "latent_graph.state.schema": "questions, inbox and transcript of the state, and its reducers",
    "latent_graph.state.access": "any state type as a dict; the conversation in 'messages' (none here: no reply)",
    "latent_graph.state.trace": "one trace record per node run",
    "latent_graph.state.threads": "what a reused thread carries over (a stale handle is dropped)",
    "latent_graph.state.branches": "which LangGraph task a node runs as (trace fields, Send keys)",
    "latent_graph.persist.refs": "handles in state by reference (the one-shot run's live store)",
    "latent_graph.engine.model": "think and decode",
    "latent_graph.engine.faces": "decode from the engine's decode_iter (what every engine shares)",
    "latent_graph.engine.forward.feed": "the one feed: prompt tokens on top of a cache (context check, segment, count)",
    "latent_graph.engine.forward.steps": "the latent-step loop (realign, feed back, freeze)",
    "latent_graph.engine.forward.work": "one call's scratch state on top of a handle, the positioned forward",
    "latent_graph.engine.forward.kvbuffer": "the preallocated KV cache the model writes",
    "latent_graph.engine.forward.llama": "the Llama forward without per-module dispatch (bit-equal to transformers')",
    "latent_graph.engine.handle": "the immutable handle (memory policy, positions)",
    "latent_graph.engine.prompt.turn": "the agent's chat turn, user text tokenized literally",
    "latent_graph.engine.prompt.literal": "the tokenizer's private backends (thread-safe literal tokenization)",
    "latent_graph.engine.realign.base": "the realigner of every latent step",
    "latent_graph.engine.decode.loop": "the generation loop",
    "latent_graph.engine.decode.schedule": "which rows decode now (continuous batching: a freed slot takes the next row)",
    "latent_graph.graphs.base": "the compiled graph checks the run config (thread ids) before the saver sees it",
    "latent_graph.engine.options": "argument and finiteness checks, decode options",
}


def _run_path():
    spec = importlib.util.spec_from_file_location("run_path", ROOT / "benchmarks" / "run_path.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["run_path"] = mod  # its dataclass looks its module up
    spec.loader.exec_module(mod)
    return mod


RP = _run_path()
SEEN: list[str] = []


@pytest.fixture(scope="module")
def traced():
    import latent_graph.cli as cli

    rp = RP
    model = make_model("llama")
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "load_from_args", lambda args: model)
    try:
        rc, t = rp.trace(lambda: cli.main(["run", "--max-new-tokens", "6", "What is 2 plus 3?"]))
    finally:
        mp.undo()
    return rp, rc, t


def test_default_run_enters_only_the_listed_modules_while_the_graph_runs(traced) -> None:
    rp, rc, t = traced
    assert rc == 0
    mods = sorted(t.in_run)
    assert "latent_graph.present.console" in mods and "latent_graph.engine.model" in mods  # the hook saw the run
    extra = [m for m in mods if m not in IN_RUN]
    assert extra == [], f"new modules on the run path (a detour?): {extra}"
    assert len(mods) <= len(IN_RUN) == 26, f"{len(mods)} modules while the graph runs: {mods}"
    assert set(t.in_run) <= set(t.entered)
    detours = [
        m
        for m in mods
        if m.startswith(
            (
                "latent_graph.present.draw",
                "latent_graph.present.runtrace",
                "latent_graph.persist.handle_store",
                "latent_graph.bench",
                "latent_graph.adapters",
                "latent_graph.graphs.registry",
                "latent_graph.graphs.roles",
                "latent_graph.graphs.compact",
                "latent_graph.graphs.sequential",
                "latent_graph.graphs.hierarchical",
                "latent_graph.graphs.studio",
            )
        )
    ]
    assert detours == [], detours  # no drawing, trace, saver, registry or builder while the graph runs
    # (graphs.base is entered: its CheckedGraph checks the run config before the saver sees it)


def test_every_upward_call_is_a_declared_protocol_callback(traced) -> None:
    rp, _, t = traced
    assert t.up, "the latent steps and the streamed tokens reach the nodes through callbacks"
    undeclared = {k: n for k, n in t.up.items() if k[3] == rp.UNDECLARED}
    assert undeclared == {}, undeclared
    assert {k[3] for k in t.up} <= {"StepCallback", "TokenCallback"}


def _callback(info: object) -> None:
    SEEN.append(RP._protocol(sys._getframe(1), _callback.__code__))


def _declared(on_step: StepCallback) -> None:
    on_step(None)  # type: ignore[arg-type]


def _undeclared(on_step) -> None:  # noqa: ANN001
    on_step(None)


def test_the_hook_tells_a_protocol_callback_from_an_undeclared_call() -> None:
    """The check can fail: a callee the caller did not receive through a Protocol-typed parameter is UNDECLARED."""
    SEEN.clear()
    _declared(_callback)
    _undeclared(_callback)
    assert SEEN == ["StepCallback", RP.UNDECLARED]
