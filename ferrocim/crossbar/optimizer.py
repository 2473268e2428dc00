"""PulseOptimizer: any torch optimizer, with analog weights written by pulses.

Per step: snapshot the programmed analog weights, run the inner optimizer, take
``delta = new - old`` per analog weight, restore the programmed weight, and hand the delta
to the layer (:meth:`AnalogModule.program_delta`): accumulate, fire pulses by the threshold
rule, move the devices, write the programmed weight back into ``.weight``. Float
parameters (biases, neuron parameters) keep the inner optimizer's update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ferrocim.checks import InputError
from ferrocim.crossbar.convert import analog_modules
from ferrocim.crossbar.guard import pulse_step
from ferrocim.crossbar.module import AnalogModule


@dataclass
class StepStats:
    """Pulses and threshold crossings of one step, per analog layer (python ints).

    The paper's "programming events" are crossings; pulses are what actually fired.
    """

    ltp_pulses: dict[str, int] = field(default_factory=dict)
    ltd_pulses: dict[str, int] = field(default_factory=dict)
    ltp_crossings: dict[str, int] = field(default_factory=dict)
    ltd_crossings: dict[str, int] = field(default_factory=dict)
    failed_devices: dict[str, int] = field(default_factory=dict)
    loss: Any = None

    def total(self) -> dict[str, int]:
        """Sums over layers: ``ltp_pulses, ltd_pulses, pulses, ltp_crossings,
        ltd_crossings, crossings, failed_devices``."""
        t = {
            "ltp_pulses": sum(self.ltp_pulses.values()),
            "ltd_pulses": sum(self.ltd_pulses.values()),
            "ltp_crossings": sum(self.ltp_crossings.values()),
            "ltd_crossings": sum(self.ltd_crossings.values()),
            "failed_devices": sum(self.failed_devices.values()),
        }
        t["pulses"] = t["ltp_pulses"] + t["ltd_pulses"]
        t["crossings"] = t["ltp_crossings"] + t["ltd_crossings"]
        return t


class PulseOptimizer:
    """Wrap ``inner`` (any ``torch.optim.Optimizer`` over ``model``'s parameters).

    Analog layers whose ``.weight`` is not among ``inner``'s parameters are left alone.
    Learning-rate schedulers attach to ``inner``. Stepping ``inner`` (or any torch
    optimizer over analog weights) directly bypasses the device model and is warned about
    once (:class:`~ferrocim.crossbar.guard.AnalogBypassWarning`).
    """

    def __init__(self, inner: torch.optim.Optimizer, model: nn.Module) -> None:
        if not isinstance(inner, torch.optim.Optimizer):
            raise InputError(
                f"PulseOptimizer: 'inner' must be a torch.optim.Optimizer, got "
                f"{type(inner).__name__}"
            )
        self.inner = inner
        self.model = model
        ids = {id(p) for g in inner.param_groups for p in g["params"]}
        self.layers: dict[str, AnalogModule] = {
            name: m for name, m in analog_modules(model).items() if id(m.weight) in ids
        }
        self._work: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The inner optimizer's parameter groups."""
        return self.inner.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> StepStats:
        """One optimizer step; returns the pulses and crossings it caused per layer.

        Layers whose weight has no gradient are skipped (torch optimizers leave such
        parameters untouched) and do not appear in the returned stats. With
        ``programming.q`` set, every layer's weights are then re-quantised
        (:meth:`AnalogModule.requantize`).
        """
        # a weight without a gradient is not touched by torch optimizers: skip its layer
        active = {n: m for n, m in self.layers.items() if m.weight.grad is not None}
        snaps = [self._buffers(m)[0].copy_(m.weight.detach()) for m in active.values()]
        with pulse_step():  # the inner step's update goes through the devices below
            if closure is not None:
                with torch.enable_grad():
                    loss = self.inner.step(closure)
            else:
                loss = self.inner.step()
        stats = StepStats(loss=loss)
        for (name, m), old in zip(active.items(), snaps, strict=True):
            w = m.weight.data
            delta = torch.sub(w, old, out=self._buffers(m)[1])
            w.copy_(old)
            s = m.program_delta(delta)
            stats.ltp_pulses[name] = s.ltp_pulses
            stats.ltd_pulses[name] = s.ltd_pulses
            stats.ltp_crossings[name] = s.ltp_crossings
            stats.ltd_crossings[name] = s.ltd_crossings
            stats.failed_devices[name] = s.failed_devices
        for m in self.layers.values():  # published: re-quantise every device weight (q > 0)
            q = m.analog_config.programming.q
            if q is not None:
                m.requantize(q)
        return stats

    def _buffers(self, m: AnalogModule) -> tuple[torch.Tensor, torch.Tensor]:
        """Reusable snapshot and delta tensors for layer ``m`` (work space, not state)."""
        w = m.weight
        buf = self._work.get(id(m))
        if (
            buf is None
            or buf[0].shape != w.shape
            or buf[0].device != w.device
            or (buf[0].dtype != w.dtype)
        ):
            buf = (
                torch.empty_like(w, memory_format=torch.contiguous_format),
                torch.empty_like(w, memory_format=torch.contiguous_format),
            )
            self._work[id(m)] = buf
        return buf

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients (of all the inner optimizer's parameters)."""
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state (accumulators live in the layers' buffers)."""
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the inner optimizer's state."""
        self.inner.load_state_dict(state)
