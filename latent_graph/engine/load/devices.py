"""Where a (possibly sharded) model computes: its input device and each decoder layer's device.

A model loaded with ``device_map=`` (accelerate) runs each module on its own
*execution* device; offloaded weights sit on the ``meta`` device and are brought
in by accelerate's hooks. A handle's K/V for layer ``l`` lives where layer ``l``
runs, its mask and positions where the inputs enter (the embedding's device).
These helpers read that placement through public attributes only
(``hf_device_map`` and accelerate's ``AlignDevicesHook.execution_device``).
"""

from __future__ import annotations

from typing import Any

import torch

from latent_graph.errors import DeviceMismatchError, ModelLoadError


def execution_device(module: Any) -> torch.device:
    """The device ``module`` computes on: accelerate's execution device if hooked, else its first parameter's."""
    hook = getattr(module, "_hf_hook", None)
    dev = getattr(hook, "execution_device", None)
    if dev is not None:
        return torch.device(dev) if not isinstance(dev, int) else torch.device("cuda", dev)
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def decoder_layers(hf_model: Any) -> list[Any]:
    """The decoder layer modules in order (``model.layers``, ``transformer.h``...), or [] if not found."""
    base = hf_model.base_model
    for name in ("layers", "h", "decoder_layers"):
        layers = getattr(base, name, None)
        if isinstance(layers, torch.nn.ModuleList):
            return list(layers)
    return []


def layer_devices(hf_model: Any) -> tuple[torch.device, ...]:
    """Execution device of each decoder layer (where its K/V cache lives)."""
    return tuple(execution_device(layer) for layer in decoder_layers(hf_model))


def offloaded(module: Any) -> bool:
    """True if some weight of ``module`` is not materialised (on the meta device)."""
    return any(p.device.type == "meta" for p in module.parameters())


def check_devices(handle: Any, input_device: torch.device, want: tuple[torch.device, ...], name: str) -> None:
    """:class:`DeviceMismatchError` unless the handle's mask sits on ``input_device`` and layer ``l``'s K/V on ``want[l]``."""
    if handle.device != input_device:
        raise DeviceMismatchError(
            f"handle is on {handle.device} but model {name!r} takes inputs on {input_device}; "
            f"use handle.to({str(input_device)!r}, layer_devices=model.layer_devices)"
        )
    if handle.num_layers and len(want) == handle.num_layers:
        for i, (got, dev) in enumerate(zip(handle.layer_devices, want)):
            if got != dev:
                raise DeviceMismatchError(
                    f"handle layer {i} K/V is on {got} but model {name!r} runs layer {i} on {dev}; "
                    "use handle.to(layer_devices=model.layer_devices)"
                )


def check_placement(hf_model: Any) -> None:
    """:class:`ModelLoadError` unless the input embeddings and the lm_head are materialised on a device (not 'disk')."""
    head = hf_model.get_output_embeddings()
    if offloaded(hf_model.get_input_embeddings()) or (head is not None and offloaded(head)):
        raise ModelLoadError(
            "the input embeddings and the lm_head must stay on a device (map them to 'cpu' or a GPU, not "
            "'disk'): the fingerprint and the realigner read them"
        )


def context_window(config: Any) -> int:
    """The model's context window in positions, from its config (2048 when the config names none)."""
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, key, None)
        if value:
            return int(value)
    return 2048
