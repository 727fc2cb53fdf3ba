"""Where latent_graph keeps its on-disk caches (converted models, realignment matrices)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from latent_graph.errors import CacheDirError

ENV_CACHE = "LATENT_GRAPH_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$LATENT_GRAPH_CACHE`` if set, else the user cache dir."""
    root = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("latent_graph")
    path = Path(root).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_dir_error(path, exc) from exc
    return path


def cache_dir_error(path: Path, exc: OSError) -> CacheDirError:
    """The named error for a cache directory that cannot be created or written."""
    return CacheDirError(
        f"cannot write latent_graph's cache at {path} ({type(exc).__name__}: {exc.strerror or exc}); "
        f"point ${ENV_CACHE} at a writable directory"
    )
