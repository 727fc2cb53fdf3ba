"""Issue 21 items 2 and 4: input caps and named errors where raw ones used to escape."""

from __future__ import annotations

import os
import sqlite3
import time
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latent_graph import LocalLatentModel, paths
from latent_graph.adapters import checkpoint as ckpt
from latent_graph.adapters.errors import CheckpointError
from latent_graph.engine.load import embedded
from latent_graph.engine.realign import base as realign
from latent_graph.errors import CacheDirError, CheckpointFileError, InvalidArgumentError, TooManyQuestionsError
from latent_graph.graphs import build_sequential
from latent_graph.serve.worker import open_checkpoints

from conftest import make_model


# ------------------------------------------------------------ questions per invocation
def test_ten_thousand_questions_are_refused_within_seconds():
    graph = build_sequential(make_model("llama"), steps=1, max_new_tokens=2)
    t0 = time.perf_counter()
    with pytest.raises(TooManyQuestionsError, match="10000 questions"):
        graph.invoke({"questions": ["What is 2+2?"] * 10_000})
    took = time.perf_counter() - t0
    print(f"10^4 questions refused in {took:.3f} s (load {os.getloadavg()[0]:.1f})")
    assert took < 5


def test_max_questions_is_configurable():
    graph = build_sequential(make_model("llama"), steps=1, max_new_tokens=2, max_questions=2)
    assert len(graph.invoke({"questions": ["a?", "b?"]})["answers"]) == 2
    with pytest.raises(TooManyQuestionsError):
        graph.invoke({"questions": ["a?", "b?", "c?"]})
    with pytest.raises(InvalidArgumentError):
        build_sequential(make_model("llama"), max_questions=0)


# ------------------------------------------------------------ cache directory
def test_cache_dir_that_cannot_be_created_is_a_named_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(paths.ENV_CACHE, str(blocker / "cache"))
    with pytest.raises(CacheDirError, match=paths.ENV_CACHE):
        paths.cache_dir()


def test_empty_read_only_cache_is_a_named_error(tmp_path, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir()
    monkeypatch.setenv(paths.ENV_CACHE, str(cache))
    try:
        embedded.gguf_path()
    except Exception:
        pytest.skip("the default model's wheel is not installed")
    cache.chmod(0o555)
    if os.geteuid() == 0:  # root ignores the mode: make the first write fail as it would for a user

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(cache))

        monkeypatch.setattr(embedded.tempfile, "mkdtemp", refuse)
        monkeypatch.setattr(embedded.Path, "mkdir", lambda self, *a, **k: refuse())
    try:
        with pytest.raises(CacheDirError, match="cannot write"):
            LocalLatentModel.default(prefer_hub=False)
    finally:
        cache.chmod(0o755)


# ------------------------------------------------------------ ridge cache
def test_ridge_cache_of_the_wrong_shape_is_recomputed(tmp_path):
    model = make_model("llama")
    w_in = model.input_embedding_matrix()
    w_out = model.hf_model.get_output_embeddings().weight
    path = tmp_path / f"{model.fingerprint.digest}-lam{model.ridge_lambda:g}.safetensors"
    save_file({"matrix": torch.eye(3), "target_norm": torch.tensor(1.0)}, str(path))
    with pytest.warns(UserWarning, match="recomputing"):
        r = realign.load_or_compute_ridge(w_in, w_out, model.fingerprint, model.ridge_lambda, directory=tmp_path)
    h = model.hidden_size
    assert tuple(r.matrix.shape) == (h, h)
    assert r(torch.randn(2, h)).shape == (2, h)  # old code: RuntimeError (mat1 and mat2 shapes cannot be multiplied)
    assert tuple(load_file(str(path))["matrix"].shape) == (h, h)  # the cache is repaired


# ------------------------------------------------------------ training checkpoint
def _trained(tmp_path):
    module = nn.Linear(4, 3)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module(torch.randn(2, 4)).sum().backward()
    opt.step()
    ckpt.save_checkpoint(tmp_path, module, opt, {"step": 1}, None)
    return module, opt


@pytest.mark.parametrize("tamper", ["bad_key", "wrong_shape", "bad_index", "nan"])
def test_tampered_optimizer_file_is_a_named_error(tmp_path, tamper):
    module, opt = _trained(tmp_path)
    flat = load_file(str(tmp_path / "optimizer.safetensors"))
    if tamper == "bad_key":
        flat["state.x"] = torch.zeros(1)
    elif tamper == "wrong_shape":
        flat["state.0.exp_avg"] = torch.zeros(5, 5)
    elif tamper == "bad_index":
        flat["state.7.exp_avg"] = torch.zeros(3, 4)
    else:
        flat["state.0.exp_avg_sq"] = torch.full((3, 4), float("nan"))
    save_file(flat, str(tmp_path / "optimizer.safetensors"))
    fresh = nn.Linear(4, 3)
    with pytest.raises(CheckpointError, match="optimizer state"):
        ckpt.load_checkpoint(tmp_path, fresh, torch.optim.AdamW(fresh.parameters(), lr=1e-3))


def test_untampered_optimizer_file_still_loads(tmp_path):
    module, opt = _trained(tmp_path)
    fresh = nn.Linear(4, 3)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    state, _ = ckpt.load_checkpoint(tmp_path, fresh, fresh_opt)
    assert state == {"step": 1}
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


# ------------------------------------------------------------ SQLite checkpoint file (serve's)
def test_garbage_sqlite_file_is_a_named_error(tmp_path):
    bad = tmp_path / "ckpt.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointFileError, match="damaged"):
        open_checkpoints(bad)


def test_damaged_sqlite_checkpoint_is_a_named_error(tmp_path):
    path = tmp_path / "ckpt.sqlite"
    saver, handles = open_checkpoints(path)
    graph = build_sequential(make_model("llama"), steps=1, max_new_tokens=2, checkpointer=saver, handle_store=handles)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"questions": ["What is 2+2?"]}, config)
    saver.conn.close()
    handles.blobs.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):  # every page after the header: btree pages become garbage
        data[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointFileError, match="damaged"):  # named when the file is opened
            open_checkpoints(path)
    with pytest.raises(sqlite3.DatabaseError):  # what a stock saver on this file would raise later
        sqlite3.connect(str(path)).execute("select count(*) from checkpoints").fetchone()


pytestmark = pytest.mark.reliability("bad_input")  # counted in the reliability summary (tests/conftest.py)
