"""The ``latent-graph`` CLI, in-process on a tiny model (``cli.load_from_args`` is monkeypatched)."""

from __future__ import annotations

import io
import json

import pytest

import latent_graph.cli as cli
from latent_graph.present import RunTrace

FAST = ["--steps", "2", "--max-new-tokens", "4"]


@pytest.fixture()
def tiny(llama, monkeypatch):
    monkeypatch.setattr(cli, "load_from_args", lambda args: llama)
    return llama


def run(*argv: str) -> int:
    return cli.main(list(argv))


def test_parser_registers_command_groups():
    sub = next(a for a in cli.make_parser()._actions if a.dest == "command")
    assert {"run", "draw", "report", "bench"} <= set(sub.choices)


def test_help_and_usage_exit_codes(capsys):
    assert run("--help") == 0
    assert run("run", "--no-such-flag", "q") == 2
    assert run("frobnicate") == 2
    assert "usage:" in capsys.readouterr().err


def test_run_batch_prints_questions_and_answers(tiny, capsys):
    assert run("run", *FAST, "What is 12 times 7?", "What is 3+5?") == 0
    out = capsys.readouterr().out
    assert out.count("Q: ") == 2 and out.count("A: ") == 2


def test_run_single_question_streams_the_answer(tiny, capsys):
    assert run("run", *FAST, "What is 12 times 7?") == 0
    out = capsys.readouterr().out
    assert out.strip() and "Q: " not in out


def test_run_quiet_prints_only_answers(tiny, capsys):
    assert run("run", *FAST, "--quiet", "a?", "b?") == 0
    captured = capsys.readouterr()
    assert "Q: " not in captured.out and captured.err == ""


def test_run_json_is_a_run_trace(tiny, capsys):
    assert run("run", *FAST, "--json", "--edges", "critic=text", "--inspect", "2", "a?") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"] == ["a?"] and len(data["answers"]) == 1
    assert [r["kind"] for r in data["trace"]] == ["latent", "text", "latent", "answer"]
    assert data["edges"]["critic->refiner"] == "text" and data["options"]["inspect"] == 2
    assert "lens" in data["trace"][0]["steps"][0]
    assert data["model"]["name"] == tiny.name


def test_run_save_trace_report_and_report_command(tiny, tmp_path, capsys):
    trace, html = tmp_path / "a" / "run.json", tmp_path / "a" / "run.html"
    assert (
        run(
            "run",
            *FAST,
            "--edges",
            "latent,text,latent",
            "--save-trace",
            str(trace),
            "--report",
            str(html),
            "q1?",
            "q2?",
        )
        == 0
    )
    assert RunTrace.load(trace).answers and "<svg" in html.read_text()
    assert run("run", *FAST, "--edges", "text", "--save-trace", str(tmp_path / "t.json"), "--quiet", "q1?", "q2?") == 0
    assert run("report", str(trace), "-o", str(tmp_path / "again.html")) == 0
    assert (tmp_path / "again.html").read_text().startswith("<!DOCTYPE html>")
    assert run("report", "--compare", str(trace), str(tmp_path / "t.json"), "-o", str(tmp_path / "cmp.html")) == 0
    assert "B / A" in (tmp_path / "cmp.html").read_text()
    capsys.readouterr()
    assert run("report", str(tmp_path / "missing.json")) == 2
    assert run("report") == 2
    err = capsys.readouterr().err
    assert "cannot read run trace" in err and "no run trace given" in err and "Traceback" not in err


