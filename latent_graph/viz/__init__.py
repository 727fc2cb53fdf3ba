"""Presentation layer: offline drawings of latent graphs (mermaid, ASCII, PNG/SVG)."""

from latent_graph.viz.draw import draw, edge_kinds_of, to_ascii, to_image, to_mermaid

__all__ = ["draw", "edge_kinds_of", "to_ascii", "to_image", "to_mermaid"]
