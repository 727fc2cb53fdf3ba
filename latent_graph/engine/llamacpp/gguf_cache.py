"""What the engine reads of a GGUF, computed once per file and kept in the cache dir.

Reading a GGUF's metadata with the ``gguf`` package parses every vocabulary string in Python, transformers
rebuilds the tokenizer from it, and the two matrices are dequantized with numpy: tens of seconds for a 49k-token
vocabulary. So the first load of a file saves the result (sizes, fingerprint, tokenizer, fp32 matrices) under
``<cache>/gguf/<key>``, keyed by the file's size, mtime and a hash of its first and last MiB; later loads read it
back in well under a second. A damaged or unreadable entry is rebuilt; an unwritable cache only costs the time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latent_graph.engine.llamacpp.gguf_file import (
    GGUFInfo,
    gguf_fingerprint,
    load_tokenizer,
    open_gguf,
    read_info,
    read_matrices,
)
from latent_graph.engine.llamacpp.runtime import requantize
from latent_graph.engine.load.fingerprint import ModelFingerprint
from latent_graph.errors import CacheDirError
from latent_graph.paths import cache_dir

VERSION = 1
"""Bumped when what is cached changes."""
Parts = tuple[GGUFInfo, Any, ModelFingerprint, torch.Tensor, torch.Tensor]


def file_key(path: Path) -> str:
    """The cache key of a file: size, mtime and its first and last MiB."""
    st = path.stat()
    h = hashlib.sha256(f"{VERSION}:{st.st_size}:{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, st.st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:24]


def requantized(path: Path, kind: str) -> Path:
    """The GGUF at ``path`` requantized to ``kind`` (see :data:`.runtime.GGUF_QUANTIZATIONS`), made at the first load
    and kept in the cache dir next to what is read of the file."""
    return requantize(path, kind, cache_dir() / "gguf" / f"{file_key(path)}-requantized")


def read_parts(path: Path, name: str | None) -> Parts:
    """(info, tokenizer, fingerprint, W_in, W_out) of the GGUF at ``path``, from the cache when it has them."""
    try:
        folder: Path | None = cache_dir() / "gguf" / file_key(path)
    except CacheDirError:
        folder = None
    if folder is not None and (folder / "done").exists():
        try:
            return _load(folder, path, name)
        except Exception as exc:  # a damaged entry: rebuilt below
            warnings.warn(f"ignoring the damaged GGUF cache {folder} ({type(exc).__name__}: {exc})", stacklevel=3)
    reader = open_gguf(path)
    info = read_info(path, reader)
    tokenizer = load_tokenizer(path)
    fingerprint = gguf_fingerprint(info, tokenizer, info.name, reader)
    w_in, w_out = read_matrices(path, reader)
    if folder is not None:
        _save(folder, info, tokenizer, fingerprint, w_in, w_out)
    return info, tokenizer, _named(fingerprint, name or info.name), w_in, w_out


def _named(fp: ModelFingerprint, name: str) -> ModelFingerprint:
    return ModelFingerprint(**{**asdict(fp), "name": name})  # the name is not part of the digest


def _load(folder: Path, path: Path, name: str | None) -> Parts:
    from transformers import AutoTokenizer

    meta = json.loads((folder / "info.json").read_text())
    info = GGUFInfo(**{**meta["info"], "path": path, "eos_ids": frozenset(meta["info"]["eos_ids"])})
    fingerprint = ModelFingerprint.from_json(meta["fingerprint"])
    weights = load_file(str(folder / "matrices.safetensors"))
    w_in = weights["w_in"]
    w_out = weights.get("w_out", w_in)
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    return info, tokenizer, _named(fingerprint, name or info.name), w_in, w_out


def _save(
    folder: Path, info: GGUFInfo, tokenizer: Any, fp: ModelFingerprint, w_in: torch.Tensor, w_out: torch.Tensor
) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            body = {k: v for k, v in asdict(info).items() if k != "path"}
            body["eos_ids"] = sorted(info.eos_ids)
            (tmp / "info.json").write_text(json.dumps({"info": body, "fingerprint": fp.to_json()}))
            tensors = {"w_in": w_in.contiguous()}
            if w_out is not w_in:
                tensors["w_out"] = w_out.contiguous()
            save_file(tensors, str(tmp / "matrices.safetensors"))
            tokenizer.save_pretrained(str(tmp / "tokenizer"))
            (tmp / "done").write_text("ok")
            if not folder.exists():
                os.rename(tmp, folder)  # atomic: a concurrent loader sees all of it or nothing
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        warnings.warn(
            f"cannot cache what was read of the GGUF in {folder} ({exc}); the next load reads it again", stacklevel=3
        )
