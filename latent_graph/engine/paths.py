"""Where latent_graph keeps its on-disk caches (converted models, realignment matrices)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_CACHE = "LATENT_GRAPH_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$LATENT_GRAPH_CACHE`` if set, else the user cache dir."""
    root = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("latent_graph")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
