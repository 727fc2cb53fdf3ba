"""Prebuilt graphs: sequential, compact and hierarchical latent MAS, the single-agent baseline, the registry.

Text-MAS baselines are the same graphs with ``edges="text"``. ``base.py`` owns every
graph option (:class:`GraphOptions`; the builders' keywords :class:`GraphKwargs` are checked against it) and
the shared prologue (:class:`Team`); ``registry.py`` names the graphs for the CLI, bench, serving and Studio
(one name per graph: the registry key is also the compiled graph's name).
"""

from latent_graph.graphs.base import OPTION_NAMES, GraphKwargs, GraphOptions
from latent_graph.graphs.compact import build_compact
from latent_graph.graphs.hierarchical import build_hierarchical
from latent_graph.graphs.registry import DEFAULT_GRAPH, FACTORY_OPTIONS, GRAPHS, build_graph
from latent_graph.graphs.sequential import build_sequential, build_single

__all__ = [
    "DEFAULT_GRAPH",
    "FACTORY_OPTIONS",
    "GRAPHS",
    "OPTION_NAMES",
    "GraphKwargs",
    "GraphOptions",
    "build_compact",
    "build_graph",
    "build_hierarchical",
    "build_sequential",
    "build_single",
]
