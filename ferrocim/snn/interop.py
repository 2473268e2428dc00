"""Checkpoints of the published EEG-Ferro code (``torch.save(net.state_dict())``) as EEGSNN.

The published ``WrapCUBASpikingCNN`` state_dict (keys under ``snn.``) maps onto
:class:`~ferrocim.snn.EEGSNN` as follows (``beta`` = current decay ``cdecay``, ``gamma`` =
voltage decay ``vdecay``; the published decays carry a leading batch axis of 1)::

    snn.conv{1,2,3}.psp_func.{weight,bias}     conv{1,2,3}.synapse.{weight,bias}
    snn.temp_conv1.psp_func_list.{j}.*         tc1.taps.{2-j}.*  (list entry 2 acts on step t)
    snn.rec1.rec_func.{weight,bias}            r1.recurrent.{weight,bias}
    snn.fc1.psp_func.{weight,bias}             fc1.synapse.{weight,bias}
    snn.fc2.weight                             fc2.synapse.weight
    snn.ts_weights                             fc2.ts_weight
    snn.{c1,c2,c3,tc1,r1,f1}_{c,v}decay        {conv1,...,fc1}.neuron.{beta,gamma}

Each decay is stored twice (``snn.c1_cdecay`` and ``snn.conv1.cdecay`` are one
parameter); both copies must agree. Weight layers that are analog in the target network
are programmed with ``set_weights`` (no quantisation, no noise), so weights inside their
``±w_max`` — every weight an on-device checkpoint holds — land on the tiles unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ferrocim.checks import InputError
from ferrocim.snn.network import EEGSNN, NetworkConfig

__all__ = ["eeg_ferro_to_ferrocim", "load_eeg_ferro", "load_eeg_ferro_weights", "read_eeg_ferro"]

_SYNAPSES = {
    "conv1.psp_func": "conv1.synapse",
    "conv2.psp_func": "conv2.synapse",
    "conv3.psp_func": "conv3.synapse",
    "temp_conv1.psp_func_list.0": "tc1.taps.2",
    "temp_conv1.psp_func_list.1": "tc1.taps.1",
    "temp_conv1.psp_func_list.2": "tc1.taps.0",
    "rec1.rec_func": "r1.recurrent",
    "fc1.psp_func": "fc1.synapse",
}
#: published decay prefix, its submodule (second copy), ferrocim layer
_DECAYS = (
    ("c1", "conv1", "conv1"),
    ("c2", "conv2", "conv2"),
    ("c3", "conv3", "conv3"),
    ("tc1", "temp_conv1", "tc1"),
    ("r1", "rec1", "r1"),
    ("f1", "fc1", "fc1"),
)


def eeg_ferro_to_ferrocim(state: Mapping[str, Tensor], source: str = "state_dict") -> dict:
    """The published state_dict (with or without the ``snn.`` prefix) as ferrocim float
    parameter names and shapes; errors name ``source`` and the missing or bad key."""
    sd = {k.removeprefix("module.").removeprefix("snn."): v for k, v in state.items()}

    def take(key: str) -> Tensor:
        if key not in sd:
            raise InputError(f"{source}: key snn.{key} missing (not an EEG-Ferro checkpoint?)")
        v = sd[key]
        if not isinstance(v, Tensor):
            raise InputError(f"{source}: snn.{key} is not a tensor")
        return v.detach().float().cpu()

    out: dict[str, Tensor] = {}
    for old, new in _SYNAPSES.items():
        out[f"{new}.weight"] = take(f"{old}.weight")
        out[f"{new}.bias"] = take(f"{old}.bias")
    out["fc2.synapse.weight"] = take("fc2.weight")
    out["fc2.ts_weight"] = take("ts_weights")
    for short, sub, layer in _DECAYS:
        for kind, name in (("cdecay", "beta"), ("vdecay", "gamma")):
            top = take(f"{short}_{kind}")
            if f"{sub}.{kind}" in sd and not torch.equal(top, take(f"{sub}.{kind}")):
                raise InputError(
                    f"{source}: snn.{short}_{kind} and snn.{sub}.{kind} differ (they are one "
                    "parameter in the published network)"
                )
            if top.ndim < 2 or top.shape[0] != 1:
                raise InputError(
                    f"{source}: snn.{short}_{kind} has shape {tuple(top.shape)}, expected "
                    "(1, *neurons)"
                )
            out[f"{layer}.neuron.{name}"] = top[0]
    return out


def read_eeg_ferro(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a published checkpoint (CUDA-saved files load on the CPU; ``weights_only``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such checkpoint file")
    try:
        state: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or pickled files
        raise InputError(f"{p}: cannot read as a weights-only torch checkpoint ({exc})") from None
    if not isinstance(state, Mapping):
        raise InputError(f"{p}: expected a state_dict, got {type(state).__name__}")
    return eeg_ferro_to_ferrocim(state, str(p))


def network_shape(params: Mapping[str, Tensor]) -> dict[str, Any]:
    """``width`` and ``n_steps`` of the network the parameters belong to."""
    return {
        "width": params["conv1.synapse.weight"].shape[0] / 64,
        "n_steps": int(params["fc2.ts_weight"].numel()),
    }


@torch.no_grad()
def load_eeg_ferro_weights(model: EEGSNN, params: Mapping[str, Tensor]) -> None:
    """Copy ferrocim-named parameters into ``model``; analog weights via ``set_weights``."""
    for name, value in params.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        target = getattr(module, attr)
        if tuple(target.shape) != tuple(value.shape):
            raise InputError(
                f"{name}: checkpoint shape {tuple(value.shape)} does not fit the network's "
                f"{tuple(target.shape)} (width {model.config.width})"
            )
        value = value.to(device=target.device, dtype=target.dtype)
        if attr == "weight" and hasattr(module, "set_weights"):
            module.set_weights(value)  # analog: program the tiles (clipped to ±w_max)
        else:
            target.copy_(value)


def load_eeg_ferro(path: str | os.PathLike[str], **network_overrides: Any) -> EEGSNN:
    """An :class:`EEGSNN` holding a published EEG-Ferro checkpoint.

    ``network_overrides`` are :class:`NetworkConfig` fields (``mode``, ``dropout``,
    ``analog``…); width and time steps come from the checkpoint. The model is on the CPU
    in evaluation mode.
    """
    params = read_eeg_ferro(path)
    config = NetworkConfig(**{**network_shape(params), **network_overrides})
    model = EEGSNN(config)
    load_eeg_ferro_weights(model, params)
    return model.eval()
