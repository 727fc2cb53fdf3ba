"""Named errors of the benchmark harness.

All derive from :class:`latent_graph.errors.LatentGraphError` (through
:class:`BenchError`) and from the closest builtin, so callers can catch either.
"""

from __future__ import annotations

from latent_graph.errors import LatentGraphError


class BenchError(LatentGraphError):
    """Base class of every error raised by :mod:`latent_graph.bench`."""


class BenchArgumentError(BenchError, ValueError):
    """A bad benchmark argument (unknown method or task, bad limit, batch size, seeds...)."""


class DataNotFoundError(BenchError, FileNotFoundError):
    """A data file was not given or does not exist (and no fallback was asked for)."""


class DataFormatError(BenchError, ValueError):
    """A data file has a malformed line; the message names the file and the line number."""


class GraphOutputError(BenchError, RuntimeError):
    """A graph returned something other than one answer per question."""


class ResumeError(BenchError, ValueError):
    """An output folder holds results of another configuration, or resuming was not asked for."""


class SandboxUnavailableError(BenchError, RuntimeError):
    """Generated code cannot be contained: bubblewrap (``bwrap``) is missing or cannot create a sandbox.

    The message says why and how to fix it (``apt-get install bubblewrap``) or, knowingly,
    opt out (``sandbox="none"`` / ``LATENT_GRAPH_UNSAFE_EXEC=1``).
    """
