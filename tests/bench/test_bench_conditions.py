"""The shared relay-condition loop (latent_graph.bench.conditions) on a tiny model: state, measure, resumable log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from latent_graph.bench.conditions import (
    ConditionLog,
    command_line,
    measure,
    relay_state,
    run_conditions,
    write_markdown,
)
from latent_graph.bench.errors import BenchArgumentError, DataFormatError, GraphOutputError
from latent_graph.bench.metrics import wilson_interval
from latent_graph.bench.relay_suite import FAMILIES, relay_suite
from latent_graph.bench.tasks import relay_probes
from latent_graph.graphs import build_compact, build_sequential
from latent_graph.persist import HandleStore


def test_relay_state_tells_whom_it_names() -> None:
    batch = relay_suite(6).examples
    split = relay_state(batch)
    assert split["questions"] == [e.question for e in batch]
    assert split["context"] == [e.context or "" for e in batch]
    assert split["agent_context"]  # the second-agent family's fact goes to its named agent
    every = relay_state(batch, "all")
    assert every["context"] == [e.meta["facts"] for e in batch] and "agent_context" not in every
    assert relay_state(batch, "none") == {"questions": split["questions"]}
    probes = relay_probes(2).examples  # no relay6 meta: "all" falls back to the context
    assert relay_state(probes, "all")["context"] == [e.context for e in probes]
    with pytest.raises(BenchArgumentError, match="told"):
        relay_state(batch, "some")  # type: ignore[arg-type]


def test_measure_counts_a_compact_chain(llama: Any) -> None:
    task = relay_suite(6)
    graph = build_compact(llama, steps=1, max_new_tokens=3, task="plain", handle_store=HandleStore.in_memory())
    seen: list[Any] = []
    r = measure(graph, task, 4, handle_bytes=lambda h: seen.append(h) or 100)
    assert r["n"] == 6 and len(r["answers"]) == 6 and len(seen) == 2  # batches of 4 and 2
    hits = [task.score(e, a).correct for e, a in zip(task.examples, r["answers"])]
    assert r["correct"] == sum(hits) and r["accuracy"] == pytest.approx(sum(hits) / 6)
    assert r["ci95"] == pytest.approx(list(wilson_interval(sum(hits), 6)))
    assert set(r["family_hits"]) == set(FAMILIES) and sum(r["family_hits"].values()) == r["correct"]
    assert r["ckpt_bytes_per_q"] == pytest.approx(200 / 6)
    assert r["gen_tok_per_q"] > 0 and r["bytes_per_edge_q"] > 0 and r["judger_cols"] > 0
    assert r["s_per_q"] == pytest.approx(r["wall_s"] / 6)
    # the same answers as one plain invoke per batch (greedy)
    plain = [str(a) for i in (0, 4) for a in graph.invoke(relay_state(task.examples[i : i + 4]))["answers"]]
    assert r["answers"] == plain


def test_measure_text_edges_and_no_fact(llama: Any) -> None:
    task = relay_probes(3)
    text = build_sequential(
        llama, edges="text", message_tokens=2, max_new_tokens=2, task="plain", handle_store=HandleStore.in_memory()
    )
    r = measure(text, task, 3, "none")
    assert r["n"] == 3 and r["family_hits"] == {} and r["ckpt_bytes_per_q"] is None
    assert r["bytes_per_edge_q"] > 0  # UTF-8 bytes of the text messages

    class Mute:
        def stream(self, state: dict[str, Any], stream_mode: str) -> Any:
            yield {"judger": {"answers": ["x"]}}

    with pytest.raises(GraphOutputError, match="1 of 3"):
        measure(Mute(), task, 3)
    with pytest.raises(BenchArgumentError, match="batch_size"):
        measure(Mute(), task, 0)


def test_run_conditions_resumes_from_its_log(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "grid.jsonl"
    calls: list[str] = []

    def run(cond: str) -> dict[str, Any]:
        calls.append(cond)
        return {"cond": cond, "n": 2}

    printed: list[dict[str, Any]] = []
    rows = run_conditions(["a", "b"], ConditionLog(path), 2, str.upper, run, printed.append)
    assert calls == ["a", "b"] and [r["key"] for r in rows] == ["A", "B"] and printed == rows
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["A", "B"]
    log = ConditionLog(path)  # a rerun: only the new condition is measured
    rows = run_conditions(["b", "c", "a"], log, 2, str.upper, run)
    assert calls == ["a", "b", "c"] and [r["cond"] for r in rows] == ["b", "c", "a"]
    assert [r["key"] for r in log.measured(["C", "X", "A"], 2)] == ["C", "A"]
    assert log.get("A", 3) is None  # measured at another n: measured again
    path.write_text(path.read_text() + '{"key": "D", "n"\n')  # a torn line
    with pytest.raises(DataFormatError, match=r"grid.jsonl:4"):
        ConditionLog(path)


def test_write_markdown_keeps_notes_and_command_line(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "table.md"
    write_markdown(out, "# t1\n", "<!-- notes -->")
    assert out.read_text() == "# t1\n<!-- notes -->"
    out.write_text(out.read_text() + "\nhand-written reading\n")
    write_markdown(out, "# t2\n", "<!-- notes -->")
    assert out.read_text() == "# t2\n<!-- notes -->\nhand-written reading\n"
    assert command_line("benchmarks/x.py", ["--n", "2", "a b"]) == "python benchmarks/x.py --n 2 'a b'"
