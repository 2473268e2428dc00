"""Device cards: the versioned, typed record of one calibrated device (or a preset).

A card is what calibration writes and what the crossbar consumes. It is JSON on disk
(``schema_version`` guards the format) and a frozen pydantic model in memory, so a bad
field in a hand-edited card is reported by name when it loads.

Units: conductances in siemens (S), pulse widths in seconds (s), voltages in volts (V),
energies in joules (J). Kernel parameters and variabilities are dimensionless.

Every data field carries its source in ``provenance.fields`` (a :class:`FieldSource` per
dotted field name): ``measured`` (with the files), ``assumed`` (a default, with its
reference) or ``user`` (given on the command line or in a TOML). A field a card does not
source explicitly is recorded as assumed when the card is built. Schema history: version 1
cards (no per-field sources, one residual-based ``rsd_c2c`` that includes read noise,
LTP/LTD device-to-device spreads averaged) still load, with a warning, as version 2.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ferrocim.atomic import write_json
from ferrocim.calibration.kernel import pulse_amplitude, symmetry_point
from ferrocim.checks import InputError, check_option

SCHEMA_VERSION = 2


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
    at_bound: list[str] = Field(
        default_factory=list, description="parameters whose fit ended on a bound (flag)"
    )

    def as_tuple(self) -> tuple[float, float, float]:
        """``(a, alpha, beta)``."""
        return (self.a, self.alpha, self.beta)


class AmplitudeKernel(_Record):
    """Amplitude-aware kernel of one polarity: the Beta kernel with
    ``a_eff(V) = a * max(|V| - v_th, 0) ** p`` (``v_th`` in V)."""

    a: float = Field(gt=0)
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)
    v_th: float = Field(ge=0, description="switching threshold (V)")
    p: float = Field(gt=0, description="exponent of the over-drive |V| - v_th")
    at_bound: list[str] = Field(
        default_factory=list, description="parameters whose fit ended on a bound (flag)"
    )

    def at(self, amplitude_v: float) -> KernelParams:
        """The identical-pulse kernel of pulses of ``amplitude_v`` volts."""
        a = float(pulse_amplitude(amplitude_v, self.a, self.v_th, self.p))
        if not a > 0:
            raise InputError(
                f"write amplitude {amplitude_v} V is at or below the switching threshold "
                f"v_th = {self.v_th:.4g} V: no pulse would change the device"
            )
        return KernelParams(a=a, alpha=self.alpha, beta=self.beta)


class Variability(_Record):
    """Stochastic spread of the device, split the way aihwkit names it.

    ``rsd_c2c_*`` is cycle-to-cycle (per pulse, within one device: the relative s.d. of one
    step around the kernel); ``read_noise_rsd`` the s.d. of one read as a fraction of the
    conductance window and ``read_noise_g_rsd`` the part proportional to the conductance
    read (s.d. ``read_noise_g_rsd · G``); one read's variance is the sum of both squares
    (neither changes the device; the crossbar's read noise uses ``read_noise_rsd``);
    ``*_dtod`` is device-to-device (drawn once per device), per kind. All are relative
    standard deviations.
    """

    rsd_c2c_ltp: float = Field(default=0.0, ge=0, description="rel. s.d. of one LTP step")
    rsd_c2c_ltd: float = Field(default=0.0, ge=0, description="rel. s.d. of one LTD step")
    rsd_c2c_stderr: float | None = Field(default=None, ge=0, description="1-sigma error of c2c")
    read_noise_rsd: float = Field(
        default=0.0, ge=0, description="s.d. of one read, fraction of the window Gmax - Gmin"
    )
    read_noise_stderr: float | None = Field(default=None, ge=0)
    read_noise_g_rsd: float = Field(
        default=0.0, ge=0, description="s.d. of one read proportional to G, fraction of G"
    )
    read_noise_g_stderr: float | None = Field(default=None, ge=0)
    a_ltp_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of LTP A across devices")
    alpha_ltp_dtod: float = Field(default=0.0, ge=0)
    beta_ltp_dtod: float = Field(default=0.0, ge=0)
    a_ltd_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of LTD A across devices")
    alpha_ltd_dtod: float = Field(default=0.0, ge=0)
    beta_ltd_dtod: float = Field(default=0.0, ge=0)
    g_min_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of Gmin across devices")
    g_max_dtod: float = Field(default=0.0, ge=0, description="rel. s.d. of Gmax across devices")
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
    energy_j: float | None = Field(
        default=None, gt=0, description="write energy of one pulse at this width (J)"
    )
    energy_source: str | None = Field(
        default=None,
        description="where energy_j comes from: 'measured: <file>' or 'assumed: <reference>'",
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


Origin = Literal["measured", "assumed", "user"]


class FieldSource(_Record):
    """Where one card field came from: measured (``files``), assumed (``reference``) or user."""

    origin: Origin
    files: list[str] = Field(default_factory=list, description="file names it was measured on")
    reference: str | None = Field(default=None, description="what an assumed value rests on")
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> FieldSource:
        if self.origin == "measured" and not self.files:
            raise ValueError("a measured field must name the files it was measured on")
        if self.origin == "assumed" and not self.reference:
            raise ValueError("an assumed field must name its reference")
        return self


#: References of the defaults a card falls back on when no file measured a field.
ASSUMED = {
    "pulse.width_s": "20 ns: shortest published write pulse of HfO2/ZrO2 devices (energy "
    "model reference width); not measured",
    "endurance": "typical HZO endurance 1e9-1e11 cycles (ferrocim default); not measured",
    "variability": "no spread (ferrocim default); not measured",
    "default": "ferrocim default; not measured",
}


def assumed(reference: str, note: str | None = None) -> FieldSource:
    """An ``assumed`` source."""
    return FieldSource(origin="assumed", reference=reference, note=note)


def measured(files: list[str], note: str | None = None) -> FieldSource:
    """A ``measured`` source."""
    return FieldSource(origin="measured", files=sorted(set(files)), note=note)


class Provenance(_Record):
    """Where a card came from: files, options, and a :class:`FieldSource` per data field."""

    source_files: list[dict[str, Any]] = Field(default_factory=list)  # {path, sha256, parser}
    fields: dict[str, FieldSource] = Field(default_factory=dict)
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
    ltp_amplitude: AmplitudeKernel | None = Field(
        default=None, description="amplitude-aware LTP kernel (None: not fitted)"
    )
    ltd_amplitude: AmplitudeKernel | None = Field(
        default=None, description="amplitude-aware LTD kernel (None: not fitted)"
    )
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
        missing = [f for f in data_fields() if f not in self.provenance.fields]
        if missing:
            fields = dict(self.provenance.fields)
            for f in missing:
                fields[f] = assumed(
                    ASSUMED.get(f, ASSUMED.get(f.split(".")[0], ASSUMED["default"]))
                )
            object.__setattr__(
                self, "provenance", self.provenance.model_copy(update={"fields": fields})
            )
        return self

    def source(self, field: str) -> FieldSource:
        """Where ``field`` (a dotted name of :func:`data_fields`) came from."""
        if field not in self.provenance.fields:
            raise KeyError(f"{field!r} is not a data field of a card; see data_fields()")
        return self.provenance.fields[field]

    def at_amplitude(self, amplitude_v: float) -> DeviceCard:
        """This card programmed with pulses of ``amplitude_v`` volts (magnitude, both kinds).

        The identical-pulse kernels become the amplitude-aware kernels evaluated at that
        amplitude; raises when the card carries no amplitude-aware kernels.
        """
        if self.ltp_amplitude is None or self.ltd_amplitude is None:
            raise InputError(
                f"card {self.name!r} has no amplitude-aware kernels (ltp_amplitude / "
                "ltd_amplitude), so it cannot be programmed at a chosen write amplitude; "
                "calibrate it from amplitude-ramp measurements or leave write_amplitude unset"
            )
        ltp, ltd = self.ltp_amplitude.at(amplitude_v), self.ltd_amplitude.at(amplitude_v)
        fields = dict(self.provenance.fields)
        for k in ("ltp", "ltd"):
            src = fields.get(f"{k}_amplitude") or assumed(ASSUMED["default"])
            fields[k] = src.model_copy(
                update={"note": f"amplitude-aware kernel at {amplitude_v} V"}
            )
        return self.model_copy(
            update={
                "ltp": ltp,
                "ltd": ltd,
                "symmetry_point": None,
                "symmetry_point_stderr": None,
                "provenance": self.provenance.model_copy(update={"fields": fields}),
            }
        ).revalidated()

    def revalidated(self) -> DeviceCard:
        """The card validated anew (recomputes derived fields such as the symmetry point)."""
        return DeviceCard.model_validate(self.to_dict())

    # ---- I/O -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the card."""
        return self.model_dump(mode="json")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the card as JSON, atomically (a full disk names the bytes it needs)."""
        from ferrocim.io_errors import expect_size

        data = self.to_dict()
        with expect_size(len(json.dumps(data, indent=2)) + 1):
            return write_json(path, data)

    def fit_report(self) -> str:
        """The card's fit as text, in the manner of lmfit's ``fit_report()``: parameters
        with 1-sigma errors and bounds, noise terms, fit statistics, poor-fit flags and
        sources (see :func:`ferrocim.calibration.report_text.card_fit_report`)."""
        from ferrocim.calibration.report_text import card_fit_report

        return card_fit_report(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> DeviceCard:
        """Validate ``data`` into a card; errors name the source and the field.

        Version 1 cards are upgraded with a warning (see the module docstring).
        """
        version = data.get("schema_version", 1)
        if version == 1:
            data = _upgrade_v1(data, source)
        elif version != SCHEMA_VERSION:
            raise InputError(
                f"Device card {source}: schema_version {version!r} is not supported (this "
                f"ferrocim reads versions 1 and {SCHEMA_VERSION}); recalibrate the device"
            )
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


def data_fields() -> list[str]:
    """Dotted names of the card fields that carry a source (kernels as a whole)."""
    out = ["ltp", "ltd", "ltp_amplitude", "ltd_amplitude", "g_min_s", "g_max_s"]
    for name, model in (("variability", Variability), ("pulse", PulseSpec)):
        out += [f"{name}.{f}" for f in model.model_fields if not f.endswith("_stderr")]
    out += [f"endurance.{f}" for f in EnduranceSpec.model_fields]
    return out


def _upgrade_v1(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A version-1 card's dictionary in the version-2 layout (warns what it cannot know)."""
    data = json.loads(json.dumps(data))
    data["schema_version"] = SCHEMA_VERSION
    var = data.get("variability") or {}
    for p in ("a", "alpha", "beta"):
        if f"{p}_dtod" in var:
            v = var.pop(f"{p}_dtod")
            var[f"{p}_ltp_dtod"] = var[f"{p}_ltd_dtod"] = v
    data["variability"] = var
    prov = data.setdefault("provenance", {})
    files = [Path(str(f.get("path", ""))).name for f in prov.get("source_files", [])]
    if files:
        note = "version-1 card: per-field sources were not recorded"
        fields = {
            k: {"origin": "measured", "files": files, "note": note}
            for k in ("ltp", "ltd", "g_min_s", "g_max_s")
        }
        fields["variability.rsd_c2c_ltp"] = fields["variability.rsd_c2c_ltd"] = {
            "origin": "measured",
            "files": files,
            "note": "version-1 figure: spread of single steps around the kernel, read noise "
            "included (an upper bound on cycle-to-cycle noise)",
        }
        prov["fields"] = fields
        warnings.warn(
            f"Device card {source} is a version-1 card: its cycle-to-cycle spread includes "
            "read noise and its fields carry no sources; recalibrate for a version-2 card",
            stacklevel=3,
        )
    else:
        warnings.warn(
            f"Device card {source} is a version-1 card that names no source files: where its "
            "numbers came from is unknown (every field is recorded as assumed); recalibrate "
            "for a version-2 card",
            stacklevel=3,
        )
    return data


# ---- presets -------------------------------------------------------------------------
_PAPER = "published Beta-kernel fits of the paper's FeFET devices (dut1-dut5)"
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
    window = "nominal 1-10 µS FeFET read window; the paper publishes normalised kernels only"
    return DeviceCard(
        name=name,
        description=f"Preset {name}: published Beta-kernel fit; nominal 1-10 µS window",
        ltp=KernelParams(a=ap, alpha=alp, beta=bp),
        ltd=KernelParams(a=ad, alpha=ald, beta=bd),
        g_min_s=PRESET_G_MIN_S,
        g_max_s=PRESET_G_MAX_S,
        provenance=Provenance(
            citation=_PAPER,
            fields={
                "ltp": assumed(_PAPER),
                "ltd": assumed(_PAPER),
                "g_min_s": assumed(window),
                "g_max_s": assumed(window),
            },
        ),
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
