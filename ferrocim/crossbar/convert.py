"""Map a float model's ``nn.Linear`` / ``nn.Conv2d`` layers onto crossbar tiles."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable

import torch
from torch import nn

from ferrocim.checks import InputError
from ferrocim.crossbar.config import AnalogConfig, config_alias
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
    rpu_config: AnalogConfig | None = None,
    inplace: bool = False,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` / ``nn.Conv2d`` replaced by its analog
    twin (as aihwkit's ``convert_to_analog``); ``model`` itself is left as it was.

    ``config``: the tiles' :class:`AnalogConfig` (default ``AnalogConfig()``);
    ``rpu_config`` is accepted as its aihwkit spelling (give one of the two).
    ``inplace=True`` replaces the layers in ``model`` itself and returns it (no copy).
    ``include`` / ``exclude`` are qualified module names or glob patterns (``"fc*"``); a
    pattern of ``include`` that matches no convertible layer is an error. Biases and other
    parameters stay float. All converted layers share ``generator`` (a default one seeded
    from torch's global RNG when None); the copy draws nothing, so ``inplace`` does not
    change a seeded result. When ``model`` itself is a Linear/Conv2d its twin is returned
    (with ``inplace`` too: a module cannot replace itself).
    """
    config = config_alias(config, rpu_config, "convert")
    config = AnalogConfig() if config is None else config
    inc = None if include is None else [include] if isinstance(include, str) else list(include)
    exc = [] if exclude is None else [exclude] if isinstance(exclude, str) else list(exclude)
    targets = [
        name
        for name, m in model.named_modules()
        if type(m) in (nn.Linear, nn.Conv2d)
        and (inc is None or _matches(name, inc))
        and not _matches(name, exc)
    ]
    if inc is not None:
        missing = [p for p in inc if not any(_matches(n, [p]) for n in targets)]
        if missing:
            convertible = [n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]
            raise InputError(
                f"convert: include pattern(s) {missing} match no Linear/Conv2d layer; "
                f"convertible layers are {convertible}"
            )
    gen = default_generator() if generator is None else generator
    if not inplace and targets != [""]:
        try:
            model = copy.deepcopy(model)
        except Exception as e:  # e.g. a submodule holding an open file or a lock
            raise InputError(
                f"convert: cannot copy the model ({type(e).__name__}: {e}); pass "
                "inplace=True to convert it in place"
            ) from e
    for name in targets:
        layer = model.get_submodule(name)
        twin = analog_twin(layer, config, gen)  # type: ignore[arg-type]
        if name == "":
            return twin
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, twin)
    return model
