"""How a training loop runs the network: from the input, or from a cached frozen prefix.

When only the last layers train (SSTL: fc1 + fc2; re-tuning with a chosen set), the layers
before the first trained one are frozen: :class:`PrefixForward` runs them once over the
whole data set in eval mode (no dropout in frozen layers) and keeps their output spikes
as ``bool``; every update then runs only the trained layers. :class:`InputForward` is the
plain path (the whole network per batch); both give the same logits and gradients when
the frozen layers run without dropout (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ferrocim.snn.network import LAYER_ORDER


def split_layer(trained: Sequence[str]) -> str | None:
    """The last frozen layer before the first trained one (None: nothing to cache)."""
    first = min(LAYER_ORDER.index(layer) for layer in trained)
    return LAYER_ORDER[first - 1] if first > 0 else None


class InputForward:
    """Logits of trials ``idx`` computed from the input through the whole network.

    ``dropout_layers`` limits dropout to those layers (None: every dropout layer, as in
    ordinary training); frozen layers are given none so that this path equals
    :class:`PrefixForward`.
    """

    def __init__(
        self, model: nn.Module, x: Tensor, y: Tensor, dropout_layers: Sequence[str] | None = None
    ) -> None:
        self.model, self.x, self.y = model, x, y
        self.dropout_layers = None if dropout_layers is None else tuple(dropout_layers)

    def __call__(self, idx: Tensor, generator: torch.Generator | None = None) -> Tensor:
        kw = {} if self.dropout_layers is None else {"dropout_layers": self.dropout_layers}
        return self.model(self.x[idx], dropout_generator=generator, **kw)


class PrefixForward:
    """Logits of trials ``idx`` from a cache of the frozen prefix (see module docstring)."""

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, split: str, batch: int = 128):
        self.model, self.x, self.y, self.split = model, x, y, split
        was = model.training
        model.eval()
        with torch.no_grad():
            self.cache = torch.cat(
                [model.forward_until(x[i : i + batch], split) for i in range(0, len(x), batch)]
            )
        model.train(was)

    def __call__(self, idx: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.model.forward_from(self.split, self.cache[idx], dropout_generator=generator)


def make_forward(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    trained: Sequence[str] | None,
    use_cache: bool = True,
    frozen_dropout: bool = False,
    batch: int = 128,
) -> InputForward | PrefixForward:
    """The fastest exact way to run ``model`` when only ``trained`` layers learn.

    ``trained=None`` means all layers train (plain path). ``frozen_dropout=True`` keeps the
    published code's dropout in frozen layers, which rules the cache out.
    """
    if trained is None or frozen_dropout:
        return InputForward(model, x, y)
    cut = split_layer(trained)
    if cut is None:
        return InputForward(model, x, y)
    if not use_cache:
        return InputForward(model, x, y, dropout_layers=trained)
    return PrefixForward(model, x, y, cut, batch)
