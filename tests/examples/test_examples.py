"""Every script in examples/ runs on a tiny model, so the examples never rot."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_examples():
    assert {p.stem for p in EXAMPLES} >= {
        "custom_graph",
        "streaming",
        "resume_checkpoint",
        "html_report",
        "send_map_reduce",
        "subgraph",
        "loop",
        "multi_turn",
        "tool_agent",
        "node_cache",
        "runtime_context",
        "messages_state",
        "pydantic_state",
        "supervisor",
        "prebuilt_agent",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_on_a_tiny_model(path, llama, tmp_path, capsys):
    module = _load(path)
    assert module.__doc__ and callable(getattr(module, "main", None)), f"{path.name} needs a docstring and main()"
    kwargs = dict(model=llama, steps=2, max_new_tokens=4)
    if path.stem == "prebuilt_agent":  # a whole tool call and JSON answer from a random model need room
        kwargs["max_new_tokens"] = 160
    if "out_dir" in inspect.signature(module.main).parameters:
        kwargs["out_dir"] = tmp_path
    result = module.main(**kwargs)
    assert capsys.readouterr().out.strip(), f"{path.name} printed nothing"
    if path.stem == "custom_graph":
        assert [r["kind"] for r in result["trace"]] == ["latent", "text", "latent", "answer"]
    elif path.stem == "streaming":
        assert result["events"] and result["tokens"] and "lens" in result["events"][0]
    elif path.stem == "resume_checkpoint":
        assert result["paused_next"] == ["critic"] and result["out"]["answers"]
        assert [r["node"] for r in result["out"]["trace"]] == ["planner", "critic", "refiner", "judger"]
    elif path.stem == "send_map_reduce":
        branches = [r["branch"] for r in result["out"]["trace"] if r["node"] == "worker"]
        assert sorted(branches) == ["worker[0]", "worker[1]", "worker[2]"]
    elif path.stem == "subgraph":
        assert [r["node"] for r in result["out"]["trace"]] == ["scout", "critic", "judger", "editor"]
        editor = result["out"]["trace"][-1]  # the editor read the team's answer (and the judger's handle)
        assert f"Message from judger:\n{result['out']['answers'][0]}" in editor["prompts"][0]
        assert editor["handle_bytes_before"] == result["out"]["trace"][2]["handle_bytes_after"]
    elif path.stem == "loop":
        assert [r["node"] for r in result["out"]["trace"]] == ["planner", "critic"] * 2 + ["judger"]
    elif path.stem == "multi_turn":
        assert result["kv"][0] < result["kv"][1] < result["kv"][2]  # each turn continued the conversation
    elif path.stem == "tool_agent":  # the solver's cache holds its call and the tool turn before its latent steps
        assert [k for a, k, _ in result["segments"] if a == "solver"] == ["prompt", "text", "tool", "latent"]
        assert len(result["out"]["trace"][0]["tool_turns"][0]) == 1
    elif path.stem == "node_cache":  # every node of the repeated question came from the cache, same answer
        assert set(result["cached"]) == {"planner", "critic", "judger"} and all(result["cached"].values())
        assert not any(result["ran"].values()) and result["second"]["answers"] == result["first"]["answers"]
    elif path.stem == "runtime_context":  # events from the hand-called planner; the judger's tokens streamed
        assert [e["step"] for e in result["brief"]["events"]] == [0, 1] and result["careful"]["answer"]
    elif path.stem == "messages_state":  # two turns of one conversation, each answered by the team's judger
        assert [(m.type, m.name) for m in result["out"]["messages"]] == [("human", None), ("ai", "judger")] * 2
    elif path.stem == "pydantic_state":
        assert result["out"]["answers"] and result["out"]["handle"]["columns"] > 0
    elif path.stem == "supervisor":  # the supervisor handed off, the team answered into the conversation
        names = [m.name for m in result["out"]["messages"] if m.type == "ai"]
        assert names[:2] == ["supervisor", "judger"] and names[-1] == "supervisor"
    elif path.stem == "prebuilt_agent":  # the call streamed as tool_call_chunks, the JSON answer token by token
        assert result["calls"] == ["weather"] and len(result["tokens"]) > 3
        answer = result["state"]["structured_response"]
        assert answer == type(answer).model_validate_json(result["state"]["messages"][-1].content)
    elif path.stem == "html_report":
        assert all(p.exists() for p in result.values())
        assert "<svg" in result["report"].read_text() and "B / A" in result["compare"].read_text()
