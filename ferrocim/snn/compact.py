"""Store spike tensors saved for the backward pass as ``bool`` instead of float.

A synapse that reads spikes (conv2 reads conv1's, fc1 reads r1's, …) saves its input for
the weight gradient. Spikes are exactly 0 or 1, so keeping them as one byte instead of
four is lossless. :func:`saved_as_bool` packs every saved tensor that shares storage with
the given spike tensor (views and reshapes included) and unpacks it to its float dtype
when backward needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

Packed = Tensor | tuple[Tensor, torch.dtype]

MIN_VALUES = 1 << 18
"""Spike tensors smaller than this (values; 1 MiB of float32) are saved as they are: the
two conversions cost more time than the memory is worth (an online SSTL update at batch 1
saves fc1's 41k-value input: packing and unpacking took 90 µs of a 2.4 ms update)."""


class SpikePacker:
    """pack/unpack hooks that store views of one spike tensor as ``bool``."""

    def __init__(self, spikes: Tensor) -> None:
        self.key = spikes.untyped_storage().data_ptr()
        self.dtype = spikes.dtype

    def pack(self, t: Tensor) -> Packed:
        if t.dtype == self.dtype and t.untyped_storage().data_ptr() == self.key:
            return (t.to(torch.bool), t.dtype)
        return t

    @staticmethod
    def unpack(p: Packed) -> Tensor:
        return p[0].to(p[1]) if isinstance(p, tuple) else p


@contextlib.contextmanager
def saved_as_bool(spikes: Tensor, enabled: bool = True) -> Iterator[None]:
    """Inside the block, autograd saves views of ``spikes`` (values 0/1) as ``bool``
    (tensors of fewer than :data:`MIN_VALUES` values are saved unchanged)."""
    if (
        not enabled
        or not torch.is_grad_enabled()
        or spikes.dtype == torch.bool
        or spikes.numel() < MIN_VALUES
    ):
        yield
        return
    packer = SpikePacker(spikes)
    with torch.autograd.graph.saved_tensors_hooks(packer.pack, packer.unpack):
        yield
