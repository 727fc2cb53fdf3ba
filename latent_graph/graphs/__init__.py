"""Prebuilt graphs: sequential, compact and hierarchical latent MAS, the single-agent baseline, the registry.

Text-MAS baselines are the same graphs with ``edges="text"``. ``base.py`` owns every
builder's options (:class:`GraphKwargs`) and the shared prologue (:class:`Team`);
``registry.py`` names the graphs for the CLI, bench and serving.
"""

from latent_graph.graphs.base import GraphKwargs, GraphOptions
from latent_graph.graphs.compact import LAYOUTS, build_compact
from latent_graph.graphs.hierarchical import build_hierarchical
from latent_graph.graphs.registry import DEFAULT_GRAPH, GRAPHS, build_graph
from latent_graph.graphs.sequential import build_sequential, build_single

__all__ = ["DEFAULT_GRAPH", "GRAPHS", "LAYOUTS", "GraphKwargs", "GraphOptions", "build_compact", "build_graph", "build_hierarchical",
           "build_sequential", "build_single"]