def test_questions_from_file_jsonl_and_stdin(tiny, tmp_path, monkeypatch, capsys):
    (tmp_path / "q.txt").write_text("first?\n\nsecond?\n")
    assert run("run", *FAST, "--quiet", "--file", str(tmp_path / "q.txt")) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 1
    (tmp_path / "q.jsonl").write_text('{"question": "x?", "context": "secret"}\n{"question": "y?"}\n')
    assert run("run", *FAST, "--json", "--file", str(tmp_path / "q.jsonl")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"] == ["x?", "y?"] and data["context"] == ["secret", ""]
    assert "secret" in data["trace"][0]["prompts"][0]
    monkeypatch.setattr("sys.stdin", io.StringIO("from stdin?\n"))
    assert run("run", *FAST, "--json") == 0
    assert json.loads(capsys.readouterr().out)["questions"] == ["from stdin?"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "-1", "q"], "steps must be an int >= 0"),
        (["--top-p", "0", "q"], "top_p must be in (0, 1]"),
        (["--graph", "nope", "q"], "graph must be one of"),
        (["--graph", "no_such_module:factory", "q"], "cannot import"),
        (["--edges", "latent,bogus,latent", "q"], "edge kinds must be"),
        (["--edges", "latent,text", "q"], "2 edge kinds for 3 edges"),
        (["--file", "/no/such/file.txt"], "cannot read questions file"),
        (["--report", ".", "q"], "is a directory"),
    ],
)
def test_bad_flags_give_exit_2_and_one_line(tiny, capsys, argv, message):
    assert run("run", *FAST, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_question_is_a_usage_error(tiny, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run("run", *FAST) == 2
    assert "no question given" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run("run", "--model", str(tmp_path / "no-such-model"), "q") == 2
    err = capsys.readouterr().err
    assert "ModelLoadError" in err and "Traceback" not in err


def test_ctrl_c_exits_130(tiny, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "execute", interrupted)
    assert run("run", *FAST, "q") == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("graph", ["single", "hierarchical", "latent_graph.graphs:build_sequential"])
def test_other_graphs(tiny, capsys, graph):
    assert run("run", *FAST, "--graph", graph, "--json", "q?") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trace"][-1]["kind"] == "answer"


def test_execute_with_progress_bar_and_streaming(tiny, capsys):
    from latent_graph.graphs import build_sequential

    out = cli.execute(
        build_sequential(tiny, steps=1, max_new_tokens=3), {"questions": ["q"]}, stream_tokens=True, progress=True
    )
    captured = capsys.readouterr()
    assert len(out["trace"]) == 4 and captured.out.strip() == out["answers"][0].strip()
    assert "node" in captured.err  # the tqdm bar went to stderr


def test_draw_formats(tiny, tmp_path, capsys):
    assert run("draw", "--format", "ascii", "--edges", "latent,text,latent") == 0
    assert "==latent==>" in capsys.readouterr().out
    assert run("draw", "--format", "mermaid", "-o", str(tmp_path / "g.mmd")) == 0
    assert "graph TD;" in (tmp_path / "g.mmd").read_text()
    assert run("draw", "--format", "svg", "-o", str(tmp_path / "g.svg")) == 0
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    assert run("draw", "--format", "png") == 2


# ------------------------------------------------------------------ issue 12, item 9
def test_graph_factory_from_the_current_directory_gets_only_its_kwargs(tiny, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_graphs.py").write_text(
        "from latent_graph.graphs import build_sequential\n"
        "def make(model, steps):\n"
        "    return build_sequential(model, agents={'planner': 'Plan.'}, steps=steps, max_new_tokens=2)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert run("run", *FAST, "--graph", "my_graphs:make", "--json", "q?") == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["node"] for r in data["trace"]] == ["planner", "judger"] and data["trace"][0]["latent_steps"] == 2


def test_run_input_json_adds_graph_input_keys(tiny, capsys):
    assert run("run", *FAST, "--json", "--input", '{"context": ["The code is BLUE-42."]}', "Which code?") == 0
    data = json.loads(capsys.readouterr().out)
    assert "BLUE-42" in data["trace"][0]["prompts"][0]
    assert run("run", *FAST, "--input", "[1]", "q") == 2
    assert "JSON object" in capsys.readouterr().err


def test_draw_does_not_load_the_model(monkeypatch, capsys):
    def refuse(args):
        raise AssertionError("draw loaded the model")

    monkeypatch.setattr(cli, "load_from_args", refuse)
    assert run("draw", "--format", "mermaid", "--model", "some/huge-model", "--edges", "latent,text,latent") == 0
    out = capsys.readouterr().out
    assert "planner == latent ==> critic" in out and "critic -. text .-> refiner" in out


def test_run_shows_live_progress_unless_quiet(tiny, capsys):
    assert run("run", *FAST, "--edges", "critic=text", "a?", "b?") == 0
    err = capsys.readouterr().err
    assert "planner done (2 latent steps)" in err and "critic done" in err and "tokens" in err
    assert run("run", *FAST, "--quiet", "a?") == 0
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """The tiny llama saved as an HF folder, so ``--model DIR`` goes through the real loader (no monkeypatch)."""
    from conftest import make_model

    path = tmp_path_factory.mktemp("tiny-llama")
    model = make_model("llama")
    model.hf_model.save_pretrained(path)
    model.tokenizer.save_pretrained(path)
    return path


def test_every_realign_spec_in_help_runs(tiny_dir, tmp_path, monkeypatch, capsys):
    """``run --realign SPEC`` answers for every spec ``--help`` lists (bare, and with all its parameters)."""
    import re

    from latent_graph.engine import REALIGNERS

    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run("run", "--help") == 0
    listed = re.search(r"realigner: (.*?) \(e\.g\.", " ".join(capsys.readouterr().out.split())).group(1)
    specs = [s.strip() for s in listed.split("|")]
    assert [s.split("[")[0] for s in specs] == list(REALIGNERS)  # the help offers the whole catalog
    values = {"k": "3", "t": "0.5", "alpha": "0.25"}
    runs = [s.split("[")[0] for s in specs] + [  # each kind bare, then with every parameter it lists
        s.split("[")[0] + ":" + ",".join(f"{p}={values[p]}" for p in re.findall(r"(\w+)=N", s))
        for s in specs
        if "[" in s
    ]
    for spec in runs:
        assert run("run", *FAST, "--quiet", "--model", str(tiny_dir), "--realign", spec, "What is 3+5?") == 0, spec
        out, err = capsys.readouterr()
        assert out.strip() and "error" not in err, (spec, err)
    assert run("run", *FAST, "--model", str(tiny_dir), "--realign", "soft:q=1", "What?") == 2
    assert "InvalidArgumentError" in capsys.readouterr().err
