"""Trained adapters on tiny random models: realigner plug-in, files, training, cross-model edges."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from latent_graph import DecodeOptions, LocalLatentModel, ModelMismatchError
from latent_graph.adapters import (
    AdapterError,
    AdapterFileError,
    AdapterRealigner,
    CheckpointError,
    LinearAdapter,
    MLPAdapter,
    Pair,
    PairsFormatError,
    TrainConfig,
    cross_handoff,
    evaluate_realigners,
    load_pairs,
    relay_probe,
    relay_probes,
    train_adapter,
)
from latent_graph.cli.adapter import register
from latent_graph.errors import InvalidArgumentError

PAIRS = [
    Pair(f"What is {a} plus {b}? Answer with the number only.", str(a + b)) for a in range(2, 8) for b in range(2, 6)
]
FAST = dict(
    steps=12, batch_size=6, eval_every=3, save_every=3, val_fraction=0.25, lr=3e-3, patience=100, init="random"
)  # 18 training pairs -> 3 batches per epoch


@pytest.fixture(scope="module")
def src(tiny_factory) -> LocalLatentModel:
    return tiny_factory("llama", seed=0)


@pytest.fixture(scope="module")
def dst48(src) -> LocalLatentModel:
    """A different tiny model: qwen2, hidden size 48, same tokenizer."""
    cfg = Qwen2Config(
        vocab_size=len(src.tokenizer),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(1)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    hf.generation_config.eos_token_id = 2
    return LocalLatentModel(hf, src.tokenizer, name="tiny-qwen2-h48")


@pytest.fixture(scope="module")
def trained(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("lin")
    return train_adapter(src, PAIRS, out, TrainConfig(**FAST), progress=False)


def _same_module(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------ realigner plug-in
@pytest.mark.parametrize("kind", [LinearAdapter, MLPAdapter])
def test_adapter_plugs_into_model(src, kind):
    torch.manual_seed(0)
    adapter = AdapterRealigner(kind(64, 64), src.fingerprint)
    for m in (
        src.with_realigner(adapter),
        LocalLatentModel(src.hf_model, src.tokenizer, name=src.name, realign=adapter),
    ):
        assert m.realigner is adapter
        seen = []
        h = m.think(None, "What is 2 plus 3?", steps=3, on_step=seen.append)
        assert h.latent_steps == 3 and h.latents[0].shape == (1, 3, 64)
        # the fed embeddings are exactly the adapter's outputs of the hidden states
        torch.testing.assert_close(h.latents[0][0], adapter(h.hiddens[0][0]))
        assert len(seen) == 3
        out = m.decode(h, "Answer.", max_new_tokens=3)
        assert out.new_tokens[0] <= 3 and out.handle.latent_steps == 3


def test_adapter_for_another_model_is_refused(src, tiny_factory):
    other = tiny_factory("llama", seed=5)
    adapter = AdapterRealigner(LinearAdapter(64, 64), src.fingerprint)
    with pytest.raises(ModelMismatchError) as err:
        other.with_realigner(adapter)
    assert src.name in str(err.value) and other.name in str(err.value)
    with pytest.raises(ModelMismatchError):
        LocalLatentModel(other.hf_model, other.tokenizer, name=other.name, realign=adapter)


def test_cross_adapter_cannot_realign(src, dst48):
    adapter = AdapterRealigner(LinearAdapter(64, 48), src.fingerprint, dst48.fingerprint)
    with pytest.raises(ModelMismatchError, match="cross_handoff"):
        src.with_realigner(adapter)


# ----------------------------------------------------------------------- files
def test_save_load_roundtrip_is_bit_exact(src, tmp_path):
    torch.manual_seed(3)
    adapter = AdapterRealigner(MLPAdapter(64, 64, hidden_dim=32), src.fingerprint, info={"note": "x"})
    path = adapter.save(tmp_path / "a.safetensors")
    back = AdapterRealigner.load(path, src)
    assert _same_module(adapter.module, back.module)
    assert back.source == src.fingerprint and back.target == src.fingerprint and back.info == {"note": "x"}
    h = torch.randn(5, 64)
    assert torch.equal(adapter(h), back(h))


def test_load_for_another_model_raises(src, tiny_factory, tmp_path):
    path = AdapterRealigner(LinearAdapter(64, 64), src.fingerprint).save(tmp_path / "a.safetensors")
    with pytest.raises(ModelMismatchError):
        AdapterRealigner.load(path, tiny_factory("qwen2"))


def test_missing_and_corrupt_files(src, tmp_path):
    with pytest.raises(AdapterFileError, match="not found"):
        AdapterRealigner.load(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(AdapterFileError):
        AdapterRealigner.load(bad)
    path = AdapterRealigner(LinearAdapter(64, 64), src.fingerprint).save(tmp_path / "ok.safetensors")
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(AdapterError):
        AdapterRealigner.load(truncated)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(AdapterFileError, match="not a latent_graph adapter"):
        AdapterRealigner.load(tmp_path / "foreign.safetensors")


def test_pairs_file_errors(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"instruction": "a", "target": "b"}\n{"instruction": "c"}\n')
    with pytest.raises(PairsFormatError, match=r"p.jsonl:2.*target"):
        load_pairs(p)
    p.write_text('{"instruction": "a", "target": "b"}\nnot json\n')
    with pytest.raises(PairsFormatError, match=r":2: not valid JSON"):
        load_pairs(p)
    p.write_text('{"instruction": "a", "target": "b", "split": "dev"}\n')
    with pytest.raises(PairsFormatError, match="unknown split"):
        load_pairs(p)
    with pytest.raises(PairsFormatError, match="not found"):
        load_pairs(tmp_path / "missing.jsonl")


def test_shipped_pairs_have_disjoint_split():
    train, held = load_pairs(split="train"), load_pairs(split="heldout")
    assert len(train) >= 400 and len(held) >= 80
    assert not {p.instruction for p in train} & {p.instruction for p in held}
    assert relay_probes(held)


# -------------------------------------------------------------------- training
def test_training_decreases_loss_and_writes_outputs(trained, src):
    # same 18 pairs each epoch: mean loss of the last epoch is below the first one's
    losses = [h["loss"] for h in trained.history]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3])
    assert trained.val_history[-1]["val_loss"] < trained.val_history[0]["val_loss"]
    out = trained.path.parent
    for name in ("adapter.safetensors", "loss_curve.json", "loss_curve.csv", "checkpoint/state.json"):
        assert (out / name).is_file(), name
    curves = json.loads((out / "loss_curve.json").read_text())
    assert len(curves["train"]) == trained.step and curves["val"]
    back = AdapterRealigner.load(trained.path, src)
    assert _same_module(back.module, trained.adapter.module)


def test_training_is_deterministic(src, trained, tmp_path):
    again = train_adapter(src, PAIRS, tmp_path, TrainConfig(**FAST), progress=False)
    assert _same_module(again.adapter.module, trained.adapter.module)
    assert again.history == trained.history


def test_resume_matches_uninterrupted(src, tmp_path):
    cfg = TrainConfig(**{**FAST, "kind": "mlp", "hidden_dim": 32, "steps": 6})
    full = train_adapter(src, PAIRS, tmp_path / "full", cfg, progress=False)
    part = train_adapter(src, PAIRS, tmp_path / "resumed", cfg, stop_at=3, progress=False)
    assert part.step == 3 and not part.finished
    rest = train_adapter(src, PAIRS, tmp_path / "resumed", cfg, progress=False)
    assert rest.step == full.step == 6 and rest.finished
    assert rest.history == full.history
    assert _same_module(rest.adapter.module, full.adapter.module)


def test_resume_refuses_another_config(src, trained):
    with pytest.raises(CheckpointError, match="lr"):
        train_adapter(src, PAIRS, trained.path.parent, TrainConfig(**{**FAST, "lr": 1.0}), progress=False)


def test_early_stopping_triggers(src, tmp_path):
    # min_delta so large that no evaluation counts as an improvement after the first
    cfg = TrainConfig(**{**FAST, "steps": 50, "eval_every": 1, "patience": 2, "min_delta": 1e9, "ce_weight": 0.0})
    res = train_adapter(src, PAIRS, tmp_path, cfg, progress=False)
    assert res.stopped_early and res.step == 3 and res.best_step == 1


def test_bad_config(src, tmp_path):
    with pytest.raises(InvalidArgumentError):
        train_adapter(src, PAIRS, tmp_path, TrainConfig(kind="transformer"), progress=False)


def test_evaluate_and_relay_probe(src, trained):
    res = evaluate_realigners({"ridge": src.realigner, "adapter": trained.adapter}, src, PAIRS[:6], batch_size=4)
    for m in res.values():
        assert -1 <= m["mean_cosine"] <= 1 and 0 <= m["first_token_acc"] <= 1 and m["continuation_ce"] > 0
    probe = Pair("q", "7", extra={"fact": "The code is 7.", "question": "What is the code?"})
    out = relay_probe(src, [probe, probe], realigner=trained.adapter, steps=2, max_new_tokens=2)
    assert out["n"] == 2 and 0 <= out["accuracy"] <= 1


# ------------------------------------------------------------------ cross-model
def test_cross_model_training_and_handoff(src, dst48, tmp_path):
    res = train_adapter(src, PAIRS, tmp_path, TrainConfig(**{**FAST, "steps": 6}), target_model=dst48, progress=False)
    adapter = res.adapter
    assert adapter.is_cross and (adapter.src_dim, adapter.dst_dim) == (64, 48)
    losses = [h["loss"] for h in res.history]
    assert sum(losses[-3:]) < sum(losses[:3])
    h = src.think(None, ["What is 2 plus 3?", "What is 4 plus 1?"], steps=2, agent="planner")
    hd = cross_handoff(src, h, dst48, adapter, agent="planner")
    assert hd.fingerprint == dst48.fingerprint and hd.seq_len == 3  # 2 latent hiddens + last_hidden
    torch.testing.assert_close(hd.latents[0], adapter.map(torch.cat([h.hiddens[0], h.last_hidden[:, None]], 1)))
    out = dst48.decode(hd, "What is the answer?", max_new_tokens=3)
    assert len(out.texts) == 2 and out.handle.fingerprint == dst48.fingerprint
    # the loaded file remembers both models and refuses swapped ones
    back = AdapterRealigner.load(res.path, src, dst48)
    with pytest.raises(ModelMismatchError):
        cross_handoff(dst48, dst48.think(None, "hi"), src, back)
    with pytest.raises(ModelMismatchError):
        cross_handoff(src, dst48.think(None, "hi"), dst48, back)


# ------------------------------------------------------------------------- CLI
def test_cli_train_and_eval(tmp_path, monkeypatch, src, capsys):
    import latent_graph.cli.adapter as cli

    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"instruction": p.instruction, "target": p.target, "split": s}) + "\n"
            for p, s in zip(PAIRS, ["train"] * 18 + ["heldout"] * 6)
        )
    )
    monkeypatch.setattr(cli, "load_from_args", lambda args, spec=None: src)
    parser = argparse.ArgumentParser(prog="latent-graph")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "adapter",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--kind",
            "mlp",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    assert (tmp_path / "run" / "adapter.safetensors").is_file()
    args = parser.parse_args(
        [
            "adapter",
            "eval",
            "--data",
            str(data),
            "--adapter",
            str(tmp_path / "run/adapter.safetensors"),
            "--json",
            str(tmp_path / "m.json"),
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) == {"identity", "ridge", "adapter-mlp"} and metrics["ridge"]["n"] == 6
    assert "first-tok" in capsys.readouterr().out


def test_cross_model_latent_edge_inside_a_graph(src, dst48):
    """planner on model A --latent--> critic on model B (through an adapter) --latent--> judger on B."""
    from langgraph.graph import END, START, StateGraph

    from latent_graph.adapters import build_adapter
    from latent_graph.nodes import CrossModelAgentNode, JudgerNode, LatentAgentNode
    from latent_graph.state import LatentState

    adapter = AdapterRealigner(build_adapter("linear", 64, 48), src.fingerprint, dst48.fingerprint)
    b = StateGraph(LatentState)
    b.add_node("planner", LatentAgentNode(model=src, name="planner", instruction="Plan.", steps=3))
    b.add_node(
        "critic",
        CrossModelAgentNode(
            model=dst48, name="critic", instruction="Check.", steps=2, source_model=src, adapter=adapter
        ),
    )
    b.add_node(
        "judger",
        JudgerNode(model=dst48, name="judger", instruction="Answer.", decoding=DecodeOptions(max_new_tokens=3)),
    )
    b.add_edge(START, "planner")
    b.add_edge("planner", "critic")
    b.add_edge("critic", "judger")
    b.add_edge("judger", END)
    out = b.compile().invoke({"questions": ["What is 2 plus 3?", "What is 4 plus 4?"]})
    assert len(out["answers"]) == 2
    from latent_graph.persist import default_handle_store

    h = default_handle_store().load(out["handle"])
    assert h.fingerprint == dst48.fingerprint
    received = [s for s in h.segments if s.agent == "critic:received"]
    assert received and received[0].length == 4  # 3 latent hidden states + the last hidden state
    # without the adapter the destination model refuses the foreign handle
    plain = LatentAgentNode(model=dst48, name="critic", instruction="Check.", steps=1)
    with pytest.raises(ModelMismatchError):
        plain({"questions": ["q"], "handle": src.think(None, "q", steps=1)})
