"""Trained adapters: learned hidden→input realigners and cross-model latent edges.

The ridge matrix W_a is training-free but crude. An adapter is a small trained
map (linear or MLP) from a model's hidden state into a receiver's input-embedding
space, fitted with a hybrid loss (receiver next-token CE + MSE/cosine alignment
to the target token's embedding). Same-model adapters replace the ridge
realigner; cross-model adapters carry thoughts between agents on different
models. The relay channel (:mod:`~latent_graph.adapters.channel`) trains the
same-model map end to end through the frozen model on latent-only relays.
Torch only: nothing here imports LangGraph. See ``docs/adapters.md``.
"""

from latent_graph.adapters.channel import ChannelConfig, ChannelExample, ChannelResult, train_channel
from latent_graph.adapters.cross import cross_handoff, source_vectors
from latent_graph.adapters.data import Pair, default_pairs_path, load_pairs, split_of
from latent_graph.adapters.errors import (
    AdapterError,
    AdapterFileError,
    AdapterModelMismatchError,
    CheckpointError,
    PairsFormatError,
)
from latent_graph.adapters.evaluate import cross_relay_probe, evaluate_realigners, relay_probe, relay_probes
from latent_graph.adapters.modules import ChannelAdapter, LinearAdapter, MLPAdapter, build_adapter
from latent_graph.adapters.train import TrainConfig, TrainResult, train_adapter
from latent_graph.adapters.trained_realigner import AdapterRealigner

__all__ = [
    "AdapterError",
    "AdapterFileError",
    "AdapterModelMismatchError",
    "AdapterRealigner",
    "ChannelAdapter",
    "ChannelConfig",
    "ChannelExample",
    "ChannelResult",
    "CheckpointError",
    "LinearAdapter",
    "MLPAdapter",
    "Pair",
    "PairsFormatError",
    "TrainConfig",
    "TrainResult",
    "build_adapter",
    "cross_handoff",
    "cross_relay_probe",
    "default_pairs_path",
    "evaluate_realigners",
    "load_pairs",
    "relay_probe",
    "relay_probes",
    "source_vectors",
    "split_of",
    "train_adapter",
    "train_channel",
]
