"""Drop-in analog twins of ``nn.Linear`` and ``nn.Conv2d``.

The ideal path is a plain ``F.linear`` / ``F.conv2d`` on ``.weight`` (the programmed
weight); read noise, the input DAC and the per-tile output ADC are added only when
configured. Time folded into the batch, ``(B*T, C, H, W)``, works as for torch's layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ferrocim.checks import InputError
from ferrocim.convolution import conv2d
from ferrocim.crossbar.config import AnalogConfig, config_alias
from ferrocim.crossbar.mac import ManagedMatmul, quantize_uniform, tiled_matmul_adc
from ferrocim.crossbar.module import AnalogModule

Tensor = torch.Tensor


def _init_bias(
    module: AnalogModule,
    n: int,
    fan_in: int,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> nn.Parameter:
    """Bias drawn as torch draws it, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from the layer RNG."""
    bound = 1.0 / math.sqrt(fan_in)
    gen = module.generator
    b = torch.rand(n, generator=gen, device=gen.device, dtype=dtype) * (2 * bound) - bound
    return nn.Parameter(b.to(device))


class _MaskGrad(torch.autograd.Function):
    """Identity whose gradient is multiplied by ``keep``."""

    @staticmethod
    def forward(ctx, y: Tensor, keep: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep)
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return g * keep, None


def bounded_grad(f, x: Tensor, w: Tensor, bound: float | None) -> Tensor:
    """``f(x, w)`` (an analog MVM, bilinear in ``x`` and ``w``) with aihwkit's output-bound
    gradient mask (``AnalogConfig.grad_out_bound``): the same value, the same gradient to
    ``w``, but the gradient to ``x`` zero at every output with ``|y| >= 0.999 * bound``.
    ``bound=None``, or ``x`` without gradient: ``f(x, w)`` as it is."""
    if bound is None or not (torch.is_grad_enabled() and x.requires_grad):
        return f(x, w)
    y = f(x.detach(), w)  # the value and the weight's gradient
    keep = (y.detach().abs() < 0.999 * bound).to(y.dtype)
    yx = f(x, w.detach())  # the input's gradient, masked
    return y + _MaskGrad.apply(yx - yx.detach(), keep)


class AnalogLinear(AnalogModule):
    """``nn.Linear`` whose weight lives on crossbar tiles (see :class:`AnalogModule`).

    ``config``: the tiles' :class:`AnalogConfig` (default ``AnalogConfig()``);
    ``rpu_config`` is accepted as its aihwkit spelling (give one of the two).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: AnalogConfig | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        w_max: float | None = None,
        rpu_config: AnalogConfig | None = None,
    ) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        if self.in_features < 1 or self.out_features < 1:
            raise InputError(
                f"AnalogLinear needs in_features, out_features >= 1, got "
                f"{in_features}, {out_features}"
            )
        config = config_alias(config, rpu_config, "AnalogLinear")
        self._init_analog(
            (self.out_features, self.in_features), config, generator, device, dtype, w_max
        )
        if bias:
            self.bias = _init_bias(
                self, self.out_features, self.in_features, device, self.weight.dtype
            )
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.analog_config
        m = x.numel() // self.in_features if self.in_features else 0
        self._count(
            m * self.in_features * self.out_features,
            m * self.in_features,
            m * self.out_features * self.layout.n_row_tiles,
        )
        w = self._noisy_weight()
        if cfg.managed_io:
            return self._managed_forward(x, w)
        if cfg.dac_bits is not None:
            x = quantize_uniform(x, cfg.dac_bits, cfg.dac_range)
        bound = cfg.grad_out_bound
        if cfg.adc_bits is None:
            if bound is None:
                return F.linear(x, w, self.bias)
            y = bounded_grad(F.linear, x, w, bound)
            return y if self.bias is None else y + self.bias
        fs = cfg.adc_range * self.w_max * cfg.dac_range

        def mvm(a: Tensor, b: Tensor) -> Tensor:
            return tiled_matmul_adc(a, b, cfg.tile_rows, cfg.adc_bits, fs)

        y = bounded_grad(mvm, x.reshape(-1, self.in_features), w, bound)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def _managed_forward(self, x: Tensor, w: Tensor) -> Tensor:
        """The forward through the managed periphery (``AnalogConfig.managed_io``: noise
        and bound management, output noise, DAC and ADC per tile, optionally a noisy
        backward; :class:`~ferrocim.crossbar.mac.ManagedMatmul`), noise from the layer's
        generator; the bias added digitally."""
        cfg = self.analog_config
        fs = cfg.adc_full_scale
        if fs is None:
            fs = cfg.adc_range * self.w_max * cfg.dac_range
        fkw = {
            "tile_rows": cfg.tile_rows,
            "dac_bits": cfg.dac_bits,
            "dac_range": cfg.dac_range,
            "adc_bits": cfg.adc_bits,
            "full_scale": fs,
            "out_noise": cfg.out_noise,
            "noise_management": cfg.noise_management,
            "bound_management": cfg.bound_management,
            "generator": self.generator,
        }
        bkw = None
        if cfg.backward_io:  # through W^T: the tiles' columns are its inputs; no BM
            bkw = {**fkw, "tile_rows": cfg.tile_cols, "bound_management": "none"}
        y = ManagedMatmul.apply(x.reshape(-1, self.in_features), w, fkw, bkw, cfg.grad_out_bound)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, {self.analog_extra_repr()}"
        )


