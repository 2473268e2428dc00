"""Configuration records of the crossbar: array, programming, endurance and energy.

These records are the one configuration spine of the array. A run's ``[array]`` section
*is* an :class:`AnalogConfig` (``ferrocim.pipelines.config.RunConfig.array``), so a
setting flows one way::

    --eps 0.025 / --set array.programming.eps=0.025 / [array.programming] eps = 0.025
      → RunConfig.array.programming.eps   (validated here, before a run directory exists)
      → AnalogConfig handed to every analog layer (card replaced by the run's card.json)
      → AnalogModule.analog_config.programming.eps → thresholds of the tile

A new crossbar knob is a field here and nowhere else: TOML and ``--set`` reach it at once
(CLI flags for the paper's knobs are a one-line entry in ``ferrocim.cli._KNOBS``).

All records are frozen pydantic models with checked fields and a docstring per field, in
the style of aihwkit's device configs. Constructing one with a bad value raises
:class:`~ferrocim.checks.InputError` naming the record and field. Units: seconds (s),
volts (V), joules (J); everything else is dimensionless.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ferrocim.calibration.card import DeviceCard, resolve_card
from ferrocim.checks import InputError, check_option

REFERENCES = ("mid", "symmetry")
#: how the symmetry reference is placed (``AnalogConfig.symmetry_reference``)
SYMMETRY_REFERENCES = ("card", "device")
#: the weight window of a layer (``AnalogConfig.weight_window``)
WEIGHT_WINDOWS = ("layer", "fixed", "scaled")
#: order in which the pulsed rules fire a step's pulses (``ProgrammingConfig.pulse_order``)
PULSE_ORDERS = ("grouped", "per_sample")
#: definition of the pulsed rules' step size ``dw_min`` (``ProgrammingConfig.dw_min``)
DW_MIN_DEFINITIONS = ("mean_at_reference", "up_at_mid")
#: how the threshold rule fires its crossings (``ProgrammingConfig.transfer``)
TRANSFERS = ("exact", "pulse_train")
#: periphery presets (``AnalogConfig.periphery``)
PERIPHERIES = ("ideal", "aihwkit")
NOISE_MANAGEMENTS = ("none", "abs_max")
BOUND_MANAGEMENTS = ("none", "iterative")

#: what ``periphery = "aihwkit"`` sets (each only when not given): aihwkit 1.1.0's default
#: ``IOParameters`` of a ``SingleRPUConfig`` / ``DigitalRankUpdateRPUConfig``, forward and
#: backward (inp_bound 1, inp_res 1/(2**7 - 2) of the range 2 = 1/63: a 7-bit DAC;
#: out_bound 12, out_res 1/(2**9 - 2) of the range 24 = 12/255: a 9-bit ADC; out_noise
#: 0.06; noise management ABS_MAX; bound management ITERATIVE, forward only), its output-
#: bound gradient mask (out_bound 12) and its default mapping (tiles up to 512 x 512)
AIHWKIT_PERIPHERY: dict[str, Any] = {
    "dac_bits": 7,
    "dac_range": 1.0,
    "adc_bits": 9,
    "adc_full_scale": 12.0,
    "out_noise": 0.06,
    "noise_management": "abs_max",
    "bound_management": "iterative",
    "backward_io": True,
    "grad_out_bound": 12.0,
    "tile_rows": 512,
    "tile_cols": 512,
}

#: an integer field that refuses floats and bools (TOML ``256.0`` or ``true`` is a mistake)
StrictInt = Annotated[int, Field(strict=True)]


class ConfigError(InputError):
    """Bad field values of a configuration record; ``errors`` holds (dotted field, message)
    so an enclosing record (the run configuration) can report the full dotted path."""

    def __init__(self, errors: list[tuple[str, str]], owner: str) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{owner}.{loc}: {msg}" for loc, msg in errors))


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted field, message with the value received) for each error of ``exc``."""
    out: list[tuple[str, str]] = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        inner = (e.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError):  # a nested record's own error: keep its fields
            out += [(f"{loc}.{sub}" if loc else sub, msg) for sub, msg in inner.errors]
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if "input" in e and not isinstance(e["input"], dict):
            msg += f" (got {e['input']!r})"
        out.append((loc, msg))
    return out


