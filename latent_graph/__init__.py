"""latent_graph: multi-agent LLM systems that talk in latent space (LatentMAS), LangGraph-native."""

from latent_graph.errors import (
    BatchSizeMismatchError,
    ContextOverflowError,
    DefaultModelMissingError,
    DeviceMismatchError,
    DTypeMismatchError,
    EmptyPromptError,
    HandleFormatError,
    InvalidArgumentError,
    InvalidStepsError,
    LatentGraphError,
    ModelLoadError,
    ModelMismatchError,
    NonFiniteLatentError,
    QuantizationUnavailableError,
)
from latent_graph.fingerprint import ModelFingerprint
from latent_graph.handle import LatentHandle, Segment
from latent_graph.model import Decoded, LocalLatentModel, StepInfo, TokenChunk
from latent_graph.realign import IdentityRealigner, Realigner, RidgeRealigner

__version__ = "0.1.0"

__all__ = [
    "BatchSizeMismatchError",
    "ContextOverflowError",
    "DTypeMismatchError",
    "Decoded",
    "DefaultModelMissingError",
    "DeviceMismatchError",
    "EmptyPromptError",
    "HandleFormatError",
    "IdentityRealigner",
    "InvalidArgumentError",
    "InvalidStepsError",
    "LatentGraphError",
    "LatentHandle",
    "LocalLatentModel",
    "ModelFingerprint",
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
