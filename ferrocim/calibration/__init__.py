"""Calibration: raw pulse-train measurements → device cards.

file → :mod:`~ferrocim.calibration.readers` → :class:`~ferrocim.calibration.sequence.PulseSequence`
→ half-cycles (:mod:`~ferrocim.calibration.prepare`) → fits (:mod:`~ferrocim.calibration.fitting`)
→ :class:`~ferrocim.calibration.card.DeviceCard` (:mod:`~ferrocim.calibration.device`).
:func:`calibrate` runs the whole chain over files or folders. Submodules load lazily so that
importing the card (what the crossbar needs) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrocim.calibration.device import CalibrationOptions
    from ferrocim.calibration.pipeline import CalibrationResult, calibrate

__all__ = ["CalibrationOptions", "CalibrationResult", "calibrate"]


def __getattr__(name: str) -> Any:
    if name == "CalibrationOptions":
        from ferrocim.calibration.device import CalibrationOptions

        return CalibrationOptions
    if name in ("CalibrationResult", "calibrate"):
        from ferrocim.calibration import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'ferrocim.calibration' has no attribute {name!r}")