def format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """One ``prefix + dotted.field: message (got value)`` line per error of ``exc``."""
    return [f"{prefix}{loc}: {msg}" for loc, msg in validation_errors(exc)]


class _Record(BaseModel):
    """Frozen, extra fields forbidden; bad values raise :class:`ConfigError`."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(validation_errors(exc), type(self).__name__) from None

    def replace(self, **changes: Any) -> Any:
        """A validated copy with some fields changed."""
        return type(self)(**{**dict(self), **changes})


class ProgrammingConfig(_Record):
    """Threshold-accumulated pulse programming (the paper's on-device learning rule)."""

    eps: float = Field(
        default=0.025,
        gt=0,
        le=1,
        description="LTP threshold as a fraction of the layer range: thr = eps * 2 * w_max",
    )
    thr_asym: float = Field(
        default=1.0, gt=0, description="LTD threshold factor: thr_ltd = eps * thr_asym * 2 * w_max"
    )
    max_pulses_per_step: StrictInt | None = Field(
        default=1,
        ge=1,
        description="pulses fired per weight and step when the accumulator crossed at least "
        "once (None: one per crossing); the accumulator is always debited by all crossings",
    )
    a_scale: float = Field(default=1.0, gt=0, description="multiplies both kernel amplitudes")
    a_asym: float = Field(default=1.0, gt=0, description="multiplies the LTD kernel amplitude")
    rsd_c2c: float | None = Field(
        default=None,
        ge=0,
        description="relative s.d. of the kernel amplitude per device and pulse, "
        "a ~ N(a, (rsd a)^2); None: the card's cycle-to-cycle figures rsd_c2c_ltp / "
        "rsd_c2c_ltd (read noise separated out)",
    )
    write_amplitude: float | None = Field(
        default=None,
        gt=0,
        description="write pulse amplitude (V, both polarities): program with the card's "
        "amplitude-aware kernels at this amplitude; None: its identical-pulse kernels",
    )
    state_clamp: bool = Field(
        default=False,
        description="ferrocim's option (off: the published rule): keep every device state in "
        "[0.01, 0.99], i.e. weights inside ±0.98 w_max; off, the state uses all of [0, 1] "
        "(weights all of ±w_max) and only the kernel input is clamped",
    )
    q: StrictInt | None = Field(
        default=None,
        description="re-quantise every device weight to q + 1 levels (q in 2, 4, 8, 16, 32) "
        "after every optimiser step (the published on-device training and re-tuning with "
        "q > 0); None: never",
    )

    pulse_order: str = Field(
        default="grouped",
        description="order of the stochastic pulse-train rules' pulses (rules.PulsedSGD; the "
        "threshold rule fires at most one polarity per device and step and is not affected). "
        "'grouped': per step and device all LTP pulses of the mini-batch, then all LTD ones "
        "(which polarity goes first alternates from step to step); 'per_sample': aihwkit's "
        "order, sample by sample and slot by slot, so up and down pulses interleave as their "
        "coincidences occur (within one sample a device's pulses share one polarity)",
    )
    dw_min: str = Field(
        default="mean_at_reference",
        description="step size dw_min of the pulsed rules and of the mixed rule's threshold "
        "(rules.dw_min, rules.granularity_eps), in units of the window 2 w_max: "
        "'mean_at_reference': mean of the LTP and LTD kernel steps at the reference level "
        "(0.5 or W*); 'up_at_mid': the LTP step at W = 0.5, aihwkit's PiecewiseStep dw_min "
        "(the up step at the middle node). Pulses per update are lr |x d| / dw_min, so a "
        "smaller dw_min fires more pulses: the effective learning rate is "
        "lr * (actual step / dw_min)",
    )

    transfer: str = Field(
        default="exact",
        description="how the threshold rule (program_delta: the paper's rule, mixed precision) "
        "fires the pulses it decided: 'exact' (ferrocim's) each device fires exactly its "
        "n = min(crossings, max_pulses_per_step) pulses; 'pulse_train' aihwkit 1.1's "
        "MixedPrecisionCompound transfer, row by row (one row = one output) as a stochastic "
        "pulse train with update and BL management: with N the largest n of the row, "
        "BL = min(transfer_bl, N) slots, each device firing in each slot with probability "
        "min(1, n / sqrt(BL N)), so a device fires Binomial(BL, n/N) pulses for N <= "
        "transfer_bl (exactly n when N = 1) and fewer than n on average above. The "
        "accumulator is debited by all crossings either way",
    )
    transfer_bl: StrictInt = Field(
        default=31,
        ge=1,
        description="with transfer='pulse_train': the longest pulse train of a row (aihwkit's "
        "UpdateParameters.desired_bl, 31 by default)",
    )

    @field_validator("transfer")
    @classmethod
    def _transfer(cls, v: str) -> str:
        return check_option("ProgrammingConfig.transfer", v, TRANSFERS)

    @field_validator("pulse_order")
    @classmethod
    def _pulse_order(cls, v: str) -> str:
        return check_option("ProgrammingConfig.pulse_order", v, PULSE_ORDERS)

    @field_validator("dw_min")
    @classmethod
    def _dw_min(cls, v: str) -> str:
        return check_option("ProgrammingConfig.dw_min", v, DW_MIN_DEFINITIONS)

    @field_validator("q")
    @classmethod
    def _q(cls, v: int | None) -> int | None:
        if v is not None and v not in (2, 4, 8, 16, 32):
            raise ValueError(f"must be None or one of 2, 4, 8, 16, 32 (q + 1 levels), got {v}")
        return v


class EnduranceConfig(_Record):
    """Wear-out of the devices.

    When ``enabled``, every device gets a lifetime (pulses) drawn once from a lognormal
    around ``card.endurance.cycles_median`` with ``cycles_log10_sd`` (log10 s.d.), times
    ``lifetime_scale``. A device whose LTP + LTD pulse count reaches its lifetime fails
    stuck at its present conductance. Its memory window also shrinks towards the middle of
    [0, 1] ([0.01, 0.99] with ``state_clamp``) by ``card.endurance.window_loss_per_decade``
    per decade of ``pulses / lifetime_scale``. ``lifetime_scale`` < 1 accelerates wear for tests and
    demos (1e-8 turns a 1e10-cycle device into a ~100-pulse device).
    """

    enabled: bool = Field(default=False, description="draw lifetimes and let devices fail")
    lifetime_scale: float = Field(default=1.0, gt=0, description="multiplies device lifetimes")
    window_loss: bool = Field(default=True, description="shrink the window with wear")


class EnergyConfig(_Record):
    """Per-event energies of the ledger (joules).

    Write energy per pulse: ``write_j_at_20ns`` scaled by the published width factors
    (×5.7 at 200 ns, ×25 at 2 µs, ×690 at 20 µs, ×3800 at 200 µs, log-log interpolated)
    at ``pulse_width_s`` (``None``: the card's ``pulse.width_s``), times
    ``(V / reference_amplitude_v)**2`` when both the card's amplitude and
    ``reference_amplitude_v`` are known. A card that states its own ``pulse.energy_j``
    (per-width cards) uses that instead, unless ``pulse_width_s`` names another width.
    """

    write_j_at_20ns: float = Field(default=3e-12, ge=0, description="J per 20 ns write pulse")
    pulse_width_s: float | None = Field(default=None, gt=0, description="s; None: the card's")
    reference_amplitude_v: float | None = Field(
        default=None, gt=0, description="V at which write_j_at_20ns holds"
    )
    read_j_per_mac: float = Field(default=0.05e-15, ge=0, description="J per analog MAC")
    dac_j_per_conversion: float = Field(default=0.05e-12, ge=0, description="J per input DAC")
    adc_j_per_conversion: float = Field(default=1e-12, ge=0, description="J per output ADC")


class AnalogConfig(_Record):
    """How a layer's weights live on the array.

    ``reference``: ``"mid"`` puts the reference devices at W = 0.5,
    ``w = (W - 0.5) * 2 * w_max``; ``"symmetry"`` puts them at a symmetry point,
    ``w = (W - W*) * 2 * w_max * reference_scale``, placed as ``symmetry_reference`` says:
    ``"card"`` (default) the card's nominal W* for every device, the weight clipped to
    ``±w_max`` (so one side of the window is lost: with W* = 0.77 and ``reference_scale = 1``
    the states above 0.77 + 0.5 do not exist and weights above ``0.46 w_max`` cannot be
    reached); ``"device"`` (aihwkit's reference devices, the published study) each device's
    own W* (from its drawn kernel, ``a_asym`` included) and the weight not clipped, so every
    state of [0, 1] is used: weights span ``[-2 W* w_max, 2 (1 - W*) w_max]``.

    ``weight_window`` sets the bound ``w_max`` of every layer: ``"layer"`` (default) the
    layer's own (the ``w_max`` its constructor was given, e.g. the EEG network's per-layer
    constants, else ``1/sqrt(fan_in)``), initial weights ``U(±w_max)``; ``"fixed"``
    ``±weight_bound`` for every layer (aihwkit's absolute device bounds, e.g. 1.0), initial
    weights torch's ``U(±1/sqrt(fan_in))`` clipped to the window; ``"scaled"`` aihwkit's
    weight scaling: initial weights ``U(±1/sqrt(fan_in))`` and ``w_max = max|w_init| /
    weight_omega`` per layer. DAC: inputs clipped to ±dac_range and
    rounded to ``2**(bits-1) - 1`` steps per side. ADC per tile: each tile's partial sum is
    clipped to ``±adc_range * w_max * dac_range`` and rounded likewise. ``None`` bits: ideal.

    ``grad_out_bound`` (default ``None``: off) is aihwkit's output-bound gradient mask: in
    the backward pass the error of an output with ``|W x| >= 0.999 * grad_out_bound``
    (weight·input units, before the bias) is set to zero before it is passed back through
    the weights, so the layers below get no gradient from it; the forward value is not
    clipped and the layer's own update (its captured output error, its weight gradient) is
    not masked. aihwkit 1.1's pulsed tiles do this with ``forward.out_bound = 12`` even with
    ``is_perfect=True`` (per aihwkit tile; one tile per layer up to 512 x 512). With
    ``±1`` weights and drifting devices the logits pass 12 and the hidden layers stop
    learning: set ``grad_out_bound = 12`` to reproduce it.

    ``periphery`` (default ``"ideal"``) is a preset: ``"aihwkit"`` gives aihwkit 1.1.0's
    default noisy periphery (its ``IOParameters``, forward and backward: abs-max noise
    management, a 7-bit DAC on ±1, output noise 0.06, a 9-bit ADC on ±12 with iterative
    bound management in the forward pass; the output-bound mask; 512 x 512 tiles) by
    filling ``dac_bits``, ``dac_range``, ``adc_bits``, ``adc_full_scale``, ``out_noise``,
    ``noise_management``, ``bound_management``, ``backward_io``, ``grad_out_bound``,
    ``tile_rows`` and ``tile_cols`` where they are not given (given values win). Any of
    those fields set away from its default puts an ``AnalogLinear`` on the managed path
    (:func:`~ferrocim.crossbar.mac.managed_matmul`); otherwise the forward is exactly
    the plain one. aihwkit's device-to-device defaults (``dw_min_dtod``, ``w_max_dtod``,
    ``w_min_dtod`` 0.3, ``dw_min_std`` 0.3) are device parameters, not periphery: they
    come from the card (``d2d``, ``rsd_c2c``), not from this preset.
    """

    card: DeviceCard | str = Field(
        default="dut2", description="device card: preset (dut1..dut5), card JSON path or card"
    )
    tile_rows: StrictInt = Field(default=256, ge=1, description="rows per tile (fan-in side)")
    tile_cols: StrictInt = Field(default=256, ge=1, description="columns per tile (outputs)")
    reference: str = Field(default="mid", description="reference devices: 'mid' or 'symmetry'")
    reference_scale: float = Field(
        default=1.0, gt=0, description="gain of the conductance difference (symmetry reference)"
    )
    symmetry_reference: str = Field(
        default="card",
        description="with reference='symmetry': 'card' the card's W* for every device, weights "
        "clipped to ±w_max; 'device' each device's own W*, the full window, weights unclipped",
    )
    weight_window: str = Field(
        default="layer",
        description="bound w_max of each layer: 'layer' its own (constructor w_max, else "
        "1/sqrt(fan_in)); 'fixed' weight_bound; 'scaled' max|w_init| / weight_omega",
    )
    weight_bound: float = Field(
        default=1.0, gt=0, description="w_max of every layer with weight_window='fixed'"
    )
    weight_omega: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="with weight_window='scaled': the fraction of the window the largest "
        "initial weight maps to (aihwkit's weight_scaling_omega)",
    )
    d2d: bool = Field(default=True, description="draw per-device parameters from the card's spread")
    read_noise: float | None = Field(
        default=None,
        ge=0,
        description="weight read noise per forward, s.d. read_noise * w_max (None: the "
        "card's read noise mapped onto the weight, 2 * read_noise_rsd, times "
        "reference_scale for the symmetry reference; 0 for the presets)",
    )
    dac_bits: StrictInt | None = Field(default=None, ge=2, le=32, description="input DAC bits")
    dac_range: float = Field(default=1.0, gt=0, description="input DAC full scale")
    adc_bits: StrictInt | None = Field(default=None, ge=2, le=32, description="tile ADC bits")
    adc_range: float = Field(default=20.0, gt=0, description="ADC full scale / (w_max·dac_range)")
    grad_out_bound: float | None = Field(
        default=None,
        gt=0,
        description="aihwkit's output-bound gradient mask: the error a layer passes back to "
        "its input is zeroed at every output with |W x| >= 0.999 * grad_out_bound (before "
        "the bias; the output itself is not clipped, and the layer's own update keeps the "
        "full error). aihwkit 1.1 does this on its pulsed tiles with forward.out_bound = 12, "
        "also with is_perfect=True. None: off",
    )
    periphery: str = Field(
        default="ideal",
        description="periphery preset: 'ideal' (default) none, the fields as given (by default "
        "an ideal periphery); 'aihwkit' aihwkit 1.1.0's default noisy periphery: fills "
        "dac_bits 7, dac_range 1, adc_bits 9, adc_full_scale 12, out_noise 0.06, "
        "noise_management 'abs_max', bound_management 'iterative', backward_io true, "
        "grad_out_bound 12, tiles 512 x 512, each only where the field is not given",
    )
    noise_management: str = Field(
        default="none",
        description="'abs_max': each input vector of a tile is divided by its largest |x| "
        "before the DAC and the tile's output multiplied back (aihwkit's NoiseManagement "
        "ABS_MAX; an all-zero input gives exactly 0); 'none': inputs as they are",
    )
    bound_management: str = Field(
        default="none",
        description="'iterative' (aihwkit's BoundManagement ITERATIVE, forward only): a tile "
        "output whose quantised value is beyond the ADC full scale repeats the MVM with "
        "the input halved (new noise each time), until none is or the input has been "
        "divided by more than 0.25 * (2**(dac_bits-1) - 1) (16 for 7 bits; 1000 without "
        "a DAC); the output is multiplied back. Needs an ADC (adc_bits). 'none': clip",
    )
    out_noise: float = Field(
        default=0.0,
        ge=0,
        description="s.d. of Gaussian noise added to every tile output before the ADC "
        "(weight x input units, after noise management: aihwkit's out_noise, 0.06), drawn "
        "from the layer's generator at every forward (and backward with backward_io)",
    )
    adc_full_scale: float | None = Field(
        default=None,
        gt=0,
        description="ADC full scale in weight x input units (after noise management), for "
        "every layer (aihwkit's out_bound, 12); None: adc_range * w_max * dac_range",
    )
    backward_io: bool = Field(
        default=False,
        description="the backward pass (the error sent through W^T to the layer's input) goes "
        "through the same DAC, noise management, output noise and ADC, without bound "
        "management (aihwkit's backward IOParameters); false: exact. The layer's own update "
        "always uses its exact inputs and output errors",
    )
    programming: ProgrammingConfig = Field(default_factory=ProgrammingConfig)
    endurance: EnduranceConfig = Field(default_factory=EnduranceConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)

    def replace(self, **changes: Any) -> Any:
        """A validated copy with some fields changed; fields never given keep their
        defaults, so ``replace(periphery="aihwkit")`` fills the preset's fields."""
        given = {k: getattr(self, k) for k in self.model_fields_set}
        return type(self)(**{**given, **changes})

    @model_validator(mode="before")
    @classmethod
    def _periphery_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("periphery") == "aihwkit":
            return {**AIHWKIT_PERIPHERY, **data}
        return data

    @field_validator("periphery")
    @classmethod
    def _periphery(cls, v: str) -> str:
        return check_option("AnalogConfig.periphery", v, PERIPHERIES)

    @field_validator("noise_management")
    @classmethod
    def _noise_management(cls, v: str) -> str:
        return check_option("AnalogConfig.noise_management", v, NOISE_MANAGEMENTS)

    @field_validator("bound_management")
    @classmethod
    def _bound_management(cls, v: str) -> str:
        return check_option("AnalogConfig.bound_management", v, BOUND_MANAGEMENTS)

    @model_validator(mode="after")
    def _bound_management_needs_adc(self) -> AnalogConfig:
        if self.bound_management != "none" and self.adc_bits is None:
            msg = (
                "'iterative' needs an ADC: set adc_bits (and adc_full_scale or adc_range), "
                f"got adc_bits={self.adc_bits!r}"
            )
            raise ConfigError([("bound_management", msg)], "AnalogConfig")
        return self

    @property
    def managed_io(self) -> bool:
        """Whether the forward goes through the managed periphery (noise or bound
        management, output noise, an absolute ADC full scale, or a noisy backward) rather
        than the plain DAC / per-tile ADC path."""
        return (
            self.noise_management != "none"
            or self.bound_management != "none"
            or self.out_noise > 0
            or self.adc_full_scale is not None
            or self.backward_io
        )

    @field_validator("card", mode="before")
    @classmethod
    def _card(cls, v: Any) -> Any:
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        return check_option("AnalogConfig.reference", v, REFERENCES)

    @field_validator("symmetry_reference")
    @classmethod
    def _symmetry_reference(cls, v: str) -> str:
        return check_option("AnalogConfig.symmetry_reference", v, SYMMETRY_REFERENCES)

    @field_validator("weight_window")
    @classmethod
    def _weight_window(cls, v: str) -> str:
        return check_option("AnalogConfig.weight_window", v, WEIGHT_WINDOWS)

    @property
    def clips_weights(self) -> bool:
        """Whether a weight read from the devices is clipped to ``±w_max`` (all but the
        per-device symmetry reference)."""
        return not (self.reference == "symmetry" and self.symmetry_reference == "device")

    def resolved_card(self) -> DeviceCard:
        """The device card this config names."""
        return resolve_card(self.card)

    def programmed_card(self) -> DeviceCard:
        """The card as the tiles program it: at ``programming.write_amplitude`` when set."""
        card = self.resolved_card()
        v = self.programming.write_amplitude
        return card if v is None else card.at_amplitude(v)

    def tile_read_noise(self, card: DeviceCard) -> float:
        """Weight read noise in units of ``w_max`` (see ``read_noise``)."""
        if self.read_noise is not None:
            return self.read_noise
        gain = self.reference_scale if self.reference == "symmetry" else 1.0
        return 2.0 * card.variability.read_noise_rsd * gain

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (the card as its full dictionary)."""
        out = self.model_dump(mode="json", exclude={"card"})
        return {"card": self.resolved_card().to_dict(), **out}


def config_alias(
    config: AnalogConfig | None, rpu_config: AnalogConfig | None, where: str
) -> AnalogConfig | None:
    """``config``, or aihwkit's spelling ``rpu_config`` of the same argument (``where``
    names the caller in the error); giving both is an :class:`InputError`."""
    if rpu_config is None:
        return config
    if config is not None:
        raise InputError(
            f"{where}: give the AnalogConfig once, as config= or as rpu_config= "
            "(aihwkit's name for it), not both"
        )
    return rpu_config