class AnalogConv2d(AnalogModule):
    """``nn.Conv2d`` (zero padding) whose weight lives on crossbar tiles.

    ``config``: the tiles' :class:`AnalogConfig` (default ``AnalogConfig()``);
    ``rpu_config`` is accepted as its aihwkit spelling (give one of the two).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        bias: bool = True,
        *,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        config: AnalogConfig | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        w_max: float | None = None,
        rpu_config: AnalogConfig | None = None,
    ) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise InputError(
                f"AnalogConv2d: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = int(groups)
        config = config_alias(config, rpu_config, "AnalogConv2d")
        cfg = AnalogConfig() if config is None else config
        if cfg.managed_io:
            raise InputError(
                "AnalogConv2d: the managed periphery (AnalogConfig.periphery='aihwkit', "
                "noise_management, bound_management, out_noise, adc_full_scale, backward_io) "
                "is implemented for AnalogLinear only; use the DAC/ADC fields (dac_bits, "
                "adc_bits) for convolutions"
            )
        if cfg.adc_bits is not None and (groups != 1 or isinstance(padding, str)):
            raise InputError(
                "AnalogConv2d: the per-tile ADC path supports groups=1 and numeric padding "
                f"only, got groups={groups}, padding={padding!r}"
            )
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self._init_analog(shape, cfg, generator, device, dtype, w_max)
        if bias:
            self.bias = _init_bias(
                self, self.out_channels, self.layout.fan_in, device, self.weight.dtype
            )
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.analog_config
        w = self._noisy_weight()
        if cfg.dac_bits is not None:
            x = quantize_uniform(x, cfg.dac_bits, cfg.dac_range)
        if cfg.grad_out_bound is not None:
            y = bounded_grad(self._conv_no_bias, x, w, cfg.grad_out_bound)
            if self.bias is not None:
                y = y + self.bias.view(-1, 1, 1)
        elif cfg.adc_bits is None:
            y = conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)
        else:
            y = self._conv_adc(x, w)
        positions = y.numel() // self.out_channels
        fan_in = self.layout.fan_in
        self._count(
            y.numel() * fan_in,
            positions * fan_in * self.groups,
            y.numel() * self.layout.n_row_tiles,
        )
        return y

    def _conv_no_bias(self, x: Tensor, w: Tensor) -> Tensor:
        if self.analog_config.adc_bits is None:
            return conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)
        return self._conv_adc(x, w, bias=False)

    def _conv_adc(self, x: Tensor, w: Tensor, bias: bool = True) -> Tensor:
        cfg = self.analog_config
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        n, _, h, wd = x.shape
        kh, kw = self.kernel_size
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (wd + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        x2 = cols.transpose(1, 2).reshape(-1, self.layout.fan_in)
        fs = cfg.adc_range * self.w_max * cfg.dac_range
        y = tiled_matmul_adc(x2, w.reshape(self.out_channels, -1), cfg.tile_rows, cfg.adc_bits, fs)
        y = (
            y.reshape(n, ho * wo, self.out_channels)
            .transpose(1, 2)
            .reshape(n, self.out_channels, ho, wo)
        )
        if bias and self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"{self.analog_extra_repr()}"
        )
