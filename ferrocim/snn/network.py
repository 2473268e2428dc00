"""The CUBA-LIF spiking CNN for EEG motor imagery (the paper's network).

Input ``(B, 1, 10, 11, T)`` (64 EEG channels on a 10×11 scalp grid, ``T = 160`` samples,
time last) → logits ``(B, 2)``.

======  ==============================================================  ============
layer   operation                                                       output
======  ==============================================================  ============
conv1   Conv2d 1→64 3×3 + CUBA-LIF                                      64×8×9
conv2   Conv2d 64→128 3×3 + CUBA-LIF                                    128×6×7
pool    AvgPool2d(2) of conv2 spikes (floor)                            128×3×3
conv3   Conv2d 128→256 3×3 + CUBA-LIF                                   256×1×1
tc1     causal temporal conv: three Linear(256,256) with bias on the    256
        conv3 spikes at t, t-1, t-2 (taps[k] sees t-k; taps whose input
        precedes t=0 are skipped, bias included) + CUBA-LIF
r1      CUBA-LIF with adaptive threshold; current = tc1 spikes (no      256
        weight) + Linear(256,256, bias) of r1's own previous spikes
fc1     Linear(256,256) + CUBA-LIF                                      256
fc2     Linear(256,2, no bias); logits = Σ_t ts_weight[t]·fc2(s_fc1[t])  2
======  ==============================================================  ============

Dropout (training only, probability ``config.dropout``) multiplies the whole current
update of tc1, r1 and fc1, ``c = (beta c + I) m``, by a mask drawn once per sequence
(kept entries ``1/(1-dropout)``, so the factor compounds over time as in the published
code); the same mask zeroes the surrogate gradient of dropped neurons. r1's recurrent
current is part of ``I``. All neuron states start at zero; r1's
threshold starts at ``config.threshold``.

Two evaluation paths give the same results: ``mode="loop"`` steps every layer through the
time steps one by one (the readable oracle); ``mode="parallel"`` (default) runs each
stateless synapse on a chunk of time steps at once (time folded into the batch) and scans
only the neuron states over time, chunk after chunk with states carried over
(``config.time_chunk``; by default on the CPU as many steps as keep about
``CPU_CHUNK_VALUES`` neuron values of the largest layer in flight — 16 steps of conv2 at
batch 64, all 160 steps of fc1 for an SSTL update at batch 1 — and all steps on CUDA).
Weight layers are float ``nn.Conv2d``/``nn.Linear`` or, for the names in
``config.analog_layers`` when ``config.analog`` is set, the crossbar's
``AnalogConv2d``/``AnalogLinear`` (imported only then).

``config.precision = "bf16"`` runs the synapse products (convolutions and linear layers
of the parallel path, float or ideal-periphery analog) under ``torch.autocast`` in
bfloat16 and casts their currents back to float32 at once: neuron states and their scans,
r1's recurrent product, the readout sum, the weights, their gradients and the pulse rule
stay float32. ``"fp32"`` (default) is the published arithmetic, bit for bit.

Parameter count: 721,312 in all, of which 697,408 are device-mapped weights.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferrocim.allocator import keeps_freed_memory
from ferrocim.checks import InputError, check_option, check_range
from ferrocim.convolution import conv2d
from ferrocim.snn.compact import saved_as_bool
from ferrocim.snn.functional import adaptive_recurrent_scan
from ferrocim.snn.modules import AdaptiveCubaLIF, CubaLIF

if TYPE_CHECKING:  # pragma: no cover - the crossbar is optional at import time
    from ferrocim.crossbar import AnalogConfig

__all__ = [
    "DROPOUT_LAYERS",
    "EEGSNN",
    "INPUT_SHAPE",
    "LAYER_ORDER",
    "LAYER_SHAPES",
    "N_DEVICE_WEIGHTS",
    "N_PARAMETERS",
    "PUBLISHED_W_MAX",
    "WEIGHT_LAYERS",
    "NetworkConfig",
    "make_conv2d",
    "make_linear",
]

LAYER_ORDER: tuple[str, ...] = ("conv1", "conv2", "pool", "conv3", "tc1", "r1", "fc1", "fc2")
WEIGHT_LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "tc1", "r1", "fc1", "fc2")
DROPOUT_LAYERS: tuple[str, ...] = ("tc1", "r1", "fc1")
SPIKING_LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "tc1", "r1", "fc1")
SPIKE_INPUT_LAYERS: tuple[str, ...] = ("conv2", "tc1", "fc1", "fc2")
INPUT_SHAPE: tuple[int, ...] = (1, 10, 11)
LAYER_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1": (64, 8, 9),
    "conv2": (128, 6, 7),
    "pool": (128, 3, 3),
    "conv3": (256, 1, 1),
    "tc1": (256,),
    "r1": (256,),
    "fc1": (256,),
    "fc2": (2,),
}
N_PARAMETERS = 721_312
N_DEVICE_WEIGHTS = 697_408
CPU_CHUNK_VALUES = 16 * 64 * 128 * 6 * 7
"""Neuron values per chunk of the parallel path on the CPU: 16 time steps of conv2 at batch
64 (22 MB of float32 currents). Measured on a 2-core AVX-512 CPU: inference 0.44 s at 16
steps against 0.46-0.54 s at 8 and 0.7 s at 32 or more (out of cache, and every chunk's
fresh tensors page-faulting); training about the same at 8-24. Smaller batches and layers
get proportionally more time steps per chunk (fewer, larger operations)."""
CPU_INFERENCE_CHUNK_VALUES = 160 * 64 * 128 * 6 * 7
"""The same without autograd when freed memory stays in the process
(:func:`ferrocim.allocator.keep_freed_memory`, which every command calls): all 160 steps
of conv2 at batch 64 at once. Measured there: inference 0.36 s against 0.50 s at 16 steps
(maximum resident size 1.4 GB against 0.6 GB); without kept memory 0.57 s against 0.48 s,
hence the condition. Training stays at :data:`CPU_CHUNK_VALUES` (all steps: 1.2 s against
1.5 s, but 2.7-3.2 GB against 2.1 GB resident)."""
PUBLISHED_W_MAX: dict[str, float] = {
    "conv1": 0.3330,
    "conv2": 0.0417,
    "conv3": 0.0295,
    "tc1": 0.0625,
    "r1": 0.0625,
    "fc1": 0.0625,
    "fc2": 0.0625,
}
"""Per-layer weight bound A of the published code (literals in ``train_on_device.py``)."""


def paper_w_max(fan_in: int) -> float:
    """``1/sqrt(fan_in)`` rounded to 3 significant figures: the rule that reproduces every
    published literal at width 1 (0.3330, 0.0417, 0.0295, 0.0625), used at any width."""
    return float(f"{1.0 / math.sqrt(fan_in):.3g}")


@dataclass(frozen=True)
class NetworkConfig:
    """Configuration of :class:`EEGSNN`.

    analog: crossbar configuration (``ferrocim.crossbar.AnalogConfig``) or None for a
        float network. analog_layers: which weight layers go on tiles when ``analog`` is set.
    dropout: drop probability of the per-sequence masks of tc1, r1, fc1.
    threshold: firing threshold (model voltage units; r1's initial threshold).
    surrogate_window: half-width of the rectangular surrogate window around the threshold
        (voltage units). surrogate_height: ``ds/dv`` inside the window (the published
        ``0.3 · 1[|v - threshold| < 0.3]``).
    n_steps: time steps per input window (samples). mode: "parallel" or "loop".
    time_chunk: in the parallel path, how many time steps each layer folds into one batch
        before the next layer runs on them (neuron states carry over between chunks); None:
        on the CPU, as many steps as keep ``CPU_CHUNK_VALUES`` values of the largest layer run
        (keeps the working set in cache), all steps on CUDA.
    compact_spikes: in the parallel path, spike tensors saved for backward are stored as
        ``bool`` (lossless; :mod:`ferrocim.snn.compact`).
    width: channel multiplier (1.0 = the paper's 64/128/256 channels and 256 hidden
        neurons; 0.25 gives 16/32/64 and 64, for laptops and quick tests). Spatial and
        temporal structure never change.
    w_max_rule: per-layer weight bound A of the analog layers. "paper" (default): the
        published literals (:data:`PUBLISHED_W_MAX`), which are ``1/sqrt(fan_in)`` rounded
        to 3 significant figures — at ``width != 1`` that same rounding of the layer's own
        fan-in. "fan_in": exactly ``1/sqrt(fan_in)`` (PyTorch's initialisation bound).
    precision: arithmetic of the synapse products of the parallel path: "fp32" (default,
        the published arithmetic) or "bf16" (autocast; see the module docstring). Analog
        layers take bf16 only with the ideal periphery (no DAC/ADC, no managed I/O, no
        output-bound gradient mask): those are accumulators that stay float32.
    """

    analog: AnalogConfig | None = None
    analog_layers: tuple[str, ...] = WEIGHT_LAYERS
    dropout: float = 0.3
    threshold: float = 0.1
    surrogate_window: float = 0.3
    surrogate_height: float = 0.3
    n_steps: int = 160
    mode: Literal["parallel", "loop"] = "parallel"
    time_chunk: int | None = None
    compact_spikes: bool = True
    width: float = 1.0
    w_max_rule: Literal["paper", "fan_in"] = "paper"
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        for name in self.analog_layers:
            check_option("analog_layers", name, WEIGHT_LAYERS)
        object.__setattr__(self, "analog_layers", tuple(self.analog_layers))
        check_range("dropout", self.dropout, 0.0, 1.0, high_inclusive=False)
        check_range("threshold", self.threshold, 0.0, low_inclusive=False)
        check_range("surrogate_window", self.surrogate_window, 0.0, low_inclusive=False)
        check_range("surrogate_height", self.surrogate_height, 0.0, low_inclusive=False)
        check_range("n_steps", self.n_steps, 1)
        check_option("mode", self.mode, ("parallel", "loop"))
        if self.time_chunk is not None:
            check_range("time_chunk", self.time_chunk, 1)
        check_range("width", self.width, 0.0, 1.0, low_inclusive=False)
        check_option("w_max_rule", self.w_max_rule, ("paper", "fan_in"))
        check_option("precision", self.precision, ("fp32", "bf16"))
        if self.precision == "bf16" and self.analog is not None:
            a = self.analog
            periphery = {
                "dac_bits": a.dac_bits,
                "adc_bits": a.adc_bits,
                "grad_out_bound": a.grad_out_bound,
                "managed_io": a.managed_io or None,
            }
            used = [k for k, v in periphery.items() if v is not None]
            if used:
                raise InputError(
                    f"precision: 'bf16' runs only ideal-periphery tiles in bfloat16; this "
                    f"array sets {', '.join(used)} (their sums stay float32): use "
                    "precision 'fp32' (--precision fp32)"
                )
        if min(self.channels()) < 1:
            raise InputError(f"width: {self.width} leaves a layer without channels")

    def channels(self) -> tuple[int, int, int, int]:
        """Channels of conv1, conv2, conv3 and the hidden width of tc1/r1/fc1."""
        w = self.width
        return round(64 * w), round(128 * w), round(256 * w), round(256 * w)

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of every layer (``LAYER_SHAPES`` when ``width == 1``)."""
        c1, c2, c3, h = self.channels()
        return {
            "conv1": (c1, 8, 9),
            "conv2": (c2, 6, 7),
            "pool": (c2, 3, 3),
            "conv3": (c3, 1, 1),
            "tc1": (h,),
            "r1": (h,),
            "fc1": (h,),
            "fc2": (2,),
        }

    def w_max(self, name: str, fan_in: int) -> float:
        """Weight bound A of weight layer ``name`` with ``fan_in`` inputs per output."""
        if self.w_max_rule == "fan_in":
            return 1.0 / math.sqrt(fan_in)
        if self.width == 1.0:
            return PUBLISHED_W_MAX[name]
        return paper_w_max(fan_in)

    def is_analog(self, name: str) -> bool:
        """True when weight layer ``name`` is placed on crossbar tiles."""
        return self.analog is not None and name in self.analog_layers


def _init_uniform(layer: nn.Module, generator: torch.Generator | None) -> None:
    """PyTorch's default bound ``1/sqrt(fan_in)`` for weight and bias, from ``generator``."""
    w = layer.weight
    bound = 1.0 / math.sqrt(w[0].numel())
    with torch.no_grad():
        nn.init.uniform_(w, -bound, bound, generator=generator)
        if getattr(layer, "bias", None) is not None:
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def make_linear(
    name: str,
    in_features: int,
    out_features: int,
    *,
    bias: bool,
    config: NetworkConfig,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """``nn.Linear`` or, if ``config.is_analog(name)``, ``ferrocim.crossbar.AnalogLinear``."""
    if config.is_analog(name):
        from ferrocim.crossbar import AnalogLinear

        return AnalogLinear(
            in_features,
            out_features,
            bias=bias,
            config=config.analog,
            generator=generator,
            w_max=config.w_max(name, in_features),
        )
    layer = nn.Linear(in_features, out_features, bias=bias)
    _init_uniform(layer, generator)
    return layer


def make_conv2d(
    name: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    bias: bool,
    config: NetworkConfig,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """``nn.Conv2d`` or, if ``config.is_analog(name)``, ``ferrocim.crossbar.AnalogConv2d``."""
    if config.is_analog(name):
        from ferrocim.crossbar import AnalogConv2d

        return AnalogConv2d(
            in_channels,
            out_channels,
            kernel_size,
            bias=bias,
            config=config.analog,
            generator=generator,
            w_max=config.w_max(name, in_channels * kernel_size * kernel_size),
        )
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    _init_uniform(layer, generator)
    return layer


def _lif(shape: tuple[int, ...], config: NetworkConfig) -> CubaLIF:
    return CubaLIF(shape, **_neuron_kwargs(config))


def _neuron_kwargs(config: NetworkConfig) -> dict[str, float]:
    return {
        "threshold": config.threshold,
        "surrogate_window": config.surrogate_window,
        "surrogate_height": config.surrogate_height,
    }


class ConvBlock(nn.Module):
    """Conv2d synapse (``.synapse``) followed by a CUBA-LIF population (``.neuron``)."""

    def __init__(
        self,
        name: str,
        cin: int,
        cout: int,
        out_shape: tuple[int, ...],
        config: NetworkConfig,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.synapse = make_conv2d(
            name, cin, cout, 3, bias=True, config=config, generator=generator
        )
        self.neuron = _lif(out_shape, config)


class TemporalBlock(nn.Module):
    """Causal temporal conv over the last three steps: ``taps[k]`` acts on input ``t - k``."""

    def __init__(
        self,
        name: str,
        in_width: int,
        width: int,
        config: NetworkConfig,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.taps = nn.ModuleList(
            make_linear(name, in_width, width, bias=True, config=config, generator=generator)
            for _ in range(3)
        )
        self.neuron = _lif((width,), config)


class RecurrentBlock(nn.Module):
    """Adaptive-threshold LIF; ``.recurrent`` maps its own previous spikes to current."""

    def __init__(
        self, name: str, width: int, config: NetworkConfig, generator: torch.Generator | None
    ) -> None:
        super().__init__()
        self.recurrent = make_linear(
            name, width, width, bias=True, config=config, generator=generator
        )
        self.neuron = AdaptiveCubaLIF((width,), **_neuron_kwargs(config))


class DenseBlock(nn.Module):
    """Linear synapse followed by a CUBA-LIF population."""

    def __init__(
        self, name: str, width: int, config: NetworkConfig, generator: torch.Generator | None
    ) -> None:
        super().__init__()
        self.synapse = make_linear(
            name, width, width, bias=True, config=config, generator=generator
        )
        self.neuron = _lif((width,), config)


class Readout(nn.Module):
    """Linear(256, 2, no bias) per step, summed over time with learnable ``ts_weight``."""

    def __init__(
        self,
        name: str,
        width: int,
        n_out: int,
        n_steps: int,
        config: NetworkConfig,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.synapse = make_linear(
            name, width, n_out, bias=False, config=config, generator=generator
        )
        self.ts_weight = nn.Parameter(torch.full((n_steps,), 1.0 / n_steps))


class EEGSNN(nn.Module):
    """The paper's CUBA-LIF spiking CNN (see the module docstring for the layers).

    generator: CPU ``torch.Generator`` for the weight initialisation (the model is built on
    the CPU; move it with ``.to(device)``). Same generator seed ⇒ same initial weights.
    """

    def __init__(
        self, config: NetworkConfig | None = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else NetworkConfig()
        g = generator
        c1, c2, c3, h = cfg.channels()
        self.layer_shapes = shapes = cfg.layer_shapes()
        self.conv1 = ConvBlock("conv1", 1, c1, shapes["conv1"], cfg, g)
        self.conv2 = ConvBlock("conv2", c1, c2, shapes["conv2"], cfg, g)
        self.pool = nn.AvgPool2d(2)
        self.conv3 = ConvBlock("conv3", c2, c3, shapes["conv3"], cfg, g)
        self.tc1 = TemporalBlock("tc1", c3, h, cfg, g)
        self.r1 = RecurrentBlock("r1", h, cfg, g)
        self.fc1 = DenseBlock("fc1", h, cfg, g)
        self.fc2 = Readout("fc2", h, 2, cfg.n_steps, cfg, g)

    # ------------------------------------------------------------------ bookkeeping
    def device_weights(self) -> dict[str, Tensor]:
        """The device-mapped weight tensors by qualified name (conv/linear weights)."""
        out: dict[str, Tensor] = {}
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d | nn.Linear) or hasattr(module, "w_max"):
                out[f"{name}.weight"] = module.weight
        return out

    def parameter_counts(self) -> dict[str, int]:
        """``{"total": ..., "device_weights": ...}`` (721,312 and 697,408 for the paper)."""
        return {
            "total": sum(p.numel() for p in self.parameters()),
            "device_weights": sum(w.numel() for w in self.device_weights().values()),
        }

    # ------------------------------------------------------------------ public API
    def forward(
        self,
        x: Tensor,
        *,
        dropout_generator: torch.Generator | None = None,
        dropout_layers: Iterable[str] | None = None,
    ) -> Tensor:
        """Logits ``(B, 2)`` of an input ``(B, 1, 10, 11, n_steps)``.

        ``dropout_layers`` limits training-mode dropout to some of tc1, r1, fc1 (default:
        all three); e.g. frozen layers run without dropout while the last layers train.
        """
        a = self._to_time_major(x, "input", INPUT_SHAPE)
        masks = self._draw_masks(LAYER_ORDER, a.shape[1], dropout_generator, dropout_layers)
        return self._run(a, 0, len(LAYER_ORDER) - 1, masks)

    def forward_until(
        self,
        x: Tensor,
        layer: str,
        *,
        dropout_generator: torch.Generator | None = None,
        dropout_layers: Iterable[str] | None = None,
    ) -> Tensor:
        """Activations after ``layer``, time last: ``(B, *layer_shapes[layer], n_steps)``.

        Spiking layers return a ``bool`` tensor (exact and compact, no gradient); ``pool``
        returns float averages; ``fc2`` returns the logits ``(B, 2)``.
        """
        check_option("layer", layer, LAYER_ORDER)
        stop = LAYER_ORDER.index(layer)
        a = self._to_time_major(x, "input", INPUT_SHAPE)
        masks = self._draw_masks(
            LAYER_ORDER[: stop + 1], a.shape[1], dropout_generator, dropout_layers
        )
        out = self._run(a, 0, stop, masks)
        if layer == "fc2":
            return out
        out = out.movedim(0, -1)
        return out.detach().bool() if layer in SPIKING_LAYERS else out

    def forward_from(
        self,
        layer: str,
        acts: Tensor,
        *,
        dropout_generator: torch.Generator | None = None,
        dropout_layers: Iterable[str] | None = None,
    ) -> Tensor:
        """Logits from the activations :meth:`forward_until` returned for ``layer``."""
        check_option("layer", layer, LAYER_ORDER)
        if layer == "fc2":
            return acts
        start = LAYER_ORDER.index(layer) + 1
        a = self._to_time_major(acts, f"acts of {layer}", self.layer_shapes[layer])
        masks = self._draw_masks(LAYER_ORDER[start:], a.shape[1], dropout_generator, dropout_layers)
        return self._run(a, start, len(LAYER_ORDER) - 1, masks)

    # ------------------------------------------------------------------ internals
    def _to_time_major(self, x: Tensor, what: str, shape: tuple[int, ...]) -> Tensor:
        expected = (*shape, self.config.n_steps)
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise InputError(
                f"{what}: expected shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        dtype = self.fc2.ts_weight.dtype
        return x.to(dtype).movedim(-1, 0)

    def _draw_masks(
        self,
        names: Iterable[str],
        batch: int,
        generator: torch.Generator | None,
        only: Iterable[str] | None = None,
    ) -> dict[str, Tensor]:
        """Per-sequence dropout masks ``(B, hidden)`` in the fixed order tc1, r1, fc1.

        ``only`` (if given) further restricts which of those layers get a mask.
        """
        p = self.config.dropout
        if not self.training or p == 0.0:
            return {}
        names = set(names)
        if only is not None:
            only = set(only)
            unknown = only - set(LAYER_ORDER)
            if unknown:
                raise InputError(
                    f"dropout_layers: unknown layer(s) {sorted(unknown)}; layers are "
                    f"{list(LAYER_ORDER)}"
                )
            names &= only
        ref = self.fc2.ts_weight
        masks = {}
        for name in DROPOUT_LAYERS:
            if name in names:
                keep = torch.empty(
                    batch, self.layer_shapes[name][0], device=ref.device, dtype=ref.dtype
                )
                keep.bernoulli_(1.0 - p, generator=generator)
                masks[name] = keep / (1.0 - p)
        return masks

    def _run(self, a: Tensor, start: int, stop: int, masks: dict[str, Tensor]) -> Tensor:
        if self.config.mode == "loop":
            return self._run_loop(a, start, stop, masks)
        names = LAYER_ORDER[start : stop + 1]
        T = a.shape[0]
        chunk = self.config.time_chunk or self._default_chunk(names, T, a.shape[1], a.device)
        states: dict[str, Any] = {}
        outs = []
        for t0 in range(0, T, chunk):
            h = a[t0 : t0 + chunk]
            for name in names:
                h = self._parallel_layer(name, h, t0, states, masks.get(name))
            outs.append(h)
        if names[-1] == "fc2":
            return outs[0] if len(outs) == 1 else torch.stack(outs).sum(0)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _default_chunk(
        self, names: tuple[str, ...], T: int, batch: int, device: torch.device
    ) -> int:
        """Time steps per chunk when ``config.time_chunk`` is None (see ``CPU_CHUNK_VALUES``
        and ``CPU_INFERENCE_CHUNK_VALUES``)."""
        if device.type == "cuda":
            return T
        values = CPU_CHUNK_VALUES
        if not torch.is_grad_enabled() and keeps_freed_memory():
            values = CPU_INFERENCE_CHUNK_VALUES
        widest = max(math.prod(self.layer_shapes[n]) for n in names)
        return max(1, min(T, values // (batch * widest)))

    # time-parallel path -------------------------------------------------------------
    def _parallel_layer(
        self, name: str, a: Tensor, t0: int, states: dict[str, Any], mask: Tensor | None
    ) -> Tensor:
        """One layer on the time steps ``t0, t0+1, …`` of a time-major tensor ``(n, B, ...)``.

        Neuron states (and tc1's last two inputs) carry over in ``states`` from the previous
        chunk of time steps; fc2 returns this chunk's part of the logits.
        """
        n, B = a.shape[:2]
        if name == "pool":
            p = self.pool(a.reshape(n * B, *a.shape[2:]))
            return p.view(n, B, *p.shape[1:])
        block = getattr(self, name)
        # inputs of every layer but conv1 and conv3 (pool averages) are spikes
        compact = self.config.compact_spikes and name in SPIKE_INPUT_LAYERS
        if name in ("conv1", "conv2", "conv3"):
            with saved_as_bool(a, compact):
                i = self._conv(block.synapse, a.reshape(n * B, *a.shape[2:]))
            spikes, states[name] = block.neuron(i.view(n, B, *i.shape[1:]), states.get(name))
            return spikes
        a = a.reshape(n, B, -1)
        if name == "r1":
            return self._run_r1(a, states, mask)
        if name == "tc1":
            with saved_as_bool(a, compact):
                i = self._tc1_current(block, a, t0, states)
        else:
            with saved_as_bool(a, compact):
                i = self._linear_all(block.synapse, a)
            if name == "fc2":
                return torch.einsum("t,tbk->bk", block.ts_weight[t0 : t0 + n], i)
        spikes, states[name] = block.neuron(i, states.get(name), dropout_mask=mask)
        return spikes

    def _tc1_current(self, block: nn.Module, a: Tensor, t0: int, states: dict[str, Any]) -> Tensor:
        """tc1's current for steps ``t0 …``: ``taps[k]`` on the input at ``t - k``, skipped
        (bias included) where ``t - k < 0``; the two inputs before ``t0`` come from ``states``."""
        n = a.shape[0]
        prev = states.get("tc1_inputs", a[:0])
        ext = torch.cat((prev, a)) if len(prev) else a
        states["tc1_inputs"] = ext[-2:]
        i = self._linear_all(block.taps[0], a)
        for k in (1, 2):
            missing = min(n, max(0, k - t0))  # steps whose input t - k precedes t = 0
            if missing == n:
                continue
            lo = len(prev) - k + missing
            shifted = self._linear_all(block.taps[k], ext[lo : lo + n - missing])
            i = i + (F.pad(shifted, (0, 0, 0, 0, missing, 0)) if missing else shifted)
        return i

    def _products(self, x: Tensor) -> contextlib.AbstractContextManager[Any]:
        """Where the synapse products run: bfloat16 autocast (``config.precision``)."""
        if self.config.precision == "bf16":
            return torch.autocast(x.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _conv(self, layer: nn.Module, x: Tensor) -> Tensor:
        """A float conv layer through :func:`ferrocim.convolution.conv2d` (faster, same
        maths); analog layers run their own forward (which uses it too). The current
        comes back in the network's dtype."""
        with self._products(x):
            if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros":
                y = conv2d(x, layer.weight, layer.bias, layer.stride, layer.padding,
                           layer.dilation, layer.groups)  # fmt: skip
            else:
                y = layer(x)
        return y.to(x.dtype)

    def _linear_all(self, layer: nn.Module, a: Tensor) -> Tensor:
        T, B = a.shape[:2]
        with self._products(a):
            y = layer(a.reshape(T * B, -1))
        return y.to(a.dtype).view(T, B, -1)

    def _run_r1(self, a: Tensor, states: dict[str, Any], mask: Tensor | None) -> Tensor:
        """r1 over the steps of ``a`` = tc1 spikes ``(n, B, hidden)`` by
        :func:`~ferrocim.snn.functional.adaptive_recurrent_scan` (its float or analog
        recurrent layer called once per step; one fused neuron update per step at
        inference on the CPU)."""
        block = self.r1
        state = states.get("r1") or block.neuron.init_state(a[0])
        neuron = block.neuron
        spikes, states["r1"] = adaptive_recurrent_scan(
            a, block.recurrent, neuron.params(), neuron.adaptation, state, dropout_mask=mask
        )
        return spikes

    # step-by-step oracle -------------------------------------------------------------
    def _run_loop(self, a: Tensor, start: int, stop: int, masks: dict[str, Tensor]) -> Tensor:
        names = LAYER_ORDER[start : stop + 1]
        states: dict[str, Any] = {}
        history: list[Tensor] = []  # conv3 spikes at t-1, t-2 (tc1's input window)
        outs = []
        for t, h in enumerate(a.unbind(0)):
            for name in names:
                h = self._loop_layer(name, h, t, states, history, masks.get(name))
            outs.append(h)
        out = torch.stack(outs)
        return out.sum(0) if names[-1] == "fc2" else out

    def _loop_layer(
        self,
        name: str,
        h: Tensor,
        t: int,
        states: dict[str, Any],
        history: list[Tensor],
        mask: Tensor | None,
    ) -> Tensor:
        if name == "pool":
            return self.pool(h)
        block = getattr(self, name)
        if name in ("conv1", "conv2", "conv3"):
            s, states[name] = block.neuron.step(block.synapse(h), states.get(name))
            return s
        h = h.reshape(h.shape[0], -1)
        if name == "tc1":
            i = block.taps[0](h)
            for k in (1, 2):
                if t >= k:
                    i = i + block.taps[k](history[-k])
            history.append(h)
            del history[:-2]
        elif name == "r1":
            state = states.get(name) or block.neuron.init_state(h)
            i = h + block.recurrent(state.s)
            states[name] = state
        elif name == "fc1":
            i = block.synapse(h)
        else:  # fc2: this step's weighted contribution to the logits
            return block.ts_weight[t] * block.synapse(h)
        s, states[name] = block.neuron.step(i, states.get(name), dropout_mask=mask)
        return s
