"""Model-loading flags every command shares (``--quantization``), defined once."""

from __future__ import annotations

import argparse

from latent_graph.engine import QUANTIZATIONS


def add_quantization_arg(p: argparse.ArgumentParser) -> None:
    """``--quantization 4bit|8bit``: the modes come from :data:`latent_graph.engine.QUANTIZATIONS`."""
    p.add_argument("--quantization", default=None, choices=QUANTIZATIONS,
                   help="load the weights in 4-bit NF4 or 8-bit LLM.int8() through bitsandbytes "
                        "(on the CPU or a GPU, wherever the installed bitsandbytes runs it)")
