"""2-D convolution computed the fastest exact way measured on the CPU (benchmarks/).

Two cases of the EEG network run much faster than ``F.conv2d`` on its default path:

- a kernel that covers the whole input (conv3: 3×3 kernel on a 3×3 map, 1×1 output) is a
  matrix product over the flattened window: ``F.linear`` (measured 4.2× faster forward +
  backward at batch 64 × 8 time steps);
- other convolutions on the CPU run in channels-last memory order (oneDNN's fast
  kernels: conv2 forward + backward 1.5×, conv1 forward about 10×); the output stays
  channels-last, so the layers after it keep that order without copies.

Both apply to stride 1, no padding or dilation, one group (the network's convolutions);
any other geometry goes to ``F.conv2d`` as it is. Same maths as ``F.conv2d``; sums may be
ordered differently (float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair

__all__ = ["conv2d"]


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | str | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``, ``x`` ``(N, C, H, W)``."""
    plain = (
        x.dim() == 4
        and _pair(stride) == (1, 1)
        and not isinstance(padding, str)
        and _pair(padding) == (0, 0)
        and _pair(dilation) == (1, 1)
        and groups == 1
    )
    if not plain:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if tuple(x.shape[-2:]) == tuple(weight.shape[-2:]):
        n, co = x.shape[0], weight.shape[0]
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # flatten the window in the input's (H, W, C) memory order: no copy of x
            xf = x.permute(0, 2, 3, 1).reshape(n, -1)
            wf = weight.permute(0, 2, 3, 1).reshape(co, -1)
        else:
            xf, wf = x.reshape(n, -1), weight.reshape(co, -1)
        return F.linear(xf, wf, bias).view(n, co, 1, 1)
    if x.device.type == "cpu":
        x = _channels_last(x)
    return F.conv2d(x, weight, bias)


def _channels_last(x: Tensor) -> Tensor:
    """``x`` ``(N, C, H, W)`` with channels-last strides. A one-channel tensor is dense in
    both orders and ``contiguous(memory_format=channels_last)`` leaves its strides as they
    are, so oneDNN would see it (and write the output) channels-first: it gets the
    channels-last strides of the same memory instead (no copy)."""
    _, c, h, w = x.shape
    if c == 1 and x.is_contiguous():
        return x.as_strided(x.shape, (h * w, 1, w, 1))
    return x.contiguous(memory_format=torch.channels_last)
