"""Named errors of the adapter package (all are :class:`~latent_graph.errors.AdapterError`).

Callers can catch ``AdapterError`` for anything adapter-related, or one of these
for a precise cause. Model mismatches raise :class:`AdapterModelMismatchError`,
a :class:`~latent_graph.errors.ModelMismatchError` naming the adapter's model(s)
and the model it was used with.
"""

from __future__ import annotations

from latent_graph.errors import AdapterError, LatentGraphError, ModelMismatchError


class AdapterFileError(AdapterError):
    """An adapter file is missing, corrupt, truncated or not an adapter."""


class PairsFormatError(AdapterError):
    """A JSONL (instruction, target) file or one of its lines is invalid."""


class CheckpointError(AdapterError):
    """A training checkpoint is corrupt or belongs to another configuration."""


class AdapterModelMismatchError(ModelMismatchError):
    """An adapter was used with a model it was not trained for."""

    def __init__(self, message: str, expected: str, got: str) -> None:
        LatentGraphError.__init__(self, message)
        self.expected = expected
        self.got = got


__all__ = ["AdapterError", "AdapterFileError", "AdapterModelMismatchError", "CheckpointError", "PairsFormatError"]
