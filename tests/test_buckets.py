"""Length-bucketed batches (engine/buckets.py) in the bench planner and the serving worker."""

from __future__ import annotations

from latent_graph.bench.batching import padding_report
from latent_graph.bench.jobs import plan
from latent_graph.bench.tasks import Example
from latent_graph.buckets import arrival_batches, length_buckets, padding_share, split_by_waste
from latent_graph.serve import GraphWorker, Item, ServeConfig
from latent_graph.serve.schema import AnswerRequest, parse, settings_of

LENGTHS = [40, 200, 42, 190, 45, 210, 41, 205]


def test_buckets_cut_padding():
    before = padding_share(LENGTHS, arrival_batches(len(LENGTHS), 4))
    after = padding_share(LENGTHS, length_buckets(LENGTHS, 4))
    assert sorted(i for b in length_buckets(LENGTHS, 4) for i in b) == list(range(8))
    assert before > 0.3 and after < 0.05
    assert padding_share([5, 5], [[0, 1]]) == 0.0
    groups = split_by_waste(LENGTHS, 0.25)
    assert sorted(i for g in groups for i in g) == list(range(8)) and len(groups) == 2
    assert padding_share(LENGTHS, groups) <= 0.25
    assert split_by_waste([40, 44, 41, 43], 0.25) == [[0, 2, 3, 1]]  # little waste: one batch, sorted
    assert split_by_waste([10, 300], 0.25) == [[0, 1]]  # never below min_rows per part


def test_bench_plan_buckets_questions_and_reports_padding(tiny_factory):
    m = tiny_factory("llama")
    words = ["apples " * n for n in (2, 30, 3, 28, 2, 31, 4, 29)]
    exs = [Example(id=str(i), question=q, gold="1") for i, q in enumerate(words)]
    rep = padding_report(m, exs, 4)
    assert rep["padding_share_bucketed"] < rep["padding_share_arrival"]
    jobs = plan(exs, ["single"], 4, [0], 1, [1], ["single"], 4, rep["lengths"])
    main = [j for j in jobs if j.batch_size == 4]
    assert [sorted(i for i, _ in j.examples) for j in main] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    extra = [j for j in jobs if j.batch_size == 1]  # the first 4 questions at batch 1, after their main batch
    assert sorted(j.examples[0][0] for j in extra) == [0, 1, 2, 3]
    assert jobs.index(extra[-1]) > jobs.index(main[-1])
    plain = plan(exs, ["single"], 4, [0], 1, [], ["single"], 8, None)
    assert [[i for i, _ in j.examples] for j in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_worker_splits_a_wasteful_batch_and_keeps_order(tiny_factory):
    cfg = ServeConfig(steps=1, max_new_tokens=3, max_batch_size=8, graphs=("single", "sequential"))
    assert cfg.default_graph == "single"  # the registry default (compact) is not served here: the first one
    worker = GraphWorker(tiny_factory("llama"), cfg)
    s = settings_of(parse(AnswerRequest, {"question": "q", "graph": "single"}), cfg)
    qs = ["What is 3+5?", "apples " * 60, "What is 2+2?", "apples " * 58]
    items = [Item(q, None, str(i)) for i, q in enumerate(qs)]
    out = worker.run(s, items)
    assert [r["request_id"] for r in out] == ["0", "1", "2", "3"]
    assert [r["batch_size"] for r in out] == [2, 2, 2, 2]  # two length buckets of two
    alone = [worker.run(s, [it])[0]["answer"] for it in items]
    assert [r["answer"] for r in out] == alone
    pad = worker.health()["padding"]
    assert pad["pad_bucketed"] < pad["pad_unbucketed"]


def test_serve_default_graph_is_the_registry_default():
    from latent_graph.graphs import DEFAULT_GRAPH

    cfg = ServeConfig()
    assert cfg.default_graph == DEFAULT_GRAPH
    assert settings_of(parse(AnswerRequest, {"question": "x"}), cfg).graph == DEFAULT_GRAPH
