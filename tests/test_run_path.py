"""The measured run path of a default ``latent-graph run`` (benchmarks/run_path.py's hook) on a tiny model.

docs/design.md ("Following one prompt") lists the modules the default command enters on the
default model; this checks the same hook on a tiny random llama: at most 16 package modules
while the graph runs (question in -> answer printed), every call going up a layer made through
a declared Protocol callback, and the answer printed once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from latent_graph.engine.protocols import StepCallback
from conftest import make_model

ROOT = Path(__file__).resolve().parents[1]
MAX_IN_RUN = 16


def _run_path():
    spec = importlib.util.spec_from_file_location("run_path", ROOT / "benchmarks" / "run_path.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
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
    mp.setattr(cli, "load_model", lambda args: model)
    try:
        rc, t = rp.trace(lambda: cli.main(["run", "--max-new-tokens", "6", "What is 2 plus 3?"]))
    finally:
        mp.undo()
    return rp, rc, t


def test_default_run_enters_at_most_16_modules_while_the_graph_runs(traced) -> None:
    rp, rc, t = traced
    assert rc == 0
    mods = sorted(t.in_run)
    assert "latent_graph.present.console" in mods and "latent_graph.engine.model" in mods  # the hook saw the run
    assert len(mods) <= MAX_IN_RUN, f"{len(mods)} modules while the graph runs: {mods}"
    assert set(t.in_run) <= set(t.entered)
    detours = [m for m in mods if m.startswith(("latent_graph.present.draw", "latent_graph.present.runtrace",
                                                "latent_graph.persist.savers", "latent_graph.bench",
                                                "latent_graph.adapters", "latent_graph.graphs"))]
    assert detours == [], detours  # no drawing, trace, saver, registry or builder while the graph runs


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
