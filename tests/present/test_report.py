"""Run traces and offline HTML reports on a tiny model (+ a headless-Chromium screenshot)."""

from __future__ import annotations

import json
import re
from html import escape

import pytest

from latent_graph import InvalidArgumentError
from latent_graph.graphs import build_sequential
from latent_graph.present import RunTrace, render_compare, render_report, write_compare, write_report

from conftest import chromium_screenshot

QS = ["What is 12 times 7?", 'Is <b>bold</b> & "quoted" <script>alert(1)</script> escaped?']
FAST = dict(steps=2, max_new_tokens=4)
FIELDS = {
    "node",
    "kind",
    "start",
    "end",
    "wall_s",
    "prompt_tokens",
    "latent_steps",
    "generated_tokens",
    "handle_bytes_before",
    "handle_bytes_after",
    "kv_len",
    "memory",
    "steps",
    "prompts",
}


def _run(model, edges="latent", inspect=0) -> RunTrace:
    g = build_sequential(model, edges=edges, inspect=inspect, **FAST)
    out = g.invoke({"questions": QS})
    return RunTrace.from_run(out, QS, graph=g, model=model, options={"edges": edges, **FAST}, wall_s=1.5)


@pytest.fixture(scope="module")
def mixed(llama) -> RunTrace:
    return _run(llama, ["latent", "text", "latent"], inspect=2)


@pytest.fixture(scope="module")
def text_run(llama) -> RunTrace:
    return _run(llama, "text")


def test_trace_records_every_field(mixed):
    assert [r["node"] for r in mixed.trace] == ["planner", "critic", "refiner", "judger"]
    for rec in mixed.trace:
        assert FIELDS <= set(rec), FIELDS - set(rec)
        assert len(rec["prompts"]) == len(QS) and QS[1] in rec["prompts"][1]
        assert rec["end"] >= rec["start"] and rec["wall_s"] >= 0
    planner = mixed.trace[0]
    assert planner["latent_steps"] == 2 and len(planner["steps"]) == 2
    step = planner["steps"][0]
    assert len(step["norm"]) == len(QS) and len(step["cosine"]) == len(QS)
    assert len(step["lens"][0]) == 2 and all(0 <= p <= 1 for _, p in step["lens"][0])
    assert len(step["nearest"][1]) == 2
    assert mixed.model["digest"] and mixed.edges["critic->refiner"] == "text"
    assert mixed.edges["planner->critic"] == "latent" and "ran" in mixed.mermaid


def test_logit_lens_is_opt_in(text_run, llama):
    run = _run(llama, "latent", inspect=0)
    assert all(set(s) == {"step", "norm"} for r in run.trace for s in r["steps"])
    assert text_run.texts_of("critic") is not None and len(text_run.texts_of("critic")) == len(QS)


def test_trace_json_round_trip(mixed, tmp_path):
    path = mixed.save(tmp_path / "sub" / "run.json")
    data = json.loads(path.read_text())
    assert {
        "version",
        "created",
        "model",
        "graph",
        "edges",
        "options",
        "questions",
        "answers",
        "transcript",
        "trace",
        "mermaid",
    } <= set(data)
    back = RunTrace.load(path)
    assert back == mixed
    tot = back.totals()
    assert (
        tot["wall_s"] == 1.5 and tot["latent_steps"] == 4 * len(QS) and tot["generated_tokens"] > 0
    )  # summed over questions


def test_trace_load_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        RunTrace.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        RunTrace.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(InvalidArgumentError, match="not a run trace"):
        RunTrace.load(tmp_path / "other.json")
    (tmp_path / "new.json").write_text('{"questions": [], "trace": [], "version": 999}')
    with pytest.raises(InvalidArgumentError, match="newer"):
        RunTrace.load(tmp_path / "new.json")


def _assert_offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script src" not in html and "@import" not in html


def test_report_is_self_contained_and_escaped(mixed):
    html = render_report(mixed)
    _assert_offline(html)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") >= 5  # graph + time + tokens + KV + norms per question
    assert 'id="qsel"' in html and html.count("<option") == len(QS)
    for node in ("planner", "critic", "refiner", "judger"):
        assert f'id="node-{node}"' in html and f'href="#node-{node}"' in html
    assert "logit lens" in html and 'class="edge text ran"' in html and 'class="edge latent ran"' in html
    assert 'data-q="1" hidden' in html and "Message sent (text edge)" in html


def test_report_without_lens_says_how_to_get_it(text_run, tmp_path):
    path = write_report(text_run, tmp_path / "r.html")
    assert "--inspect K" in path.read_text() or "Latent steps" not in path.read_text()


def test_compare_report(mixed, text_run, tmp_path):
    html = render_compare(mixed, text_run)
    _assert_offline(html)
    assert "wall seconds" in html and "B / A" in html and html.count("<svg") >= 5
    for a in mixed.answers + text_run.answers:
        assert escape(a) in html
    assert html.count("<tr>") >= 7 + len(QS)
    path = write_compare(mixed, text_run, tmp_path / "c.html", labels=["latent", "text"])
    assert "A: latent" in path.read_text()
    other = RunTrace(questions=["different"], answers=["x"])
    with pytest.raises(InvalidArgumentError, match="same questions"):
        render_compare(mixed, other)


def test_report_from_a_minimal_trace():
    html = render_report(RunTrace(questions=["q"], answers=["a"]))
    assert "no graph shape recorded" in html and '<pre class="answer">a</pre>' in html


@pytest.mark.needs("chromium")
def test_report_renders_in_headless_chromium(mixed, tmp_path):
    from PIL import Image

    html = write_report(mixed, tmp_path / "run.html")
    png = tmp_path / "shot.png"
    proc = chromium_screenshot(html, png, tmp_path / "profile", (1280, 2000))
    assert png.exists(), f"no screenshot (rc={proc.returncode}): {proc.stderr[-2000:]}"
    img = Image.open(png).convert("RGB")
    assert img.size == (1280, 2000)
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200  # text, SVG plots and the graph, not a blank page
    top = img.crop((0, 0, 1280, 60)).getcolors(maxcolors=1 << 16)
    assert max(top)[1] == (0x31, 0x2E, 0x81)  # the header bar rendered with the inline CSS
