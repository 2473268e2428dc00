"""Configuration records of the crossbar: array, programming, endurance and energy.

All records are frozen dataclasses with checked fields, in the style of aihwkit's device
configs. Units: seconds (s), volts (V), joules (J); everything else is dimensionless.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ferrocim.calibration.card import DeviceCard, resolve_card
from ferrocim.checks import InputError, check_option, check_range

Reference = Literal["mid", "symmetry"]


@dataclass(frozen=True)
class ProgrammingConfig:
    """Threshold-accumulated pulse programming (the paper's on-device learning).

    Attributes
    ----------
    eps
        Threshold as a fraction of the layer range: ``thr_ltp = eps * 2 * w_max``.
    thr_asym
        LTD threshold factor: ``thr_ltd = eps * thr_asym * 2 * w_max``.
    max_pulses_per_step
        Pulses fired per weight per step when the accumulator crossed at least once
        (``None``: one pulse per crossing). The accumulator is always debited by all
        crossings.
    a_scale
        Multiplies both kernel amplitudes ``a_ltp`` and ``a_ltd``.
    a_asym
        Multiplies the LTD kernel amplitude only.
    rsd_c2c
        Relative s.d. of the effective kernel amplitude per device and pulse, drawn from
        ``N(a, (rsd * a)**2)``. ``None`` takes the card's ``rsd_c2c_ltp`` / ``rsd_c2c_ltd``.
    """

    eps: float = 0.05
    thr_asym: float = 1.0
    max_pulses_per_step: int | None = 1
    a_scale: float = 1.0
    a_asym: float = 1.0
    rsd_c2c: float | None = None

    def __post_init__(self) -> None:
        check_range("ProgrammingConfig.eps", self.eps, 0.0, low_inclusive=False)
        check_range("ProgrammingConfig.thr_asym", self.thr_asym, 0.0, low_inclusive=False)
        check_range("ProgrammingConfig.a_scale", self.a_scale, 0.0)
        check_range("ProgrammingConfig.a_asym", self.a_asym, 0.0)
        if self.rsd_c2c is not None:
            check_range("ProgrammingConfig.rsd_c2c", self.rsd_c2c, 0.0)
        m = self.max_pulses_per_step
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise InputError(
                f"'ProgrammingConfig.max_pulses_per_step' must be an integer >= 1 or None, "
                f"got {m!r}"
            )


@dataclass(frozen=True)
class EnduranceConfig:
    """Wear-out of the devices.

    When ``enabled``, every device gets a lifetime (pulses) drawn once from a lognormal
    around ``card.endurance.cycles_median`` with ``cycles_log10_sd`` (log10 s.d.), times
    ``lifetime_scale``. A device whose LTP + LTD pulse count reaches its lifetime fails
    stuck at its present conductance. Its memory window also shrinks towards the middle of
    [0.01, 0.99] by ``card.endurance.window_loss_per_decade`` per decade of
    ``pulses / lifetime_scale``. ``lifetime_scale`` < 1 accelerates wear for tests and
    demos (1e-8 turns a 1e10-cycle device into a ~100-pulse device).
    """

    enabled: bool = False
    lifetime_scale: float = 1.0
    window_loss: bool = True

    def __post_init__(self) -> None:
        check_range("EnduranceConfig.lifetime_scale", self.lifetime_scale, 0.0, low_inclusive=False)


@dataclass(frozen=True)
class EnergyConfig:
    """Per-event energies of the ledger (joules).

    Write energy per pulse: ``write_j_at_20ns`` scaled by the published width factors
    (×5.7 at 200 ns, ×25 at 2 µs, ×690 at 20 µs, ×3800 at 200 µs, log-log interpolated)
    at ``pulse_width_s`` (``None``: the card's ``pulse.width_s``), times
    ``(V / reference_amplitude_v)**2`` when both the card's amplitude and
    ``reference_amplitude_v`` are known.
    """

    write_j_at_20ns: float = 3e-12
    pulse_width_s: float | None = None
    reference_amplitude_v: float | None = None
    read_j_per_mac: float = 0.05e-15
    dac_j_per_conversion: float = 0.05e-12
    adc_j_per_conversion: float = 1e-12

    def __post_init__(self) -> None:
        for name in ("write_j_at_20ns", "read_j_per_mac", "dac_j_per_conversion"):
            check_range(f"EnergyConfig.{name}", getattr(self, name), 0.0)
        check_range("EnergyConfig.adc_j_per_conversion", self.adc_j_per_conversion, 0.0)
        if self.pulse_width_s is not None:
            check_range("EnergyConfig.pulse_width_s", self.pulse_width_s, 0.0, low_inclusive=False)
        if self.reference_amplitude_v is not None:
            check_range(
                "EnergyConfig.reference_amplitude_v",
                self.reference_amplitude_v,
                0.0,
                low_inclusive=False,
            )


@dataclass(frozen=True)
class AnalogConfig:
    """How a layer's weights live on the array.

    Attributes
    ----------
    card
        Device card, preset name (``"dut1"`` … ``"dut5"``) or card JSON path.
    tile_rows, tile_cols
        Tile size: rows take the layer's inputs (fan-in), columns its outputs.
    reference
        ``"mid"``: reference devices fixed at W = 0.5, ``w = (W - 0.5) * 2 * w_max``.
        ``"symmetry"``: reference at the card's symmetry point W*,
        ``w = (W - W*) * 2 * w_max * reference_scale``; with ``reference_scale = 1`` the
        negative range shrinks to ``-(W* - 0.01) * 2 * w_max``.
    reference_scale
        Gain of the conductance difference (only matters for the symmetry reference).
    d2d
        Draw per-device kernel and window parameters from the card's ``*_dtod`` spread.
    read_noise
        Additive weight read noise per forward, s.d. ``read_noise * w_max`` (``None``:
        the card's ``read_noise_rsd``).
    dac_bits, dac_range
        Input DAC: inputs clipped to ±dac_range and rounded to ``2**(bits-1) - 1`` steps
        per side; ``None`` = ideal.
    adc_bits, adc_range
        Output ADC per tile: each tile's partial sum is clipped to
        ``±adc_range * w_max * dac_range`` and rounded likewise; ``None`` = ideal.
    """

    card: DeviceCard | str = "dut2"
    tile_rows: int = 256
    tile_cols: int = 256
    reference: Reference = "mid"
    reference_scale: float = 1.0
    d2d: bool = True
    read_noise: float | None = 0.0
    dac_bits: int | None = None
    dac_range: float = 1.0
    adc_bits: int | None = None
    adc_range: float = 20.0
    programming: ProgrammingConfig = field(default_factory=ProgrammingConfig)
    endurance: EnduranceConfig = field(default_factory=EnduranceConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.card, DeviceCard | str | os.PathLike):
            raise InputError(
                f"'AnalogConfig.card' must be a DeviceCard, a preset name or a path, "
                f"got {type(self.card).__name__}"
            )
        for name in ("tile_rows", "tile_cols"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"'AnalogConfig.{name}' must be an integer >= 1, got {v!r}")
        check_option("AnalogConfig.reference", self.reference, ("mid", "symmetry"))
        check_range("AnalogConfig.reference_scale", self.reference_scale, 0.0, low_inclusive=False)
        if self.read_noise is not None:
            check_range("AnalogConfig.read_noise", self.read_noise, 0.0)
        for name in ("dac_bits", "adc_bits"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 < v < 33):
                raise InputError(f"'AnalogConfig.{name}' must be None or 2..32, got {v!r}")
        check_range("AnalogConfig.dac_range", self.dac_range, 0.0, low_inclusive=False)
        check_range("AnalogConfig.adc_range", self.adc_range, 0.0, low_inclusive=False)
        for name, typ in (
            ("programming", ProgrammingConfig),
            ("endurance", EnduranceConfig),
            ("energy", EnergyConfig),
        ):
            if not isinstance(getattr(self, name), typ):
                raise InputError(
                    f"'AnalogConfig.{name}' must be a {typ.__name__}, "
                    f"got {type(getattr(self, name)).__name__}"
                )

    def resolved_card(self) -> DeviceCard:
        """The device card this config names."""
        return resolve_card(self.card)

    def replace(self, **changes: Any) -> AnalogConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (the card as its full dictionary)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "card":
                out["card"] = self.resolved_card().to_dict()
            elif dataclasses.is_dataclass(v):
                out[f.name] = dataclasses.asdict(v)
            else:
                out[f.name] = v
        return out
