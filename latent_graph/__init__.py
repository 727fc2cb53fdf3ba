"""latent_graph: multi-agent LLM systems that talk in latent space (LatentMAS), LangGraph-native.

Layers, each using the ones below through their public names only:
``engine`` (torch) -> ``persist`` (handle format, checkpoints) -> ``langchain``
(Runnable / chat-model faces) -> ``graph`` (LangGraph state, nodes, prebuilt
graphs, runs) -> ``present`` (drawings, reports) and ``cli``. ``adapters`` and
``bench`` are tools beside them. The root re-exports the engine's public API.
"""

from latent_graph.engine import (
    Decoded,
    DecodeOptions,
    IdentityRealigner,
    LatentHandle,
    LlamaCppLatentModel,
    LocalLatentModel,
    ModelFingerprint,
    Realigner,
    RidgeRealigner,
    Segment,
    StepInfo,
    TokenChunk,
)
from latent_graph.errors import (
    BatchSizeMismatchError,
    BlobMissingError,
    BranchCollisionError,
    ContextOverflowError,
    DefaultModelMissingError,
    DeviceMismatchError,
    DTypeMismatchError,
    EmptyPromptError,
    HandleFormatError,
    HandleNamespaceError,
    HandleRefError,
    HandleSignatureError,
    InvalidArgumentError,
    InvalidStepsError,
    LatentGraphError,
    LlamaCppError,
    ModelLoadError,
    ModelMismatchError,
    NonFiniteLatentError,
    QuantizationUnavailableError,
)

__version__ = "0.1.0"

__all__ = [
    "BatchSizeMismatchError",
    "BlobMissingError",
    "BranchCollisionError",
    "ContextOverflowError",
    "DTypeMismatchError",
    "DecodeOptions",
    "Decoded",
    "DefaultModelMissingError",
    "DeviceMismatchError",
    "EmptyPromptError",
    "HandleFormatError",
    "HandleNamespaceError",
    "HandleRefError",
    "HandleSignatureError",
    "IdentityRealigner",
    "InvalidArgumentError",
    "InvalidStepsError",
    "LatentGraphError",
    "LatentHandle",
    "LlamaCppLatentModel",
    "LocalLatentModel",
    "ModelFingerprint",
    "LlamaCppError",
    "ModelLoadError",
    "ModelMismatchError",
    "NonFiniteLatentError",
    "QuantizationUnavailableError",
    "Realigner",
    "RidgeRealigner",
    "Segment",
    "StepInfo",
    "TokenChunk",
]
