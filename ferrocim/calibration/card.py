"""Device cards: the versioned, typed record of one calibrated device (or a preset).

A card is what calibration writes and what the crossbar consumes. It is JSON on disk
(``schema_version`` guards the format) and a frozen pydantic model in memory, so a bad
field in a hand-edited card is reported by name when it loads.

Units: conductances in siemens (S), pulse widths in seconds (s), voltages in volts (V),
energies in joules (J). Kernel parameters and variabilities are dimensionless.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ferrocim.atomic import write_json
from ferrocim.calibration.kernel import symmetry_point
from ferrocim.checks import InputError, check_option

SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KernelParams(_Record):
    """Beta-kernel parameters of one polarity: ``dW = a W^(alpha-1) (1-W)^(beta-1)``."""

    a: float = Field(gt=0, description="step amplitude, fraction of the window per pulse")
    alpha: float = Field(gt=0, description="shape exponent on W")
    beta: float = Field(gt=0, description="shape exponent on 1 - W")
    a_stderr: float | None = Field(default=None, ge=0, description="1-sigma error of a")
    alpha_stderr: float | None = Field(default=None, ge=0, description="1-sigma error of alpha")
    beta_stderr: float | None = Field(default=None, ge=0, description="1-sigma error of beta")

    def as_tuple(self) -> tuple[float, float, float]:
        """``(a, alpha, beta)``."""
        return (self.a, self.alpha, self.beta)


class Variability(_Record):
    """Stochastic spread of the device, split the way aihwkit names it.

    ``*_c2c`` is cycle-to-cycle (per pulse, within one device); ``*_dtod`` is
    device-to-device (drawn once per device). All are relative standard deviations.
    """

    rsd_c2c_ltp: float = Field(default=0.0, ge=0, description="rel. s.d. of one LTP step")
    rsd_c2c_ltd: float = Field(default=0.0, ge=0, description="rel. s.d. of one LTD step")
    a_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of A across devices")
    alpha_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of alpha across devices")
    beta_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of beta across devices")
    g_min_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of Gmin across devices")
    g_max_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of Gmax across devices")
    read_noise_rsd: float = Field(default=0.0, ge=0, description="rel. s.d. of one read of G")
    window_drift_per_cycle: float | None = Field(
        default=None, description="relative change of Gmax/Gmin per sweep (linear trend)"
    )


class PulseSpec(_Record):
    """Programming and read conditions the card was measured (or specified) at."""

    width_s: float = Field(default=20e-9, gt=0, description="write pulse width (s)")
    amplitude_ltp_v: float | None = Field(default=None, description="potentiating amplitude (V)")
    amplitude_ltd_v: float | None = Field(default=None, description="depressing amplitude (V)")
    read_voltage_v: float | None = Field(default=None, description="read voltage (V)")
    ltp_polarity: int | None = Field(
        default=None, description="sign of the write voltage that potentiates (+1 or -1)"
    )


class EnduranceSpec(_Record):
    """Wear-out: lifetime in pulses (cycles) and memory-window loss with cycling."""

    cycles_median: float = Field(default=1e10, gt=0, description="median lifetime (pulses)")
    cycles_log10_sd: float = Field(
        default=0.3, ge=0, description="s.d. of log10(lifetime) across devices"
    )
    window_loss_per_decade: float = Field(
        default=0.02, ge=0, lt=1, description="fraction of the window lost per decade of cycles"
    )


class Provenance(_Record):
    """Where a card came from."""

    source_files: list[dict[str, Any]] = Field(default_factory=list)  # {path, sha256, parser}
    options: dict[str, Any] = Field(default_factory=dict)
    ferrocim_version: str | None = None
    created: str | None = None  # ISO-8601 time
    citation: str | None = None


class DeviceCard(_Record):
    """Everything the crossbar needs to simulate one device type (see module docstring)."""

    schema_version: int = SCHEMA_VERSION
    name: str = Field(min_length=1)
    description: str = ""
    ltp: KernelParams
    ltd: KernelParams
    g_min_s: float = Field(gt=0, description="minimum conductance (S)")
    g_max_s: float = Field(gt=0, description="maximum conductance (S)")
    symmetry_point: float | None = Field(
        default=None, description="W* where LTP and LTD steps are equal (computed if absent)"
    )
    symmetry_point_stderr: float | None = None
    variability: Variability = Field(default_factory=Variability)
    pulse: PulseSpec = Field(default_factory=PulseSpec)
    endurance: EnduranceSpec = Field(default_factory=EnduranceSpec)
    fit: dict[str, Any] = Field(default_factory=dict, description="fit quality metrics")
    provenance: Provenance = Field(default_factory=Provenance)

    @model_validator(mode="after")
    def _check(self) -> DeviceCard:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported "
                f"(this ferrocim reads version {SCHEMA_VERSION})"
            )
        if self.g_max_s <= self.g_min_s:
            raise ValueError(f"g_max_s ({self.g_max_s}) must exceed g_min_s ({self.g_min_s})")
        if self.symmetry_point is None:
            # stays None when the LTP and LTD steps are never equal on (0, 1) (JSON has no NaN)
            w = symmetry_point(self.ltp.as_tuple(), self.ltd.as_tuple())
            object.__setattr__(self, "symmetry_point", w if math.isfinite(w) else None)
        return self

    # ---- I/O -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the card."""
        return self.model_dump(mode="json")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the card as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> DeviceCard:
        """Validate ``data`` into a card; errors name the source and the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = [
                f"  field {'.'.join(str(p) for p in err['loc']) or '<card>'}: {err['msg']}"
                f" (got {err.get('input')!r})"
                for err in exc.errors()
            ]
            raise InputError(f"Invalid device card {source}:\n" + "\n".join(lines)) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeviceCard:
        """Read a card from a JSON file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot read device card {p}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"Device card {p} is not valid JSON: line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}"
            ) from None
        if not isinstance(data, dict):
            raise InputError(f"Device card {p} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(p))


# ---- presets -------------------------------------------------------------------------
_PAPER = "Beta-kernel FeFET DUT table of the EEG-Ferro paper (NEO-ETHZ)"
_PRESET_PARAMS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "dut1": ((0.1761, 1.8103, 2.1228), (0.3300, 2.4721, 1.7929)),
    "dut2": ((0.2611, 1.6429, 1.9873), (0.5969, 2.4585, 1.6885)),
    "dut3": ((0.24897956, 1.86338502, 2.91746585), (0.10299356, 2.05557189, 1.77256752)),
    "dut4": ((0.36361457, 1.96391651, 3.09212352), (0.18900954, 2.40094446, 1.97854856)),
    "dut5": ((0.65606012, 1.90866458, 3.47689647), (0.36568703, 2.75019033, 2.2682048)),
}
#: The default device of every pipeline.
DEFAULT_PRESET = "dut2"
#: Nominal conductance window of the presets. The paper publishes normalised kernels only;
#: 1 µS - 10 µS is a typical FeFET read window and only scales currents and read energy.
PRESET_G_MIN_S = 1e-6
PRESET_G_MAX_S = 10e-6


def preset_names() -> list[str]:
    """Names of the built-in cards."""
    return list(_PRESET_PARAMS)


def preset(name: str) -> DeviceCard:
    """Built-in card ``dut1`` … ``dut5`` (``dut2`` is the default)."""
    check_option("dut", name, preset_names())
    (ap, alp, bp), (ad, ald, bd) = _PRESET_PARAMS[name]
    return DeviceCard(
        name=name,
        description=f"Preset {name}: published Beta-kernel fit; nominal 1-10 µS window",
        ltp=KernelParams(a=ap, alpha=alp, beta=bp),
        ltd=KernelParams(a=ad, alpha=ald, beta=bd),
        g_min_s=PRESET_G_MIN_S,
        g_max_s=PRESET_G_MAX_S,
        provenance=Provenance(citation=_PAPER),
    )


def resolve_card(spec: str | os.PathLike[str] | DeviceCard) -> DeviceCard:
    """A card from a preset name, a JSON path, or a card (returned as is)."""
    if isinstance(spec, DeviceCard):
        return spec
    s = str(spec)
    if s in _PRESET_PARAMS:
        return preset(s)
    if s.endswith(".json") or os.path.exists(s):
        return DeviceCard.load(s)
    return preset(s)  # raises with the list of presets and a close match
