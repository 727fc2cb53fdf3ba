"""Drawings and reports of any LangGraph (issue 12, item 4): cycles, conditional edges, Send, subgraphs, timeline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from latent_graph.present import RunTrace, write_report
from latent_graph.present.draw import to_ascii, to_dot_source, to_image, to_mermaid
from latent_graph.present.svg import graph_svg

from conftest import chromium_screenshot

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "tests" / "snapshots"
DRAWN = ["send_map_reduce", "subgraph", "loop", "multi_turn"]


def _example(stem: str):
    spec = importlib.util.spec_from_file_location(f"example_{stem}", ROOT / "examples" / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _graph(stem: str, model):
    module = _example(stem)
    if hasattr(module, "build"):
        return module.build(model, 2, 4)
    from latent_graph.graphs import build_sequential

    return build_sequential(model, agents={"planner": "x"}, steps=2, max_new_tokens=4)


@pytest.mark.parametrize("stem", DRAWN)
def test_example_mermaid_matches_its_snapshot(stem, llama):
    assert to_mermaid(_graph(stem, llama)) == (SNAPSHOTS / f"{stem}.mmd").read_text()


def test_loop_draws_every_node_and_labels_conditional_edges(llama):
    g = _graph("loop", llama)
    text = to_mermaid(g)
    assert "critic -. latent · again .-> planner;" in text and "critic -. latent · done .-> judger;" in text
    assert "- -latent · again- ->" in to_ascii(g)
    run = RunTrace.from_run({"answers": ["a"], "trace": []}, ["q"], graph=g)
    assert run.edge_labels == {"critic->judger": "done", "critic->planner": "again"}
    drawn = graph_svg(run.nodes, run.edges, [], run.edge_labels)
    for node in ("planner", "critic", "judger"):
        assert f">{node}<" in drawn


def test_layout_without_dot_falls_back_and_says_so(llama, monkeypatch, capsys, tmp_path):
    import latent_graph.present.layout as layout

    monkeypatch.setattr(layout, "_WARNED", set())
    import graphviz

    def missing(self, *a, **k):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    run = RunTrace.from_run({"answers": ["a"], "trace": []}, ["q"], graph=_graph("loop", llama))
    drawn = graph_svg(run.nodes, run.edges, [], run.edge_labels)
    assert "<svg" in drawn and all(f">{n}<" in drawn for n in ("planner", "critic", "judger"))
    assert "Graphviz 'dot' is unavailable" in capsys.readouterr().err
    assert to_image(_graph("loop", llama), tmp_path / "g.svg").exists()


@pytest.mark.needs("dot")
def test_dot_lays_out_clusters_and_send(llama, tmp_path):
    sub = to_dot_source(_graph("subgraph", llama))
    assert "subgraph cluster_0" in sub and 'label="team (subgraph)"' in sub
    send = to_dot_source(_graph("send_map_reduce", llama))
    assert 'planner -> worker [color="#7c3aed"' in send and "style=dashed" in send and "latent · Send" in send
    svg = to_image(_graph("loop", llama), tmp_path / "loop.svg").read_text()
    assert all(f">{n}</text>" in svg for n in ("planner", "critic", "judger"))


def test_report_highlights_graph_nodes_and_shows_parallel_branches(llama, tmp_path):
    module = _example("send_map_reduce")
    result = module.main(model=llama, steps=2, max_new_tokens=2)
    out, graph = result["out"], result["graph"]
    run = RunTrace.from_run(out, ["q"], graph=graph)
    assert run.executed == ["planner", "worker", "judger"]
    assert "worker[worker]:::ran" in run.mermaid
    renamed = [dict(r, node=f"worker_{i}") if r["node"] == "worker" else r for i, r in enumerate(out["trace"])]
    assert "worker" in RunTrace.from_run({**out, "trace": renamed}, ["q"], graph=graph).executed
    html = write_report(run, tmp_path / "run.html").read_text()
    assert "<h2>Timeline</h2>" in html and html.count('class="run"') == len(out["trace"])
    for key in ("worker[0]", "worker[1]", "worker[2]"):
        assert f">{key}</text>" in html


@pytest.mark.needs("chromium")
@pytest.mark.parametrize("stem", ["send_map_reduce", "subgraph", "loop"])
def test_example_report_renders_in_headless_chromium(stem, llama, tmp_path):
    from PIL import Image

    result = _example(stem).main(model=llama, steps=2, max_new_tokens=2)
    run = RunTrace.from_run(result["out"], ["q"], graph=result["graph"])
    html = write_report(run, tmp_path / "run.html")
    png = tmp_path / "shot.png"
    chromium_screenshot(html, png, tmp_path / "profile", (1280, 1600))
    colors = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200
