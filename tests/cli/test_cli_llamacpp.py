"""``latent-graph run`` on the llama.cpp engine: a ``.gguf`` model path picks it, ``--engine``/``--threads`` reach it."""

from __future__ import annotations

import pytest

import latent_graph.cli as cli
from latent_graph.errors import InvalidArgumentError

pytest.importorskip("llama_cpp", reason="the llama.cpp engine needs the llamacpp extra")


def test_run_on_a_gguf_file(tiny_gguf, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LATENT_GRAPH_CACHE", str(tmp_path))
    argv = ["run", "--model", str(tiny_gguf), "--threads", "1", "--steps", "2", "--max-new-tokens", "4"]
    assert cli.main([*argv, "What is 12 times 7?", "What is 3+5?"]) == 0
    out, err = capsys.readouterr()
    assert "What is 3+5?" in out and "[4/4 nodes]" in err and "llama" not in err.lower()


def test_engine_options_are_checked_by_name(tiny_gguf) -> None:
    from latent_graph.engine import load_model

    with pytest.raises(InvalidArgumentError, match="transformers engine"):
        load_model(str(tiny_gguf), quantization="4bit")
    with pytest.raises(InvalidArgumentError, match="threads"):
        load_model("default", engine="transformers", threads=0)
    with pytest.raises(InvalidArgumentError, match="unknown engine"):
        load_model(str(tiny_gguf), engine="vllm")
