"""AdapterRealigner: a trained adapter behind the :class:`~latent_graph.engine.realign.Realigner` interface.

It carries the fingerprint of the model whose hidden states it reads (*source*)
and of the model whose input-embedding space it writes (*target*). A same-model
adapter (source == target) plugs in wherever the ridge realigner does
(``LocalLatentModel(..., realign=adapter)``, ``model.with_realigner(adapter)``);
a cross-model adapter is used through :func:`latent_graph.adapters.cross.cross_handoff`.
Any other use raises :class:`AdapterModelMismatchError` naming both models.

On disk: one safetensors file, weights as ``module.*`` tensors and a JSON
metadata entry (module config, both fingerprints, free-form training info).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from latent_graph.adapters.errors import AdapterFileError, AdapterModelMismatchError
from latent_graph.adapters.modules import from_config
from latent_graph.engine import ModelFingerprint, Realigner

FORMAT = "latent_graph.adapter"
VERSION = "1"


class AdapterRealigner(Realigner):
    """A trained hidden→input adapter bound to its source and target models.

    Args:
        module: A :mod:`~latent_graph.adapters.modules` adapter (H_src → H_dst).
        source: Fingerprint of the model whose hidden states it reads.
        target: Fingerprint of the model whose input space it writes (default: ``source``).
        info: Free-form JSON-able training info saved with it.
    """

    name = "adapter"

    def __init__(
        self,
        module: nn.Module,
        source: ModelFingerprint,
        target: ModelFingerprint | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.module = module.eval()
        self.source = source
        self.target = target or source
        self.info = dict(info or {})
        self.name = f"adapter-{module.config()['kind']}"

    # -------------------------------------------------------------- shapes
    @property
    def kind(self) -> str:
        return str(self.module.config()["kind"])

    @property
    def src_dim(self) -> int:
        return int(self.module.config()["src_dim"])

    @property
    def dst_dim(self) -> int:
        return int(self.module.config()["dst_dim"])

    @property
    def is_cross(self) -> bool:
        return self.source.digest != self.target.digest

    # ---------------------------------------------------------------- apply
    def map(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map hidden states (..., H_src) to target input embeddings (..., H_dst), fp32, no grad."""
        if hidden.shape[-1] != self.src_dim:
            raise AdapterModelMismatchError(
                f"adapter expects hidden size {self.src_dim} (model {self.source}) but got {hidden.shape[-1]}",
                str(self.source),
                f"a tensor of hidden size {hidden.shape[-1]}",
            )
        dev = next(self.module.parameters()).device
        with torch.no_grad():
            return self.module(hidden.to(device=dev, dtype=torch.float32))

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.map(hidden).to(hidden.dtype)  # (B, H)

    def to(self, device: torch.device | str) -> AdapterRealigner:
        if next(self.module.parameters()).device == torch.device(device):
            return self
        return AdapterRealigner(copy.deepcopy(self.module).to(device), self.source, self.target, self.info)

    # --------------------------------------------------------------- checks
    def check_model(self, fingerprint: ModelFingerprint) -> None:
        """Called by LocalLatentModel: only a same-model adapter of *this* model may realign it."""
        if self.is_cross:
            raise AdapterModelMismatchError(
                f"cross-model adapter {self.source} → {self.target} cannot realign model {fingerprint} "
                "inside its own latent steps; use latent_graph.adapters.cross_handoff for a cross-model edge",
                f"{self.source} → {self.target}",
                str(fingerprint),
            )
        if fingerprint.digest != self.source.digest:
            raise AdapterModelMismatchError(
                f"adapter was trained for model {self.source} but is being used with model {fingerprint}; "
                "train an adapter for this model (latent-graph adapter train) or use realign='ridge'",
                str(self.source),
                str(fingerprint),
            )

    def check_pair(self, source: ModelFingerprint, target: ModelFingerprint) -> None:
        """Raise unless this adapter maps ``source`` hidden states into ``target`` inputs."""
        for side, want, got in (("source", self.source, source), ("target", self.target, target)):
            if want.digest != got.digest:
                raise AdapterModelMismatchError(
                    f"adapter {side} model is {want} but {side} model given is {got} "
                    f"(adapter maps {self.source} → {self.target})",
                    str(want),
                    str(got),
                )

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> Path:
        """Write weights + metadata to one safetensors file (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "module": json.dumps(self.module.config()),
            "source_fingerprint": self.source.to_json(),
            "target_fingerprint": self.target.to_json(),
            "info": json.dumps(self.info, default=str),
        }
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, model: Any = None, target_model: Any = None) -> AdapterRealigner:
        """Load an adapter file; with ``model`` (and ``target_model`` for cross adapters) check it fits.

        Raises:
            AdapterFileError: missing, corrupt or foreign file.
            AdapterModelMismatchError: the adapter belongs to other model(s).
        """
        path = Path(path)
        if not path.is_file():
            raise AdapterFileError(f"adapter file not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise AdapterFileError(f"{path} is not a latent_graph adapter file (format={meta.get('format')!r})")
                if meta.get("version") != VERSION:
                    raise AdapterFileError(f"{path}: unsupported adapter file version {meta.get('version')!r}")
                config, source, target, info = _read_meta(path, meta)
                check_weights(
                    path, config, {k: (f.get_slice(k).get_shape(), f.get_slice(k).get_dtype()) for k in f.keys()}
                )
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # sizes now known to fit the config
        except AdapterFileError:
            raise
        except Exception as exc:
            raise AdapterFileError(f"{path} is not a readable safetensors file ({exc})") from exc
        module = from_config(config)
        state = {k.removeprefix("module."): v for k, v in tensors.items()}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise AdapterFileError(f"{path}: weights do not match the adapter config ({exc})") from exc
        adapter = cls(module, source, target, info)
        if model is not None and target_model is None:
            adapter.check_model(model.fingerprint)
        elif model is not None:
            adapter.check_pair(model.fingerprint, target_model.fingerprint)
        return adapter

    def __repr__(self) -> str:
        return (
            f"AdapterRealigner({self.kind}, {self.source.name!r} → {self.target.name!r}, {self.src_dim}→{self.dst_dim})"
        )


MAX_DIM = 1 << 16
"""Largest adapter width accepted from a file (hidden sizes of today's models are < 32k)."""


def _read_meta(
    path: Path, meta: dict[str, str]
) -> tuple[dict[str, Any], ModelFingerprint, ModelFingerprint, dict[str, Any]]:
    try:
        config = json.loads(meta["module"])
        source = ModelFingerprint.from_json(meta["source_fingerprint"])
        target = ModelFingerprint.from_json(meta["target_fingerprint"])
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise AdapterFileError(f"{path}: corrupt adapter metadata ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise AdapterFileError(f"{path}: adapter module config must be a JSON object")
    for key in ("src_dim", "dst_dim", "hidden_dim"):
        value = config.get(key)
        if key == "hidden_dim" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
            raise AdapterFileError(f"{path}: adapter {key} must be an int in [1, {MAX_DIM}], got {value!r}")
    return config, source, target, info if isinstance(info, dict) else {}


def check_weights(path: Path, config: dict[str, Any], shapes: dict[str, tuple[list[int], str]]) -> None:
    """The file's tensors must be exactly the module's parameters (names, shapes, float dtypes).

    The module is built on the ``meta`` device: nothing is allocated for it.
    """
    try:
        with torch.device("meta"):
            expected = {f"module.{k}": list(v.shape) for k, v in from_config(config).state_dict().items()}
    except AdapterFileError:
        raise
    except Exception as exc:
        raise AdapterFileError(f"{path}: invalid adapter module config ({type(exc).__name__}: {exc})") from None
    got = {k: list(shape) for k, (shape, _) in shapes.items()}
    if got != expected:
        raise AdapterFileError(f"{path}: weights do not match the adapter config (expected {expected}, file has {got})")
    bad = sorted(k for k, (_, dtype) in shapes.items() if dtype not in ("F16", "BF16", "F32", "F64"))
    if bad:
        raise AdapterFileError(f"{path}: non-float adapter weights {bad}")
