"""The latent engine: torch + transformers only (it imports neither LangChain nor LangGraph).

Data path: a prompt goes into :meth:`LocalLatentModel.think` (``model.py``), which
prefills it on top of a :class:`LatentHandle` (``handle.py``) through
:class:`~latent_graph.engine.cache.Work`, takes latent steps through a
:class:`Realigner` (``realign.py``) and freezes a new handle;
:meth:`LocalLatentModel.decode` generates the judger's text (``decoding.py``).
Settings and their checks live in ``options.py``.
"""

from latent_graph.engine.compress import KVPolicy, check_kv, compress, kept_total, observing
from latent_graph.engine.fingerprint import ModelFingerprint
from latent_graph.engine.handle import LatentHandle, Segment, SegmentKind
from latent_graph.engine.factory import load_model
from latent_graph.engine.merge import merge_branches
from latent_graph.engine.model import LocalLatentModel
from latent_graph.engine.options import (
    DEFAULT_MEMORY,
    DEFAULT_STEPS,
    MEMORY_POLICIES,
    DecodeOptions,
    MemoryPolicy,
    check_memory,
    check_steps,
)
from latent_graph.engine.protocols import DecodingModel, LatentModel, StepCallback, TokenCallback
from latent_graph.engine.quantize import QUANTIZATIONS, check_quantization
from latent_graph.engine.realign import IdentityRealigner, Realigner, RidgeRealigner
from latent_graph.engine.realign_catalog import REALIGNERS, make_realigner
from latent_graph.engine.results import Decoded, StepInfo, TokenChunk

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_STEPS",
    "MEMORY_POLICIES",
    "QUANTIZATIONS",
    "DecodeOptions",
    "Decoded",
    "DecodingModel",
    "IdentityRealigner",
    "KVPolicy",
    "LatentHandle",
    "LatentModel",
    "LocalLatentModel",
    "MemoryPolicy",
    "REALIGNERS",
    "ModelFingerprint",
    "Realigner",
    "RidgeRealigner",
    "Segment",
    "SegmentKind",
    "StepCallback",
    "StepInfo",
    "TokenCallback",
    "TokenChunk",
    "check_kv",
    "check_memory",
    "check_quantization",
    "compress",
    "check_steps",
    "kept_total",
    "load_model",
    "make_realigner",
    "merge_branches",
    "observing",
]
