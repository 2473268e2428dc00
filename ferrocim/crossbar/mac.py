"""Analog multiply-accumulate with input DAC and per-tile output ADC.

The ideal path of a layer is a plain ``F.linear`` / ``F.conv2d`` on its programmed weight;
these functions are used only when a converter is configured. Converters round in the
forward pass and pass gradients straight through (straight-through estimator).
"""

from __future__ import annotations

from typing import Any

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


def _round_to(x: Tensor, bits: int, full_scale: float) -> Tensor:
    """``x`` rounded to the grid of ``quantize_uniform`` (step ``full_scale / (2**(bits-1)
    - 1)``), not clipped."""
    step = full_scale / (2 ** (bits - 1) - 1)
    return torch.round(x / step) * step


def managed_matmul(
    x: Tensor,
    w: Tensor,
    *,
    tile_rows: int,
    dac_bits: int | None,
    dac_range: float,
    adc_bits: int | None,
    full_scale: float,
    out_noise: float,
    noise_management: str,
    bound_management: str,
    generator: torch.Generator | None,
) -> Tensor:
    """``x @ w.T`` through a managed periphery, tile by tile (aihwkit's IO semantics).

    ``x``: (M, fan_in); ``w``: (n_out, fan_in); the fan-in is split into tiles of
    ``tile_rows`` (the last zero-padded). Per sample and tile:

    1. noise management ``"abs_max"``: the input slice is divided by its largest ``|x|``
       ``s`` (an all-zero slice gives an output of exactly 0);
    2. the DAC (``dac_bits``): clipped to ``±dac_range``, rounded to ``2**(bits-1) - 1``
       steps per side;
    3. the MVM, plus ``out_noise * N(0, 1)`` per output (from ``generator``);
    4. the ADC (``adc_bits``): rounded to ``full_scale / (2**(bits-1) - 1)`` steps and
       clipped to ``±full_scale``. With bound management ``"iterative"`` a pass whose
       rounded output is beyond ``±full_scale`` at any output of the tile is repeated with
       the input divided by 2, 4, 8, ... (new noise each pass) until none is or the
       divisor exceeds ``0.25 * (2**(dac_bits-1) - 1)`` (1000 without a DAC);
    5. the output multiplied by ``s`` and the divisor; tiles summed.

    Units: ``x`` and ``w`` as given; ``full_scale`` and ``out_noise`` in weight x input
    units after step 1. No gradient (see :class:`ManagedMatmul`).
    """
    m, fan_in = x.shape
    n_out = w.shape[0]
    n_chunks = -(-fan_in // tile_rows)
    pad = n_chunks * tile_rows - fan_in
    if pad:
        x = F.pad(x, (0, pad))
        w = F.pad(w, (0, pad))
    xr = x.reshape(m, n_chunks, tile_rows)
    wr = w.reshape(n_out, n_chunks, tile_rows)
    if noise_management == "abs_max":
        scale = xr.abs().amax(dim=2)  # (M, C)
        nonzero = scale > 0
        scale = torch.where(nonzero, scale, torch.ones_like(scale))
        xr = xr / scale.unsqueeze(2)
    else:
        scale = torch.ones(m, n_chunks, dtype=x.dtype, device=x.device)
        nonzero = torch.ones_like(scale, dtype=torch.bool)
    limit = 0.25 * (2 ** (dac_bits - 1) - 1) if dac_bits is not None else 1000.0
    bm = bound_management == "iterative" and adc_bits is not None
    red = torch.ones_like(scale)
    done = torch.zeros_like(nonzero)
    y = torch.zeros(m, n_chunks, n_out, dtype=x.dtype, device=x.device)
    gdev = generator.device if generator is not None else x.device
    while True:
        xi = xr / red.unsqueeze(2)
        if dac_bits is not None:
            xi = _round_to(xi.clamp(-dac_range, dac_range), dac_bits, dac_range)
        part = torch.einsum("mrk,ork->mro", xi, wr)
        if out_noise > 0:
            noise = torch.randn(part.shape, generator=generator, device=gdev, dtype=part.dtype)
            part = part + out_noise * noise.to(part.device)
        if adc_bits is not None:
            rounded = _round_to(part, adc_bits, full_scale)
            hit = (rounded.abs() > full_scale).any(dim=2)
            part = rounded.clamp(-full_scale, full_scale)
        else:
            hit = torch.zeros_like(done)
        accept = ~done
        if bm:
            accept = accept & (~hit | (red > limit))
        y = torch.where(accept.unsqueeze(2), part * red.unsqueeze(2), y)
        done = done | accept
        if bool(done.all()):
            break
        red = torch.where(done, red, red * 2)
    y = y * (scale * nonzero.to(scale.dtype)).unsqueeze(2)
    return y.sum(dim=1)


class ManagedMatmul(torch.autograd.Function):
    """``y = managed_matmul(x, w)`` with gradients: to ``w`` the exact ``g^T x``; to ``x``
    ``g @ w`` (exact) or, with ``backward`` settings, ``g`` sent through ``w.T`` by
    :func:`managed_matmul` with them (aihwkit's noisy backward pass); the gradient to ``x``
    is zeroed at outputs with ``|y| >= 0.999 * grad_bound`` (``grad_bound`` not None:
    ``AnalogConfig.grad_out_bound``)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        w: Tensor,
        forward_kw: dict[str, Any],
        backward_kw: dict[str, Any] | None,
        grad_bound: float | None,
    ) -> Tensor:
        y = managed_matmul(x, w, **forward_kw)
        keep = None if grad_bound is None else (y.abs() < 0.999 * grad_bound).to(y.dtype)
        ctx.save_for_backward(x, w, keep if keep is not None else y.new_empty(0))
        ctx.backward_kw = backward_kw
        ctx.masked = keep is not None
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, w, keep = ctx.saved_tensors
        gw = g.T @ x if ctx.needs_input_grad[1] else None
        gx = None
        if ctx.needs_input_grad[0]:
            gm = g * keep if ctx.masked else g
            if ctx.backward_kw is None:
                gx = gm @ w
            else:
                gx = managed_matmul(gm, w.T.contiguous(), **ctx.backward_kw)
        return gx, gw, None, None, None
