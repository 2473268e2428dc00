"""Optimiser parameter groups for the spiking network.

Spikes are never negative, so every weight gradient of one neuron has the same sign, and
Adam moves each of its ``fan_in`` weights by about ``lr`` per step: the neuron's input
current shifts by roughly ``lr · rate · fan_in`` per step. With conv3's 1,152 inputs at a
firing rate of 0.4 and lr = 1e-3 that is 0.46 per step against a threshold of 0.1, and the
layer's neurons lock on or off within a few steps (measured). Two remedies: a small
single learning rate (the default, lr = 1e-4 with ``"none"``: plain Adam as published; it
fits 32 trials in 24 steps, measured), or ``lr_scaling = "fan_in"``, which gives each weight
tensor ``lr · min(1, 64 / fan_in)`` (conv1 keeps lr, the 256-input layers lr/4, conv2 lr/9,
conv3 lr/18) while biases and neuron parameters keep ``lr`` (at lr = 1e-3 this kept the
layers alive but drove the logits towards a constant, measured).
"""

from __future__ import annotations

from typing import Any

from torch import nn

REFERENCE_FAN_IN = 64


def param_groups(
    model: nn.Module, lr: float, *, scaling: str = "none", weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Parameter groups of the trainable parameters of ``model`` (see module docstring)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if scaling == "none":
        return [{"params": [p for _, p in trainable], "lr": lr, "weight_decay": weight_decay}]
    weight_ids: dict[int, float] = {}
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(module, nn.Linear | nn.Conv2d) or hasattr(module, "w_max"):
            fan_in = w[0].numel()
            weight_ids[id(w)] = min(1.0, REFERENCE_FAN_IN / fan_in)
    groups: dict[float, list[nn.Parameter]] = {}
    for _, p in trainable:
        groups.setdefault(weight_ids.get(id(p), 1.0), []).append(p)
    return [
        {"params": ps, "lr": lr * scale, "weight_decay": weight_decay}
        for scale, ps in sorted(groups.items(), reverse=True)
    ]
