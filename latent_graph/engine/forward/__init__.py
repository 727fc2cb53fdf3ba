"""The call path: one engine call's KV cache, its positioned forward, and the fast Llama forward.

- :mod:`.feed`: :func:`feed`, the one routine that puts input (prompt turns, chats, tool results, injected
  embeddings) on top of a cache: encode, check the context and the reserve, forward, add the segment, count;
- :mod:`.steps`: :func:`latent_steps`, the latent-step loop (realign, feed back, freeze);
- :mod:`.work`: :class:`Work`, the mutable state of one call on top of an immutable handle (the
  KV cache it writes, mask, positions, segments); :func:`positions_after` is the one position rule.
- :mod:`.kvbuffer`: :class:`BufferCache`, the KV cache itself: preallocated columns written in place.
- :mod:`.slices`: a batch larger than the model's ``batch_rows`` forwarded in row slices of that many.
- :mod:`.llama`: :class:`LlamaStack`, the Llama decoder's forward without per-module dispatch
  (bit-equal to transformers'; :func:`stack_of` picks it where that holds).
"""

from latent_graph.engine.forward.feed import Fed, feed, feed_prompt, feed_tools
from latent_graph.engine.forward.kvbuffer import BufferCache
from latent_graph.engine.forward.llama import LlamaStack, probe, stack_of, supports
from latent_graph.engine.forward.steps import latent_steps
from latent_graph.engine.forward.work import Work, from_cache, positions_after, stack_rows, to_cache

__all__ = [
    "BufferCache",
    "Fed",
    "LlamaStack",
    "Work",
    "feed",
    "feed_prompt",
    "feed_tools",
    "from_cache",
    "latent_steps",
    "positions_after",
    "probe",
    "stack_of",
    "stack_rows",
    "supports",
    "to_cache",
]
