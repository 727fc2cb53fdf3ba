"""Decoding: the generation loop on top of a prefilled call, next-token sampling, constrained decoding.

- :mod:`.loop`: :func:`generate`, greedy or sampled tokens, finished rows leaving the batch, and
  :func:`generate_text`, the one way a decode call ends (text segment, :class:`~latent_graph.engine.Decoded`);
- :mod:`.schedule`: :class:`RowSchedule`, continuous batching (which row decodes in which slot, engine-agnostic);
- :mod:`.sampling`: temperature / top-p sampling and the model's end-of-sequence ids;
- :mod:`.constrain`: :class:`Constraint` (JSON schema, regex, choice, grammar) and the per-row matchers.
"""

from latent_graph.engine.decode.constrain import Constraint, RowConstraints, per_row
from latent_graph.engine.decode.loop import generate, generate_text
from latent_graph.engine.decode.sampling import eos_ids, sample_next
from latent_graph.engine.decode.schedule import RowSchedule

__all__ = [
    "Constraint",
    "RowConstraints",
    "RowSchedule",
    "eos_ids",
    "generate",
    "generate_text",
    "per_row",
    "sample_next",
]
