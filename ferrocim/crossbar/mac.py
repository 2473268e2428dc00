"""Analog multiply-accumulate with input DAC and per-tile output ADC.

The ideal path of a layer is a plain ``F.linear`` / ``F.conv2d`` on its programmed weight;
these functions are used only when a converter is configured. Converters round in the
forward pass and pass gradients straight through (straight-through estimator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def quantize_uniform(x: Tensor, bits: int, full_scale: float) -> Tensor:
    """Clip to ``±full_scale`` and round to ``2**(bits-1) - 1`` steps per side; the gradient
    passes straight through (also where clipped)."""
    step = full_scale / (2 ** (bits - 1) - 1)
    q = torch.round(x.clamp(-full_scale, full_scale) / step) * step
    return x + (q - x).detach()


def tiled_matmul_adc(x: Tensor, w: Tensor, tile_rows: int, bits: int, full_scale: float) -> Tensor:
    """``x @ w.T`` with each tile's partial sum digitised separately, then summed.

    ``x``: (M, fan_in); ``w``: (n_out, fan_in). Tiles split the fan-in into chunks of
    ``tile_rows`` (the last one zero-padded); every chunk's (M, n_out) partial sum goes
    through its own ADC. Column tiling does not change the arithmetic (one ADC per column).
    """
    m, fan_in = x.shape
    n_out = w.shape[0]
    n_chunks = -(-fan_in // tile_rows)
    pad = n_chunks * tile_rows - fan_in
    if pad:
        x = F.pad(x, (0, pad))
        w = F.pad(w, (0, pad))
    partial = torch.einsum(
        "mrk,ork->mro", x.reshape(m, n_chunks, tile_rows), w.reshape(n_out, n_chunks, tile_rows)
    )
    return quantize_uniform(partial, bits, full_scale).sum(dim=1)
