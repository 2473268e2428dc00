"""A plain torch optimizer on analog weights: warned about once, at its first step.

An analog layer's ``.weight`` is the weight programmed on its devices; only
:class:`~ferrocim.crossbar.PulseOptimizer` (or the pulse-train rules) turns an update into
pulses. ``torch.optim.SGD(model.parameters()).step()`` on a converted model would write
the float update straight into ``.weight``: no pulses, no thresholds, no device model,
and the tile state (``conductance``) no longer matches the weight. A global torch
optimizer step pre-hook (registered when this module is imported, i.e. with any analog
layer) warns with :class:`AnalogBypassWarning` on the first such step of each optimizer;
steps made inside :func:`pulse_step` (what PulseOptimizer does) are not checked.

Silence it, for a deliberate float update of analog weights, with
``warnings.filterwarnings("ignore", category=AnalogBypassWarning)``.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

__all__ = ["AnalogBypassWarning", "is_analog_weight", "mark_analog_weight", "pulse_step"]

_TAG = "_ferrocim_analog_weight"


class AnalogBypassWarning(UserWarning):
    """A torch optimizer stepped analog weights without PulseOptimizer (no device model)."""


def mark_analog_weight(weight: torch.Tensor) -> None:
    """Tag ``weight`` as an analog layer's programmed weight (checked by the step hook)."""
    setattr(weight, _TAG, True)


def is_analog_weight(p: object) -> bool:
    """Whether ``p`` is an analog layer's weight (:func:`mark_analog_weight`)."""
    return getattr(p, _TAG, False) is True


_state = threading.local()  # .depth: PulseOptimizer steps in progress on this thread


@contextmanager
def pulse_step() -> Iterator[None]:
    """Optimizer steps inside this block go through the device model (not warned)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


# optimizer -> number of its parameters when it was last found free of analog weights
_clean: weakref.WeakKeyDictionary[torch.optim.Optimizer, int] = weakref.WeakKeyDictionary()
_warned: weakref.WeakSet[torch.optim.Optimizer] = weakref.WeakSet()


def _check_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Global step pre-hook: warn once per optimizer stepping analog weights directly."""
    if getattr(_state, "depth", 0) or opt in _warned:
        return
    params = [p for g in opt.param_groups for p in g["params"]]
    if _clean.get(opt) == len(params):
        return
    if not any(is_analog_weight(p) for p in params):
        _clean[opt] = len(params)
        return
    _warned.add(opt)
    warnings.warn(
        f"{type(opt).__name__}.step() on analog weights without PulseOptimizer: the update "
        "is written into .weight directly, bypassing the device model (no pulses, "
        "thresholds or device noise; the tiles' conductances no longer match .weight). "
        "Wrap the optimizer: opt = ferrocim.crossbar.PulseOptimizer(torch.optim."
        f"{type(opt).__name__}(model.parameters(), ...), model).",
        AnalogBypassWarning,
        stacklevel=3,
    )


_HOOK = register_optimizer_step_pre_hook(_check_step)
