"""Map a float model's ``nn.Linear`` / ``nn.Conv2d`` layers onto crossbar tiles."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import torch
from torch import nn

from ferrocim.checks import InputError
from ferrocim.crossbar.config import AnalogConfig
from ferrocim.crossbar.layers import AnalogConv2d, AnalogLinear
from ferrocim.crossbar.module import AnalogModule, default_generator


def analog_modules(model: nn.Module) -> dict[str, AnalogModule]:
    """Every analog layer of ``model`` by qualified name (``""`` for the model itself)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, AnalogModule)}


def _matches(name: str, patterns: list[str]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def analog_twin(
    layer: nn.Linear | nn.Conv2d, config: AnalogConfig, generator: torch.Generator
) -> AnalogModule:
    """A new analog layer with ``layer``'s shape, its weight transferred (clipped to ±w_max,
    W to [0, 1], or [0.01, 0.99] with ``state_clamp``) and its bias copied."""
    w = layer.weight
    fk = {"config": config, "generator": generator, "device": w.device, "dtype": w.dtype}
    if isinstance(layer, nn.Linear):
        new: AnalogModule = AnalogLinear(
            layer.in_features, layer.out_features, layer.bias is not None, **fk
        )
    else:
        if layer.padding_mode != "zeros":
            raise InputError(
                f"convert: Conv2d with padding_mode={layer.padding_mode!r} is not supported "
                "(only 'zeros')"
            )
        new = AnalogConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.bias is not None,
            dilation=layer.dilation,
            groups=layer.groups,
            **fk,
        )
    new.set_weights(w.detach())
    if layer.bias is not None:
        with torch.no_grad():
            new.bias.copy_(layer.bias)
        new.bias.requires_grad_(layer.bias.requires_grad)
    new.weight.requires_grad_(w.requires_grad)
    new.train(layer.training)
    return new


def convert(
    model: nn.Module,
    config: AnalogConfig | None = None,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` with its analog twin, in place.

    ``include`` / ``exclude`` are qualified module names or glob patterns (``"fc*"``); a
    pattern of ``include`` that matches no convertible layer is an error. Biases and other
    parameters stay float. All converted layers share ``generator`` (a default one seeded
    from torch's global RNG when None). Returns ``model`` (or the twin, when ``model`` itself
    is a Linear/Conv2d).
    """
    config = AnalogConfig() if config is None else config
    gen = default_generator() if generator is None else generator
    inc = None if include is None else [include] if isinstance(include, str) else list(include)
    exc = [] if exclude is None else [exclude] if isinstance(exclude, str) else list(exclude)
    targets = [
        (name, m)
        for name, m in model.named_modules()
        if type(m) in (nn.Linear, nn.Conv2d)
        and (inc is None or _matches(name, inc))
        and not _matches(name, exc)
    ]
    if inc is not None:
        names = [n for n, _ in targets]
        missing = [p for p in inc if not any(_matches(n, [p]) for n in names)]
        if missing:
            convertible = [n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]
            raise InputError(
                f"convert: include pattern(s) {missing} match no Linear/Conv2d layer; "
                f"convertible layers are {convertible}"
            )
    for name, layer in targets:
        twin = analog_twin(layer, config, gen)
        if name == "":
            return twin
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, twin)
    return model
