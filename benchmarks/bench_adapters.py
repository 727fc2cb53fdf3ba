"""Benchmark: ridge vs identity vs trained linear / MLP adapters on the default model, plus a cross-model edge.

One run, CPU, frozen SmolLM2-135M-Instruct, the shipped pairs
(``latent_graph/data/adapter_pairs.jsonl``; train split for training, held-out
split for every number reported):

1. same-model realigners — identity, ridge (W_a), linear adapter after its
   least-squares init only (0 steps), linear and MLP adapters trained with the
   hybrid loss: mean cosine to the target's first-token embedding, first-token
   accuracy, continuation CE / accuracy of the receiver, relay-probe accuracy
   (fact only in agent 1's prompt → latent steps → judger reading only the
   latent columns), with "no edge" and "fact visible" bounds;
2. cross-model — there is no second pretrained model offline, so the receiver is
   *SmolLM2 truncated to its first N layers with a random orthogonal rotation of
   its residual basis* (norm gains folded into the next linear layers, so the
   rotation alone is function-preserving — checked at start). It has a
   different input space (rotated) and a weaker forward (fewer layers); a
   linear adapter default → receiver is trained and compared, on relay, with a
   real text edge (agent 1 writes a sentence, the receiver reads it).

    python benchmarks/bench_adapters.py                 # ~15 min on 2 CPU cores
    python benchmarks/bench_adapters.py --steps 20      # quicker, worse adapters
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from latent_graph import LocalLatentModel
from latent_graph.adapters import (
    TrainConfig,
    cross_relay_probe,
    evaluate_realigners,
    load_pairs,
    relay_probe,
    relay_probes,
    train_adapter,
)


def rotated_truncated(model: LocalLatentModel, layers: int, seed: int = 0) -> LocalLatentModel:
    """A copy of a Llama-family model keeping ``layers`` layers, residual basis rotated by a random orthogonal Q."""
    src = model.hf_model
    cfg = src.config.__class__.from_dict(src.config.to_dict())
    cfg.num_hidden_layers, cfg.tie_word_embeddings = layers, False
    H = cfg.hidden_size
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=torch.Generator().manual_seed(seed)))  # (H, H) orthogonal
    sd = {k: v.detach().clone().float() for k, v in src.state_dict().items()}
    new: dict[str, torch.Tensor] = {"model.embed_tokens.weight": sd["model.embed_tokens.weight"] @ q}
    for i in range(layers):
        p = f"model.layers.{i}."
        g1, g2 = sd[p + "input_layernorm.weight"], sd[p + "post_attention_layernorm.weight"]
        for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            new[p + name + ".weight"] = (sd[p + name + ".weight"] * g1) @ q
        for name in ("mlp.gate_proj", "mlp.up_proj"):
            new[p + name + ".weight"] = (sd[p + name + ".weight"] * g2) @ q
        new[p + "self_attn.o_proj.weight"] = q.T @ sd[p + "self_attn.o_proj.weight"]
        new[p + "mlp.down_proj.weight"] = q.T @ sd[p + "mlp.down_proj.weight"]
        new[p + "input_layernorm.weight"] = torch.ones(H)
        new[p + "post_attention_layernorm.weight"] = torch.ones(H)
        for k in sd:
            if k.startswith(p) and k not in new:  # biases etc. (none in SmolLM2)
                new[k] = sd[k]
    head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])
    new["lm_head.weight"] = (head * sd["model.norm.weight"]) @ q
    new["model.norm.weight"] = torch.ones(H)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    missing, unexpected = hf.load_state_dict(new, strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    hf.generation_config = src.generation_config
    return LocalLatentModel(hf, model.tokenizer, name=f"SmolLM2-rot{seed}-L{layers}")


def text_edge_cross(src: LocalLatentModel, dst: LocalLatentModel, probes: list, max_new_tokens: int = 6) -> dict:
    """Agent 1 (src) writes the fact as text; the judger (dst) reads that text and answers."""
    hits = 0
    for i in range(0, len(probes), 16):
        chunk = probes[i : i + 16]
        msg = src.decode(
            None, [p.extra["fact"] + " Restate this fact in one short sentence." for p in chunk], max_new_tokens=24
        ).texts
        out = dst.decode(
            None,
            [f"Message from another agent: {m}\n{p.extra['question']}" for m, p in zip(msg, chunk)],
            max_new_tokens=max_new_tokens,
        ).texts
        hits += sum(p.target.lower() in o.lower() for o, p in zip(out, chunk))
    return {"accuracy": hits / len(probes), "n": len(probes)}


def table(title: str, rows: dict[str, dict]) -> str:
    lines = [title, f"{'mapper':<20}{'cosine':>8}{'first-tok':>11}{'cont-CE':>9}{'cont-acc':>10}{'relay':>8}"]
    for name, m in rows.items():
        relay = m.get("relay")
        lines.append(
            f"{name:<20}{m['mean_cosine']:>8.3f}{m['first_token_acc']:>11.3f}{m['continuation_ce']:>9.3f}"
            f"{m['continuation_acc']:>10.3f}{'' if relay is None else f'{relay:>8.3f}'}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per trained adapter")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--relay-steps", type=int, default=4, help="latent steps of agent 1 in relay probes")
    ap.add_argument(
        "--cross-layers", type=int, default=30, help="layers kept in the cross-model receiver (30 = all: rotation only)"
    )
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N training pairs")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_adapters"))
    ap.add_argument("--fresh", action="store_true", help="delete --out first (else finished adapters are reused)")
    args = ap.parse_args()
    if args.fresh:
        shutil.rmtree(args.out, ignore_errors=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    model = LocalLatentModel.default()
    train, held = load_pairs(split="train", limit=args.train_limit), load_pairs(split="heldout")
    probes = relay_probes(held)
    print(f"{model.name}: {len(train)} train pairs, {len(held)} held-out pairs, {len(probes)} relay probes")
    results: dict = {
        "model": model.name,
        "fingerprint": model.fingerprint.digest,
        "args": {k: str(v) for k, v in vars(args).items()},
        "n_train": len(train),
        "n_heldout": len(held),
        "n_relay": len(probes),
    }

    base = dict(batch_size=args.batch_size, eval_every=20, patience=3, seed=args.seed)
    trained, timing = {}, {}
    for name, cfg in {
        "linear-lstsq-0step": TrainConfig(kind="linear", steps=0, **base),
        "linear": TrainConfig(kind="linear", steps=args.steps, **base),
        "mlp": TrainConfig(kind="mlp", steps=args.steps, lr=1e-3, **base),
    }.items():
        out = args.out / name
        feats = args.out / "linear-lstsq-0step" / "features.safetensors"
        if feats.is_file() and not (out / "features.safetensors").exists():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(feats, out / "features.safetensors")  # same model + data: reuse source features
        t = time.time()
        res = train_adapter(model, train, out, cfg)
        timing[name] = round(time.time() - t, 1)
        trained[name] = res.adapter
        results.setdefault("training", {})[name] = {
            "steps": res.step,
            "best_step": res.best_step,
            "stopped_early": res.stopped_early,
            "seconds": timing[name],
            "val": res.val_history,
        }
    mappers = {
        "identity": model.with_realigner("identity").realigner,
        "ridge": model.realigner,
        **{f"adapter-{k}": v for k, v in trained.items()},
    }
    same = evaluate_realigners(mappers, model, held, progress=True)
    bounds = {m: relay_probe(model, probes, mode=m)["accuracy"] for m in ("none", "text")}
    for name, mapper in mappers.items():
        same[name]["relay"] = relay_probe(model, probes, realigner=mapper, steps=args.relay_steps)["accuracy"]
    results["same_model"] = same
    results["relay_bounds"] = bounds
    print(
        table(
            f"\nsame model ({model.name}), {len(held)} held-out pairs; relay over {len(probes)} probes, "
            f"{args.relay_steps} latent steps",
            same,
        )
    )
    print(f"relay bounds: no edge {bounds['none']:.3f}, fact visible to judger {bounds['text']:.3f}")

    # ------------------------------------------------------------- cross-model
    dst = rotated_truncated(model, model.hf_model.config.num_hidden_layers, args.seed)
    ids = model.tokenizer("Check: the rotation preserves the function.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        diff = float((dst.hf_model(ids).logits - model.hf_model(ids).logits).abs().max())
    print(f"rotation-only sanity check: max |logit diff| = {diff:.2e}")
    results["rotation_check_max_logit_diff"] = diff
    del dst
    dst = rotated_truncated(model, args.cross_layers, args.seed)
    t = time.time()
    cross = train_adapter(
        model,
        train,
        args.out / f"cross-linear-L{args.cross_layers}",
        TrainConfig(kind="linear", steps=args.steps, **base),
        target_model=dst,
    )
    timing["cross-linear"] = round(time.time() - t, 1)
    cm = evaluate_realigners(
        {"identity (no adapter)": model.with_realigner("identity").realigner, "cross-linear": cross.adapter},
        model,
        held,
        target_model=dst,
        progress=True,
    )
    cm["cross-linear"]["relay"] = cross_relay_probe(model, dst, cross.adapter, probes, steps=args.relay_steps)[
        "accuracy"
    ]
    cross_bounds = {
        "none": relay_probe(dst, probes, mode="none")["accuracy"],
        "fact_visible_to_receiver": relay_probe(dst, probes, mode="text")["accuracy"],
        "text_edge": text_edge_cross(model, dst, probes)["accuracy"],
    }
    results["cross_model"] = {"receiver": dst.name, "metrics": cm, "relay_bounds": cross_bounds}
    print(table(f"\ncross model {model.name} → {dst.name} (rotated, first {args.cross_layers} layers)", cm))
    print("cross relay bounds: " + ", ".join(f"{k} {v:.3f}" for k, v in cross_bounds.items()))
    results["seconds"] = {"training": timing, "total": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {args.out / 'results.json'} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
