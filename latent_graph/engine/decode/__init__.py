"""Decoding: the generation loop on top of a prefilled call, next-token sampling, constrained decoding.

- :mod:`.loop`: :func:`generate`, greedy or sampled tokens, finished rows leaving the batch;
- :mod:`.sampling`: temperature / top-p sampling and the model's end-of-sequence ids;
- :mod:`.constrain`: :class:`Constraint` (JSON schema, regex, choice, grammar) and the per-row matchers.
"""

from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.decode.loop import generate
from latent_graph.engine.decode.sampling import eos_ids, sample_next

__all__ = ["Constraint", "RowConstraints", "eos_ids", "generate", "per_row", "sample_next"]
