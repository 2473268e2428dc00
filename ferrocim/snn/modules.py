"""Thin module wrappers that bind learnable neuron parameters to the functional core.

:class:`CubaLIF` holds per-neuron decays ``beta`` (current) and ``gamma`` (voltage) with the
full neuron shape (e.g. ``(64, 8, 9)`` for conv1), initialised to 0.1 and clamped to
``>= 1e-7`` each time they are used (dimensionless factors per time step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ferrocim.snn.functional import (
    DEFAULT_ADAPTATION,
    AdaptiveLIFState,
    LIFParameters,
    LIFState,
    ThresholdAdaptation,
    adaptive_lif_step,
    cuba_lif_scan,
    cuba_lif_step,
    init_adaptive_state,
    init_state,
)

__all__ = ["MIN_DECAY", "AdaptiveCubaLIF", "CubaLIF"]

MIN_DECAY = 1e-7
"""Lower bound on beta and gamma (applied by clamping in the forward pass)."""


class CubaLIF(nn.Module):
    """A population of CUBA-LIF neurons of shape ``shape`` with learnable decays.

    ``forward(currents)`` scans a time-major tensor ``(T, B, *shape)``; ``step`` advances one
    step ``(B, *shape)``. Threshold and surrogate window/height are fixed (not learnable).
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        threshold: float = 0.1,
        surrogate_window: float = 0.3,
        surrogate_height: float = 0.3,
        init_decay: float = 0.1,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(n) for n in shape)
        self.threshold = float(threshold)
        self.surrogate_window = float(surrogate_window)
        self.surrogate_height = float(surrogate_height)
        self.beta = nn.Parameter(torch.full(self.shape, float(init_decay)))
        self.gamma = nn.Parameter(torch.full(self.shape, float(init_decay)))

    def params(self) -> LIFParameters:
        """The clamped parameters as the functional core takes them."""
        return LIFParameters(
            self.beta.clamp(min=MIN_DECAY),
            self.gamma.clamp(min=MIN_DECAY),
            self.threshold,
            self.surrogate_window,
            self.surrogate_height,
        )

    def init_state(self, like: Tensor) -> LIFState:
        return init_state(like)

    def step(
        self, current: Tensor, state: LIFState | None = None, *, dropout_mask: Tensor | None = None
    ) -> tuple[Tensor, LIFState]:
        if state is None:
            state = init_state(current)
        return cuba_lif_step(current, state, self.params(), dropout_mask=dropout_mask)

    def forward(
        self, currents: Tensor, state: LIFState | None = None, *, dropout_mask: Tensor | None = None
    ) -> tuple[Tensor, LIFState]:
        return cuba_lif_scan(currents, self.params(), state, dropout_mask=dropout_mask)

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, threshold={self.threshold}, "
            f"surrogate={self.surrogate_height}·1[|v-th|<{self.surrogate_window}]"
        )


class AdaptiveCubaLIF(CubaLIF):
    """CUBA-LIF with the adaptive threshold of r1 (see :class:`ThresholdAdaptation`)."""

    def __init__(
        self,
        shape: Sequence[int],
        *,
        threshold: float = 0.1,
        surrogate_window: float = 0.3,
        surrogate_height: float = 0.3,
        init_decay: float = 0.1,
        adaptation: ThresholdAdaptation = DEFAULT_ADAPTATION,
    ) -> None:
        super().__init__(
            shape,
            threshold=threshold,
            surrogate_window=surrogate_window,
            surrogate_height=surrogate_height,
            init_decay=init_decay,
        )
        self.adaptation = adaptation

    def init_state(self, like: Tensor) -> AdaptiveLIFState:  # type: ignore[override]
        return init_adaptive_state(like, self.threshold)

    def step(  # type: ignore[override]
        self,
        current: Tensor,
        state: AdaptiveLIFState | None = None,
        *,
        dropout_mask: Tensor | None = None,
    ) -> tuple[Tensor, AdaptiveLIFState]:
        if state is None:
            state = self.init_state(current)
        return adaptive_lif_step(
            current, state, self.params(), self.adaptation, dropout_mask=dropout_mask
        )

    def forward(  # type: ignore[override]
        self,
        currents: Tensor,
        state: AdaptiveLIFState | None = None,
        *,
        dropout_mask: Tensor | None = None,
    ) -> tuple[Tensor, AdaptiveLIFState]:
        out = []
        for current in currents.unbind(0):
            s, state = self.step(current, state, dropout_mask=dropout_mask)
            out.append(s)
        return torch.stack(out), state
