"""Benchmark harness: loaders, Wilson intervals, code execution, resumability, reports, end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from latent_graph.bench import (
    METHODS,
    BenchArgumentError,
    BenchConfig,
    DataFormatError,
    DataNotFoundError,
    GraphOutputError,
    ResumeError,
    Task,
    load_results,
    load_task,
    relay_probes,
    run_bench,
    wilson_interval,
)
from latent_graph.bench.execute import build_program, run_python, run_tests
from latent_graph.bench.metrics import compute_ratios, summarize
from latent_graph.bench.tasks import Example, load_arc, load_code, load_gsm8k
from latent_graph.errors import ContextOverflowError, LatentGraphError
from latent_graph.graphs import GraphOptions
from latent_graph.persist import LiveHandleStore

GSM8K = Path(__file__).resolve().parents[3] / "shared/data/gsm8k/test.jsonl"


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def _gsm(tmp_path: Path, n: int = 5) -> Path:
    rows = [
        {"question": f"Tom has {i} apples and buys {i + 1} more. How many?", "answer": f"{i}+{i + 1}\n#### {2 * i + 1}"}
        for i in range(n)
    ]
    return _write(tmp_path / "gsm.jsonl", rows)


# ------------------------------------------------------------------ loaders
def test_gsm8k_loader(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.jsonl",
        [
            {"question": "Q1?", "answer": "work\n#### 1,234"},
            "",
            {"question": "Q2?", "answer": "#### -7"},
        ],
    )
    task = load_gsm8k(path)
    assert task.kind == "math" and task.graph_task == "math"
    assert [e.gold for e in task.examples] == ["1234", "-7"]
    assert len({e.id for e in task.examples}) == 2
    assert task.head(1) == task.examples[:1]
    with pytest.raises(BenchArgumentError, match="limit"):
        task.head(0)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"question": "Q", "answer": "#### 1"', r"g\.jsonl:2: not valid JSON"),
        ("[1, 2]", r"g\.jsonl:2: expected a JSON object"),
        ('{"answer": "#### 1"}', r"g\.jsonl:2: missing or empty string field 'question'"),
        ('{"question": "Q", "answer": "no marker"}', r"g\.jsonl:2: .*'####'"),
        ('{"question": "Q", "answer": "#### many"}', r"g\.jsonl:2: .*not a number"),
    ],
)
def test_gsm8k_malformed_line_names_the_line(tmp_path: Path, line: str, match: str) -> None:
    path = _write(tmp_path / "g.jsonl", [{"question": "Q", "answer": "#### 1"}, line])
    with pytest.raises(DataFormatError, match=match):
        load_gsm8k(path)


def test_missing_data_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_gsm8k(tmp_path / "nope.jsonl")
    monkeypatch.chdir(tmp_path)  # no default file reachable from here
    with pytest.raises(DataNotFoundError, match="--data"):
        load_task("gsm8k")
    with pytest.raises(DataNotFoundError, match="--data"):
        load_task("arc")
    with pytest.raises(BenchArgumentError, match="unknown task"):
        load_task("mmlu")


def test_hf_fallback_needs_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # make `import datasets` fail
    with pytest.raises(DataNotFoundError, match="datasets"):
        load_task("gsm8k", hf=True)


@pytest.mark.skipif(not GSM8K.exists(), reason=f"GSM8K test set not found at {GSM8K}")
def test_real_gsm8k_file() -> None:
    task = load_gsm8k(GSM8K)
    assert len(task.examples) == 1319
    assert task.examples[0].gold == "18"
    assert all(e.gold for e in task.examples)


def test_arc_loader_all_shapes(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "arc.jsonl",
        [
            {
                "id": "a",
                "question": {
                    "stem": "Sky colour?",
                    "choices": [{"label": "A", "text": "blue"}, {"label": "B", "text": "green"}],
                },
                "answerKey": "A",
            },
            {
                "question": "Water boils at?",
                "choices": {"label": ["1", "2", "3"], "text": ["50C", "100C", "0C"]},
                "answerKey": "2",
            },
            {"question": "Pick two", "choices": ["one", "two"], "answerKey": 1},
        ],
    )
    task = load_arc(path)
    assert task.kind == "choice" and task.graph_task == "choice"
    assert [e.gold for e in task.examples] == ["A", "B", "B"]
    assert task.examples[1].labels == ("A", "B", "C")  # numeric labels become letters
    assert "B. 100C" in task.examples[1].question
    assert task.score(task.examples[1], r"\boxed{B}").correct
    assert not task.score(task.examples[1], "Answer: C").correct


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"question": "Q", "choices": ["a", "b"], "answerKey": "C"}, "answerKey 'C' is not one of"),
        ({"question": "Q", "choices": ["a"], "answerKey": "A"}, "need 2"),
        ({"question": "Q", "answerKey": "A"}, "'choices' must be"),
        ({"choices": ["a", "b"], "answerKey": "A"}, "missing question"),
        ({"question": "Q", "choices": {"label": ["A"], "text": ["a", "b"]}, "answerKey": "A"}, "1 labels but 2 texts"),
    ],
)
def test_arc_malformed(tmp_path: Path, obj: dict[str, Any], match: str) -> None:
    path = _write(tmp_path / "arc.jsonl", [obj])
    with pytest.raises(DataFormatError, match=rf"arc\.jsonl:1: .*{match}"):
        load_arc(path)


CODE_ROWS = (
    {
        "task_id": "HE/0",
        "prompt": 'def add(a, b):\n    """Add."""\n',
        "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    },
    {
        "task_id": 2,
        "text": "Write a function to double a number.",
        "test_list": ["assert double(2) == 4", "assert double(0) == 0"],
    },
)
"""One HumanEval row and one MBPP row, as the code loader reads them."""


def test_code_loader(tmp_path: Path) -> None:
    he, mbpp = CODE_ROWS
    path = _write(tmp_path / "code.jsonl", [he, mbpp])
    task = load_code(path)
    assert task.kind == "code" and task.graph_task == "code"
    ex_he, ex_mb = task.examples
    assert "def add(a, b)" in ex_he.question and "assert double(2) == 4" in ex_mb.question


@pytest.mark.needs("bwrap")  # scoring runs the generated code in the sandbox
def test_code_scoring(tmp_path: Path) -> None:
    he, mbpp = CODE_ROWS
    task = load_code(_write(tmp_path / "code.jsonl", [he, mbpp]))
    ex_he, ex_mb = task.examples
    assert task.score(ex_he, "```python\ndef add(a, b):\n    return a + b\n```").correct
    assert task.score(ex_he, "```python\n    return a + b\n```").correct  # completion of the prompt
    wrong = task.score(ex_he, "```python\ndef add(a, b):\n    return a - b\n```")
    assert not wrong.correct and "AssertionError" in wrong.detail
    assert task.score(ex_mb, "def double(x):\n    return 2 * x").correct
    assert not task.score(ex_mb, "def double(x):\n    return x").correct


def test_code_malformed(tmp_path: Path) -> None:
    path = _write(tmp_path / "code.jsonl", [{"text": "do it", "test_list": []}])
    with pytest.raises(DataFormatError, match=r"code\.jsonl:1: .*test_list"):
        load_code(path)


def test_relay_probes_deterministic() -> None:
    a, b, c = relay_probes(6, seed=1), relay_probes(6, seed=1), relay_probes(6, seed=2)
    assert a == b and a.examples != c.examples
    assert relay_probes(9, seed=1).examples[:6] == a.examples  # more probes extend, never reshuffle
    assert a.kind == "relay" and a.graph_task == "plain"
    for e in a.examples:
        assert e.context and e.gold in e.context and e.gold not in e.question
    assert a.score(a.examples[0], f"It is {a.examples[0].gold}.").correct
    assert not a.score(a.examples[0], "I do not know").correct
    with pytest.raises(BenchArgumentError):
        relay_probes(0)


# ------------------------------------------------------------------ metrics
@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.27753),
        (5, 10, 0.23659, 0.76341),
        (10, 10, 0.72247, 1.0),
        (1, 1, 0.20654, 1.0),
        (81, 263, 0.25528, 0.36621),
    ],
)
def test_wilson_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=2e-5)


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for k, n in [(-1, 3), (4, 3)]:
        with pytest.raises(BenchArgumentError, match="0 <= k <= n"):
            wilson_interval(k, n)


# ---------------------------------------------------------------- execution
@pytest.mark.needs("bwrap")
def test_execute_pass_fail_timeout() -> None:
    ok = run_python("print('hi')", timeout=20)
    assert ok.passed and ok.returncode == 0 and "hi" in ok.stdout and ok.reason() == ""
    bad = run_python("assert 1 == 2, 'nope'", timeout=20)
    assert bad.status == "failed" and "AssertionError: nope" in bad.reason()
    syntax = run_python("def f(:\n", timeout=20)
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr
    slow = run_python("import time\nwhile True:\n    time.sleep(0.05)", timeout=1.0)
    assert slow.status == "timeout" and slow.returncode is None and 0.9 < slow.wall_s < 10
    assert "timed out" in slow.reason()


@pytest.mark.needs("bwrap")
def test_execute_isolation(tmp_path: Path) -> None:
    net = run_python("import socket\nsocket.create_connection(('127.0.0.1', 9))", timeout=20)
    assert net.status == "failed" and "network access is disabled" in net.stderr
    cwd = run_python("import os\nopen('x.txt','w').write('1')\nprint(os.getcwd())", timeout=20)
    assert cwd.passed and str(tmp_path) not in cwd.stdout
    assert not Path(cwd.stdout.strip()).exists()  # temp dir removed afterwards
    with pytest.raises(BenchArgumentError):
        run_python("pass", timeout=0)


@pytest.mark.needs("bwrap")
def test_build_program_humaneval_and_mbpp() -> None:
    prog = build_program("    return 1\n", "def check(c):\n    assert c() == 1\n", entry_point="f", prompt="def f():\n")
    assert prog.startswith("def f():\n    return 1") and prog.rstrip().endswith("check(f)")
    assert run_tests(
        "    return 1\n", "def check(c):\n    assert c() == 1\n", entry_point="f", prompt="def f():\n", timeout=20
    ).passed
    assert run_tests("X = 2", "assert X * Y == 6", setup="Y = 3", timeout=20).passed


# ------------------------------------------------------------ fake graphs
class FakeGraph:
    """Answers correctly for even question indices; costs depend on the method."""

    COST = {
        "single": (1.0, 100),
        "text-seq": (4.0, 400),
        "text-hier": (4.0, 400),
        "latent-seq": (1.2, 100),
        "latent-hier": (1.2, 100),
    }

    def __init__(
        self, method: str, log: list[tuple[str, int, tuple[str, ...]]], fail_after: int | None = None, **kwargs: Any
    ) -> None:
        self.method, self.log, self.fail_after, self.kwargs = method, log, fail_after, kwargs

    def invoke(self, state: dict[str, Any]) -> dict[str, Any]:
        store = self.kwargs["handle_store"]  # in memory, as the CLI's run; emptied after every batch
        assert isinstance(store, LiveHandleStore) and store.held == 0  # the previous batch's handles are gone
        store.held += 1  # stands for a handle this batch leaves behind
        if self.fail_after is not None and len(self.log) >= self.fail_after:
            raise RuntimeError("simulated kill")
        qs = state["questions"]
        self.log.append((self.method, len(qs), tuple(qs)))
        answers = []
        for q in qs:
            i = int(q.split()[2])
            answers.append(rf"\boxed{{{2 * i + 1}}}" if i % 2 == 0 else "no idea")
        _, gen = self.COST[self.method]
        steps = self.kwargs["steps"] if self.method.startswith("latent") else 0
        n = len(qs)  # trace counts are per row (NodeRecord)
        trace = [
            {
                "node": "a",
                "kind": "latent",
                "wall_s": 0.0,
                "rows": n,
                "prompt_tokens": [10] * n,
                "latent_steps": steps,
                "generated_tokens": [0] * n,
                "handle_bytes_after": 1000,
            },
            {
                "node": "judger",
                "kind": "answer",
                "wall_s": 0.0,
                "rows": n,
                "prompt_tokens": [5] * n,
                "latent_steps": 0,
                "generated_tokens": [gen] * n,
                "handle_bytes_after": 4096 * n,
            },
        ]
        return {"answers": answers, "trace": trace}


def _factory(log: list, fail_after: int | None = None):
    def make(method: str, model: Any, **kwargs: Any) -> FakeGraph:
        assert kwargs["task"] == "math" and kwargs["checkpointer"] is None
        return FakeGraph(method, log, fail_after, **kwargs)

    return make


def _config(**kw: Any) -> BenchConfig:
    """A BenchConfig from flat settings: the GraphOptions fields go into ``graph``."""
    own = BenchConfig.__dataclass_fields__
    graph = {k: kw.pop(k) for k in list(kw) if k in GraphOptions.__dataclass_fields__ and k not in own}
    return BenchConfig(**{"graph": GraphOptions(**graph), **kw})


def _bench(tmp_path: Path, log: list, **kw: Any):
    fail_after = kw.pop("fail_after", None)
    args: dict[str, Any] = dict(
        methods="single,text-seq,latent-seq",
        task="gsm8k",
        data=str(_gsm(tmp_path, 5)),
        batch_size=2,
        wave_batches=1,  # one batch of questions per graph run (test_waves_... covers longer waves)
        steps=3,
        out_dir=str(tmp_path / "out"),
        warmup=False,
    )
    args.update(kw)
    model = kw.pop("model", object())
    args.pop("model", None)
    return run_bench(model, _config(**args), graph_factory=_factory(log, fail_after), progress=None)


def test_waves_run_batch_size_rows_at_once(tmp_path: Path) -> None:
    """A graph run carries wave_batches x batch_size questions; the model runs batch_size rows at once (continuous
    batching), set per job and restored after the run."""

    class Rows:
        batch_rows = None

    model, seen = Rows(), []
    log: list = []

    class Watch(FakeGraph):
        def invoke(self, state: dict[str, Any]) -> dict[str, Any]:
            seen.append((len(state["questions"]), model.batch_rows))
            return super().invoke(state)

    def make(method: str, m: Any, **kwargs: Any) -> FakeGraph:
        return Watch(method, log, None, **kwargs)

    cfg = _config(
        methods="latent-seq", task="gsm8k", data=str(_gsm(tmp_path, 5)), batch_size=2, wave_batches=2, steps=3,
        out_dir=str(tmp_path / "out"), warmup=False, throughput_batch_sizes=[1], throughput_limit=3,
    )  # fmt: skip
    s = run_bench(model, cfg, graph_factory=make, progress=None)
    assert seen == [(4, 2), (2, 1), (1, 1), (1, 2)]  # waves of 4 at 2 rows; of 2 at 1 row (first 3 questions)
    assert model.batch_rows is None and s.method("latent-seq", 2).n == 5


def test_run_bench_with_fake_graphs(tmp_path: Path) -> None:
    log: list = []
    s = _bench(tmp_path, log)
    assert [m.method for m in s.methods] == ["single", "text-seq", "latent-seq"]
    single = s.method("single")
    assert single.n == 5 and single.correct == 3 and single.accuracy == pytest.approx(0.6)
    assert (single.ci_low, single.ci_high) == pytest.approx(wilson_interval(3, 5))
    assert single.generated_tokens == pytest.approx(100)
    assert s.method("latent-seq").latent_steps == pytest.approx(3)  # per-row steps → summed over rows
    assert s.method("latent-seq").total_tokens == pytest.approx(15 + 3 + 100)
    assert s.method("text-seq").handle_kb == pytest.approx(4.0)
    # same questions, same batches, methods interleaved batch by batch
    assert [m for m, _, _ in log] == ["single", "text-seq", "latent-seq"] * 3
    assert {q for m, _, q in log if m == "single"} == {q for m, _, q in log if m == "latent-seq"}
    ratio = {r.name: r for r in s.ratios}
    red = ratio["latent-seq generated-token reduction vs text-seq"]
    assert red.value == pytest.approx(0.75) and red.met is False
    assert ratio["latent-seq questions/s, largest batch / batch 1"].value is None
    for key in ("json", "markdown", "svg"):
        assert Path(s.files[key]).exists()
    md = Path(s.files["markdown"]).read_text()
    assert "| single | 2 | 5 | 60.0% [" in md and "latent-seq speed-up over text-seq" in md
    assert json.loads(Path(s.files["json"]).read_text())["methods"][0]["n"] == 5
    assert Path(s.files["svg"]).read_text().startswith("<svg")


def test_resume_after_kill_skips_finished_questions(tmp_path: Path) -> None:
    log: list = []
    with pytest.raises(RuntimeError, match="simulated kill"):
        _bench(tmp_path, log, fail_after=4)  # 4 batches done, killed in the 5th
    first = load_results(tmp_path / "out")
    assert len(first) == 2 * 3 + 2  # batch 0 for 3 methods, batch 1 for single
    done_before = {(r["method"], r["qid"]) for r in first}
    with pytest.raises(ResumeError, match="resume"):
        _bench(tmp_path, [])  # refuses to mix without resume=True
    log2: list = []
    s = _bench(tmp_path, log2, resume=True)
    assert s.skipped_jobs == 4 and s.computed_jobs == 5
    rerun = {(m, q) for m, _, qs in log2 for q in qs}
    assert rerun.isdisjoint({(m, q) for m, _, qs in log for q in qs})  # finished questions not recomputed
    final = load_results(tmp_path / "out")
    assert len(final) == 15 and len({(r["method"], r["qid"]) for r in final}) == 15
    assert all(r["method"] != "single" or r["index"] >= 4 for r in final[len(first) :])
    assert done_before <= {(r["method"], r["qid"]) for r in final}
    assert sum(n for _, n, _ in log) + sum(n for _, n, _ in log2) == 15  # nothing computed twice
    again: list = []
    s2 = _bench(tmp_path, again, resume=True)
    assert again == [] and s2.computed_jobs == 0 and s2.method("single").n == 5


def test_resume_truncates_torn_line_and_checks_config(tmp_path: Path) -> None:
    _bench(tmp_path, [], limit=2)
    res = tmp_path / "out" / "results.jsonl"
    with res.open("a") as fh:
        fh.write('{"method": "single", "batch_si')  # killed mid-write
    assert len(load_results(tmp_path / "out")) == 6
    assert res.read_text().endswith("\n")
    with pytest.raises(ResumeError, match="steps: 3 there vs 4 now"):
        _bench(tmp_path, [], limit=2, steps=4, resume=True)
    log: list = []
    s = _bench(tmp_path, log, limit=4, resume=True)  # extending the limit reuses the first 2
    assert s.method("single").n == 4 and sum(n for m, n, _ in log if m == "single") == 2


def test_rescore_rejudges_stored_answers(tmp_path: Path) -> None:
    _bench(tmp_path, [], limit=2, methods="single")
    res = tmp_path / "out" / "results.jsonl"
    rows = [json.loads(line) for line in res.read_text().splitlines()]
    rows[1]["answer"], rows[1]["correct"] = r"\boxed{3}", False  # question 1: gold 3
    res.write_text("".join(json.dumps(r) + "\n" for r in rows))
    log: list = []
    s = _bench(tmp_path, log, limit=2, methods="single", rescore=True)
    assert log == [] and s.method("single").correct == 2
    assert load_results(tmp_path / "out")[1]["pred"] == "3"


def test_throughput_ratio_and_errors_are_recorded(tmp_path: Path) -> None:
    log: list = []
    s = _bench(tmp_path, log, batch_size=4, limit=4, throughput_batch_sizes=[1], throughput_limit=4)
    sizes = {(m.method, m.batch_size) for m in s.methods}
    assert ("latent-seq", 1) in sizes and ("single", 1) not in sizes
    r = {x.name.split(",")[0]: x for x in s.ratios}["latent-seq questions/s"]
    assert r.value is not None and r.value > 0 and "batch 4" in r.name

    class Overflow:
        def invoke(self, state: dict[str, Any]) -> dict[str, Any]:
            raise ContextOverflowError("too long")

    s = run_bench(
        object(),
        BenchConfig(methods="single", task=relay_probes(2), out_dir=str(tmp_path / "err"), warmup=False),
        progress=None,
        graph_factory=lambda *a, **k: Overflow(),
    )
    assert s.method("single").errors == 2 and s.method("single").correct == 0
    rec = load_results(tmp_path / "err")[0]
    assert rec["status"] == "error" and "ContextOverflowError" in rec["error"]

    class Short:
        def invoke(self, state: dict[str, Any]) -> dict[str, Any]:
            return {"answers": ["x"], "trace": []}

    with pytest.raises(GraphOutputError, match="1 answers for 2 questions"):
        run_bench(
            object(),
            BenchConfig(
                methods="single", task=relay_probes(2), batch_size=2, out_dir=str(tmp_path / "short"), warmup=False
            ),
            progress=None,
            graph_factory=lambda *a, **k: Short(),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(methods="single,bogus"), "unknown method 'bogus'"),
        (dict(batch_size=0), "batch_size"),
        (dict(repeats=0), "repeats"),
        (dict(seeds=[]), "seeds"),
        (dict(seeds=[1, 1]), "distinct"),
        (dict(limit=0), "limit"),
        (dict(throughput_batch_sizes=[1], throughput_methods="text-hier"), "throughput method"),
        (dict(code_timeout=0), "code_timeout"),
        (dict(seed=3), "graph.seed is set per job"),
        (dict(task="gsm8k", graph=GraphOptions(task="choice")), "graph.task is set per job"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BenchArgumentError, match=match):
        _bench(tmp_path, [], **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [(dict(steps=-1), "steps"), (dict(memory="none"), "memory policy")])
def test_bad_graph_options_fail_in_their_owner(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(LatentGraphError, match=match) as info:
        _config(**kwargs)
    assert isinstance(info.value, ValueError) and not isinstance(info.value, BenchArgumentError)


def test_config_defaults_come_from_their_owners() -> None:
    from latent_graph.engine import DEFAULT_STEPS, DecodeOptions

    c = BenchConfig(methods="all", batch_size=8, throughput_batch_sizes=[1, 8, 1], throughput_methods="latentmas_seq")
    assert c.graph.steps == DEFAULT_STEPS and c.graph.max_new_tokens == DecodeOptions().max_new_tokens
    assert c.methods == METHODS and c.throughput_methods == ("latent-seq",) and c.throughput_batch_sizes == (1,)
    kw = c.graph_kwargs(4, "choice", steps=1)
    assert kw["seed"] == 4 and kw["task"] == "choice" and kw["steps"] == 1 and kw["kv_keep"] == c.graph.kv_keep
    assert set(kw) == set(GraphOptions.__dataclass_fields__)
    assert "seed" not in c.graph_settings() and c.graph_settings()["steps"] == DEFAULT_STEPS
    with pytest.raises(BenchArgumentError, match="GraphOptions"):
        BenchConfig(graph={"steps": 2})  # type: ignore[arg-type]


def test_ratio_math() -> None:
    def rec(method: str, bs: int, qid: str, wall: float, gen: float) -> dict[str, Any]:
        return {
            "method": method,
            "batch_size": bs,
            "seed": 0,
            "repeat": 0,
            "qid": qid,
            "wall_s": wall,
            "generated_tokens": gen,
            "correct": True,
        }

    records = [
        rec("text-seq", 8, "q1", 10, 400),
        rec("latent-seq", 8, "q1", 1.5, 60),
        rec("single", 8, "q1", 1.0, 50),
        rec("latent-seq", 1, "q1", 6.0, 60),
        rec("text-seq", 8, "q2", 99, 999),
    ]  # q2: not common
    r = {x.name: x for x in compute_ratios(records, 8)}
    assert r["latent-seq speed-up over text-seq (wall)"].value == pytest.approx(10 / 1.5)
    assert r["latent-seq speed-up over text-seq (wall)"].met is True
    assert r["latent-seq generated-token reduction vs text-seq"].value == pytest.approx(0.85)
    assert (
        r["latent-seq wall / single wall"].value == pytest.approx(1.5)
        and r["latent-seq wall / single wall"].met is False
    )
    assert r["latent-seq questions/s, batch 8 / batch 1"].value == pytest.approx(4.0)
    assert summarize(records)[0].n == 2


# -------------------------------------------------------------------- CLI
def test_cli_register_parses() -> None:
    from latent_graph.cli.bench import register

    parser = argparse.ArgumentParser(prog="latent-graph")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(
        [
            "bench",
            "--methods",
            "single,latent-seq",
            "--limit",
            "3",
            "--seeds",
            "0,1",
            "--throughput-batch-sizes",
            "1",
            "--resume",
            "--top-p",
            "0.9",
        ]
    )
    assert args.command == "bench" and args.limit == 3 and args.seeds == [0, 1] and args.resume
    assert args.throughput_batch_sizes == [1] and args.top_p == 0.9 and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--seeds", "a,b"])


# ------------------------------------------------------- real graphs, tiny model
def test_end_to_end_tiny_model_all_methods(tmp_path: Path, llama: Any) -> None:
    s = run_bench(
        llama,
        _config(
            methods="all",
            task="gsm8k",
            data=str(_gsm(tmp_path, 2)),
            batch_size=2,
            steps=2,
            max_new_tokens=3,
            out_dir=str(tmp_path / "e2e"),
            throughput_batch_sizes=[1],
            throughput_limit=1,
            warmup=False,
        ),
        progress=None,
    )
    assert [m.method for m in s.methods if m.batch_size == 2] == list(METHODS)
    for m in s.methods:
        assert m.n == (2 if m.batch_size == 2 else 1) and m.errors == 0
        assert m.wall_s_total > 0 and m.total_tokens > 0 and m.peak_rss_mb > 0
    by = {m.method: m for m in s.methods if m.batch_size == 2}
    assert by["latent-seq"].latent_steps == pytest.approx(3 * 2)  # 3 agents x 2 steps per question
    assert by["text-seq"].latent_steps == 0 and by["text-seq"].generated_tokens > by["single"].generated_tokens
    assert all(r.value is not None for r in s.ratios)
    assert Path(s.files["markdown"]).exists()


def test_end_to_end_relay_and_cli(
    tmp_path: Path, llama: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from latent_graph.cli import bench as cli

    monkeypatch.setattr(cli, "load_from_args", lambda *a, **k: llama)
    code = cli.main(
        [
            "--task",
            "relay",
            "--limit",
            "2",
            "--methods",
            "single,latent-seq",
            "--steps",
            "1",
            "--max-new-tokens",
            "3",
            "--out",
            str(tmp_path / "relay"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "| latent-seq |" in out and "relay" in out
    assert cli.main(["--task", "relay", "--limit", "2", "--out", str(tmp_path / "relay"), "--quiet"]) == 2
    assert "ResumeError" in capsys.readouterr().err


def test_bench_errors_are_latent_graph_errors() -> None:
    for err in (BenchArgumentError, DataFormatError, DataNotFoundError, GraphOutputError, ResumeError):
        assert issubclass(err, LatentGraphError)
    assert isinstance(relay_probes(1), Task) and isinstance(relay_probes(1).examples[0], Example)
