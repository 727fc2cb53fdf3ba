"""The call path: one engine call's KV cache, its positioned forward, and the fast Llama forward.

- :mod:`.work`: :class:`Work`, the mutable state of one call on top of an immutable handle (the
  KV cache it writes, mask, positions, segments); :func:`positions_after` is the one position rule.
- :mod:`.kvbuffer`: :class:`BufferCache`, the KV cache itself: preallocated columns written in place.
- :mod:`.llama`: :class:`LlamaStack`, the Llama decoder's forward without per-module dispatch
  (bit-equal to transformers'; :func:`stack_of` picks it where that holds).
"""

from latent_graph.engine.forward.kvbuffer import BufferCache
from latent_graph.engine.forward.llama import VERIFIED, LlamaStack, stack_of, supports
from latent_graph.engine.forward.work import Work, from_cache, positions_after, stack_rows, to_cache

__all__ = ["VERIFIED", "BufferCache", "LlamaStack", "Work", "from_cache", "positions_after", "stack_of", "stack_rows",
           "supports", "to_cache"]
