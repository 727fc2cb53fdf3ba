"""Prebuilt graphs: sequential and hierarchical latent MAS, and their baselines.

Text-MAS baselines are the same graphs with ``edges="text"``.
"""

from latent_graph.graph.prebuilt.compact import LAYOUTS, build_compact
from latent_graph.graph.prebuilt.hierarchical import build_hierarchical
from latent_graph.graph.prebuilt.sequential import build_sequential, build_single

__all__ = ["LAYOUTS", "build_compact", "build_hierarchical", "build_sequential", "build_single"]
