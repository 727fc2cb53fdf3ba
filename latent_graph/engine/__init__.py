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
    DEFAULT_STEPS,
    MEMORY_POLICIES,
    DecodeOptions,
    MemoryPolicy,
    check_memory,
    check_steps,
)
from latent_graph.engine.realign import IdentityRealigner, Realigner, RidgeRealigner
from latent_graph.engine.results import Decoded, StepInfo, TokenChunk

__all__ = [
    "DEFAULT_STEPS",
    "MEMORY_POLICIES",
    "DecodeOptions",
    "Decoded",
    "IdentityRealigner",
    "KVPolicy",
    "LatentHandle",
    "LocalLatentModel",
    "MemoryPolicy",
    "ModelFingerprint",
    "Realigner",
    "RidgeRealigner",
    "Segment",
    "SegmentKind",
    "StepInfo",
    "TokenChunk",
    "check_kv",
    "check_memory",
    "compress",
    "check_steps",
    "kept_total",
    "load_model",
    "merge_branches",
    "observing",
]
