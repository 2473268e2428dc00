"""Energy pricing: per-event energies of write pulses, MACs and conversions (pure).

Write energy per pulse follows the published width scaling of HfO2/ZrO2 devices relative
to 20 ns: ×5.7 at 200 ns, ×25 at 2 µs, ×690 at 20 µs, ×3800 at 200 µs,
interpolated log-log (extrapolated from the end segments, with a warning, outside
20 ns – 200 µs). Energies in joules, widths in seconds, amplitudes in volts.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ferrocim.crossbar.config import EnergyConfig

if TYPE_CHECKING:
    from ferrocim.calibration.card import DeviceCard

#: (pulse width in s, write energy relative to a 20 ns pulse).
WIDTH_SCALING: tuple[tuple[float, float], ...] = (
    (20e-9, 1.0),
    (200e-9, 5.7),
    (2e-6, 25.0),
    (20e-6, 690.0),
    (200e-6, 3800.0),
)
PHASES: tuple[str, ...] = ("train", "inference")
KINDS: tuple[str, ...] = ("write_ltp", "write_ltd", "read", "dac", "adc")


def width_factor(width_s: float) -> float:
    """Write energy at ``width_s`` relative to a 20 ns pulse (log-log interpolation)."""
    if not (math.isfinite(width_s) and width_s > 0):
        raise ValueError(f"pulse width must be > 0 s, got {width_s!r}")
    lw = np.log10([w for w, _ in WIDTH_SCALING])
    lf = np.log10([f for _, f in WIDTH_SCALING])
    x = math.log10(width_s)
    if x < lw[0] or x > lw[-1]:
        warnings.warn(
            f"pulse width {width_s:g} s lies outside the published 20 ns - 200 us scaling; "
            "extrapolating from the nearest segment",
            stacklevel=2,
        )
        i = 0 if x < lw[0] else len(lw) - 2
        slope = (lf[i + 1] - lf[i]) / (lw[i + 1] - lw[i])
        return float(10 ** (lf[i] + slope * (x - lw[i])))
    return float(10 ** np.interp(x, lw, lf))


def write_energy_per_pulse(config: EnergyConfig, card: DeviceCard, polarity: str = "ltp") -> float:
    """Energy of one write pulse (J) of ``polarity`` ("ltp" or "ltd") for this card.

    The card's own ``pulse.energy_j`` (measured, or assumed per width) wins unless the
    config names another ``pulse_width_s``; otherwise ``write_j_at_20ns`` times
    :func:`width_factor` at the width."""
    if config.pulse_width_s is None and card.pulse.energy_j is not None:
        e = card.pulse.energy_j
    else:
        width = config.pulse_width_s if config.pulse_width_s is not None else card.pulse.width_s
        e = config.write_j_at_20ns * width_factor(width)
    amp = card.pulse.amplitude_ltp_v if polarity == "ltp" else card.pulse.amplitude_ltd_v
    if amp is not None and config.reference_amplitude_v is not None:
        e *= (amp / config.reference_amplitude_v) ** 2
    return e


def per_event_energy(config: EnergyConfig, card: DeviceCard) -> dict[str, float]:
    """Energy per event (J) for each ledger kind."""
    return {
        "write_ltp": write_energy_per_pulse(config, card, "ltp"),
        "write_ltd": write_energy_per_pulse(config, card, "ltd"),
        "read": config.read_j_per_mac,
        "dac": config.dac_j_per_conversion,
        "adc": config.adc_j_per_conversion,
    }
