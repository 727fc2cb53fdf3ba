"""Issue 11 item 5: concurrent GGUF conversions, read-only caches."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from latent_graph.engine import ModelFingerprint
from latent_graph.engine.realign import base as realign

ROOT = Path(__file__).resolve().parents[2]

# A conversion whose heavy part (transformers' GGUF loading) is replaced by a slow fake.
CONVERT = textwrap.dedent(
    """
    import os, sys, time, types
    from pathlib import Path
    import torch, transformers
    from safetensors.torch import save_file
    from latent_graph.engine.load import embedded as dm

    log = Path(sys.argv[2])

    class Fake:
        config = types.SimpleNamespace()
        def save_pretrained(self, out, **kw):
            Path(out).mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\\n")
            for i in range(5):
                time.sleep(0.1)
                save_file({"w": torch.full((64,), float(i))}, str(Path(out) / "model.safetensors"))
            (Path(out) / "config.json").write_text("{}")

    transformers.AutoModelForCausalLM.from_pretrained = staticmethod(lambda *a, **k: Fake())
    transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: Fake())
    dm.gguf_path = lambda: Path("/nonexistent/model.gguf")
    dm.convert_gguf(Path(sys.argv[1]))
    """
)


def test_two_processes_convert_at_once(tmp_path):
    target = tmp_path / "models" / "converted"
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONVERT, str(target), str(log)], env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert (target / "model.safetensors").exists() and (target / "config.json").exists()
    assert len(set(log.read_text().split())) == 1  # one process converted; the other found it done
    assert sorted(p.name for p in target.parent.iterdir()) == ["converted", "converted.lock"]  # no temp left


def _fingerprint() -> ModelFingerprint:
    return ModelFingerprint(name="t", digest="d0", vocab_hash="v", embed_checksum="e", head_checksum="h", config={})


def test_read_only_cache_falls_back_to_memory(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores the mode bits: make the write itself fail

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Read-only file system", str(ro))

        monkeypatch.setattr(realign, "save_file", refuse)
    torch.manual_seed(0)
    w = torch.randn(8, 4)
    try:
        with pytest.warns(UserWarning, match="from memory"):
            r = realign.load_or_compute_ridge(w, w, _fingerprint(), directory=ro / "realign")
    finally:
        ro.chmod(0o755)
    assert r.matrix.shape == (4, 4) and not any(ro.rglob("*.safetensors"))
    assert not list(ro.rglob("*.tmp"))


pytestmark = pytest.mark.reliability("fault")  # counted in the reliability summary (tests/conftest.py)
