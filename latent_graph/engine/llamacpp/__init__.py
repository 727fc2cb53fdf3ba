"""The llama.cpp engine: :class:`LlamaCppLatentModel`, the engine's seam over any GGUF file (optional extra
``llamacpp``: llama-cpp-python, imported when a model loads).

- :mod:`.model`: the model class (think, inject, decode, tool turns, the logit lens);
- :mod:`.feed`: a call's input put on top of a handle (the transformers engine's checks, one llama.cpp batch);
- :mod:`.session`: one call on top of a handle (rows in llama.cpp sequences, frozen into a new handle);
- :mod:`.kvstate`: a handle row's K/V <-> llama.cpp's exported sequence state;
- :mod:`.runtime`: the llama.cpp model and context (batches of tokens or embeddings, hidden states, logits);
- :mod:`.gguf_file`: what the engine reads of the GGUF itself (sizes, matrices, tokenizer, fingerprint);
- :mod:`.gguf_cache`: what was read of a file (and its requantized copy), kept in the cache dir.
"""

from latent_graph.engine.llamacpp.model import LlamaCppLatentModel
from latent_graph.engine.llamacpp.runtime import GGUF_QUANTIZATIONS, free_cores

__all__ = ["GGUF_QUANTIZATIONS", "LlamaCppLatentModel", "free_cores"]
