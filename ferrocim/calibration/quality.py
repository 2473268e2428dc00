"""Fit-quality flags of a device card: the thresholds below which a fit is called poor.

A card's kernel can reproduce the measured conductance *trajectory* well (R² trajectory
near 1, what the crossbar simulates) while explaining little of the pulse-to-pulse steps
(R² on the dW metric), or end with a shape exponent below 1, where the Beta kernel's step
``a W^(alpha-1) (1-W)^(beta-1)`` grows without bound at an edge of the window. Each is
flagged, in the calibration report, the CLI summary (as a warning) and
:meth:`~ferrocim.calibration.card.DeviceCard.fit_report`, with the threshold it failed.
The thresholds are conventions, not fitted numbers:

- :data:`POOR_R2_DW` = 0.5: the kernel explains less than half of the variance of the
  consecutive steps (a negative R² means worse than a constant step);
- :data:`POOR_R2_TRAJECTORY` = 0.9: the integrated states miss more than a tenth of the
  variance of the measured states;
- :data:`MIN_SHAPE_EXPONENT` = 1: alpha < 1 makes the step unbounded at W = 0, beta < 1 at
  W = 1 (the simulation then leans on the programming interval's clipping).
"""

from __future__ import annotations

import math
from typing import Any

#: R² on the consecutive-step (dW) metric below which a fit is flagged poor.
POOR_R2_DW = 0.5
#: R² of the conductance trajectory below which a fit is flagged poor.
POOR_R2_TRAJECTORY = 0.9
#: Shape exponents (alpha, beta) below this make the kernel's step unbounded at an edge.
MIN_SHAPE_EXPONENT = 1.0


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fit_flags(card: Any) -> list[str]:
    """One sentence per poor-fit sign of ``card`` (a :class:`DeviceCard`); empty when none
    (always empty for a card without a fit record, e.g. a preset)."""
    fit = card.fit or {}
    if not fit:
        return []
    out: list[str] = []
    r2_dw = fit.get("r2_dw") or {}
    r2_w = fit.get("r2_w") or {}
    for kind in ("ltp", "ltd"):
        k = kind.upper()
        dw = _num(r2_dw.get(kind))
        if dw is not None and dw < POOR_R2_DW:
            out.append(
                f"{card.name} {k}: poor fit on the step (dW) metric, R² dW {dw:.3f} < "
                f"{POOR_R2_DW} (the kernel explains little of the pulse-to-pulse steps)"
            )
        w = _num(r2_w.get(kind))
        if w is not None and w < POOR_R2_TRAJECTORY:
            out.append(
                f"{card.name} {k}: poor fit of the conductance trajectory, R² trajectory "
                f"{w:.3f} < {POOR_R2_TRAJECTORY}"
            )
        params = getattr(card, kind)
        for p, edge in (("alpha", "W = 0"), ("beta", "W = 1")):
            v = float(getattr(params, p))
            if v < MIN_SHAPE_EXPONENT:
                out.append(
                    f"{card.name} {k}: {p} {v:.3f} < {MIN_SHAPE_EXPONENT:g}, so the kernel's "
                    f"step grows without bound at {edge}"
                )
    return out


__all__ = ["MIN_SHAPE_EXPONENT", "POOR_R2_DW", "POOR_R2_TRAJECTORY", "fit_flags"]
