"""The latent engine: torch + transformers only (it imports neither LangChain nor LangGraph).

Rooms, by job (each subpackage's ``__init__`` is its public surface):

- ``model.py``: :class:`LocalLatentModel`, the class a reader opens first (think, inject, decode, tool turns);
- ``handle.py``: the immutable :class:`LatentHandle` agents pass on; ``results.py``: what calls return;
  ``options.py``: the one owner of the engine's settings and checks; ``protocols.py``: the declared seams;
  ``merge.py``: parallel branches joined after their shared prefix;
- ``forward/``: the call path: :class:`~.forward.Work` (one call's KV cache, mask and positions on top of a
  handle), the feed that puts tokens on a cache, the preallocated KV buffer and the fast Llama forward;
- ``prompt/``: agent turns, whole chats, tool turns and the tool-call format as literal token ids;
- ``decode/``: the generation loop, sampling and constrained decoding (:class:`Constraint`);
- ``realign/``: realigners (hidden state -> next input) and the logit lens;
- ``kv/``: compressed edges (:class:`KVPolicy`, :func:`compress`) and shared prompt prefixes;
- ``load/``: loading HF models and the embedded default one, quantization, devices, fingerprints.

Run path of one agent: :meth:`LocalLatentModel.think` renders the prompt (``prompt/``), feeds it on top of the
incoming handle (``forward/feed.py``: encode, check the context, forward through ``Work``, add the segment,
count), takes its latent steps through the realigner (``realign/``) and freezes a new handle;
:meth:`LocalLatentModel.decode` feeds the judger's prompt the same way and generates text (``decode/``).

Layers above import engine names only from this package (``from latent_graph.engine import X``).
"""

from latent_graph.engine.decode import Constraint
from latent_graph.engine.forward import from_cache, positions_after, to_cache
from latent_graph.engine.handle import SEGMENT_KINDS, LatentHandle, Segment, SegmentKind
from latent_graph.engine.kv import (
    DEFAULT_PREFIX_BYTES,
    KVPolicy,
    SharedPrefixes,
    check_kv,
    compress,
    enable_prefixes,
    kept_total,
    observing,
)
from latent_graph.engine.llamacpp import GGUF_QUANTIZATIONS, LlamaCppLatentModel
from latent_graph.engine.load import (
    ENGINES,
    QUANTIZATIONS,
    ModelFingerprint,
    check_quantization,
    engine_for,
    load_model,
)
from latent_graph.engine.merge import merge_branches
from latent_graph.engine.model import LocalLatentModel
from latent_graph.engine.options import (
    DEFAULT_MEMORY,
    DEFAULT_STEPS,
    MEMORY_POLICIES,
    DecodeOptions,
    EngineLimits,
    GrammarLimits,
    MemoryPolicy,
    check_memory,
    check_steps,
)
from latent_graph.engine.prompt import (
    TEXT_REPLY,
    ChatTurn,
    count_chat_tokens,
    encode_prompts,
    parse_tool_calls,
    tool_call_constraint,
    tools_system_text,
)
from latent_graph.engine.protocols import DecodingModel, LatentModel, StepCallback, TokenCallback
from latent_graph.engine.realign import REALIGNERS, IdentityRealigner, Realigner, RidgeRealigner, make_realigner
from latent_graph.engine.results import Decoded, StepInfo, TokenChunk

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_PREFIX_BYTES",
    "DEFAULT_STEPS",
    "ENGINES",
    "MEMORY_POLICIES",
    "QUANTIZATIONS",
    "REALIGNERS",
    "SEGMENT_KINDS",
    "TEXT_REPLY",
    "ChatTurn",
    "Constraint",
    "DecodeOptions",
    "Decoded",
    "DecodingModel",
    "EngineLimits",
    "GGUF_QUANTIZATIONS",
    "GrammarLimits",
    "IdentityRealigner",
    "KVPolicy",
    "LlamaCppLatentModel",
    "LatentHandle",
    "LatentModel",
    "LocalLatentModel",
    "MemoryPolicy",
    "ModelFingerprint",
    "Realigner",
    "RidgeRealigner",
    "Segment",
    "SegmentKind",
    "SharedPrefixes",
    "StepCallback",
    "StepInfo",
    "TokenCallback",
    "TokenChunk",
    "check_kv",
    "check_memory",
    "check_quantization",
    "check_steps",
    "compress",
    "count_chat_tokens",
    "enable_prefixes",
    "engine_for",
    "encode_prompts",
    "from_cache",
    "kept_total",
    "load_model",
    "make_realigner",
    "merge_branches",
    "observing",
    "parse_tool_calls",
    "positions_after",
    "to_cache",
    "tool_call_constraint",
    "tools_system_text",
]
