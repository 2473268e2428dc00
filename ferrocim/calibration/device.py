"""Calibrate one device (one DUT at one pulse width): sequences → fits → device card."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferrocim import __version__
from ferrocim.calibration.card import (
    ASSUMED,
    AmplitudeKernel,
    DeviceCard,
    FieldSource,
    KernelParams,
    Provenance,
    PulseSpec,
    Variability,
    assumed,
    measured,
)
from ferrocim.calibration.fitting import (
    KINDS,
    METHODS,
    KernelFit,
    Segment,
    akaike_weights,
    at_bound,
    compare_models,
    fit_method,
    fit_paper,
    fit_trajectory,
    refit_off_bound,
)
from ferrocim.calibration.noise import NoiseEstimate, estimate_noise, smooth_normalised
from ferrocim.calibration.prepare import (
    QualityOptions,
    build_segments,
    resolve_polarity,
    usable_halves,
)
from ferrocim.calibration.readers import ColumnMapping
from ferrocim.calibration.sequence import HalfCycle, PulseSequence
from ferrocim.calibration.variability import (
    parameter_spread,
    rsd_c2c,
    symmetry_point_with_error,
    window_drift,
    window_table,
)
from ferrocim.checks import InputError, check_option


@dataclass(frozen=True)
class CalibrationOptions:
    """Choices of a calibration run (recorded in every card's provenance).

    ``method`` picks whose pooled parameters go into the card; every method is fitted and
    reported. ``g_min_s``/``g_max_s`` (S) fix the global normalisation window.
    """

    format: str = "auto"
    ltp_polarity: str = "auto"
    normalise: str = "sweep"
    method: str = "trajectory"
    mapping: ColumnMapping | None = None
    read_column: str = "R_low"
    g_min_s: float | None = None
    g_max_s: float | None = None
    quality: QualityOptions = field(default_factory=QualityOptions)
    seed: int = 0
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check_option("format", self.format, ("auto", "b1500", "b2912b", "csv"))
        check_option("ltp_polarity", self.ltp_polarity, ("auto", "positive", "negative"))
        check_option("normalise", self.normalise, ("sweep", "global"))
        check_option("method", self.method, METHODS)
        check_option("read_column", self.read_column, ("R_low", "R_high"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "ltp_polarity": self.ltp_polarity,
            "normalise": self.normalise,
            "method": self.method,
            "mapping": None if self.mapping is None else self.mapping.__dict__,
            "read_column": self.read_column,
            "g_min_s": self.g_min_s,
            "g_max_s": self.g_max_s,
            "quality": self.quality.__dict__,
            "seed": self.seed,
        }


@dataclass
class DutCalibration:
    """Everything calibration learned about one device; ``card`` is what the crossbar uses."""

    name: str
    device_id: str
    pulse_width_s: float | None
    ltp_polarity: int
    segments: list[Segment]
    pooled: dict[str, dict[str, KernelFit]]  # method → kind → fit
    per_sweep: dict[str, list[KernelFit]]  # kind → per-sweep fits (card method; paper)
    paper: dict[str, list[KernelFit]]  # kind → paper-recipe fit per sweep
    comparison: dict[str, dict[str, KernelFit]]  # kind → model → fit (same dW data)
    windows: pd.DataFrame
    g_min_s: float
    g_max_s: float
    files: list[PulseSequence]
    card_fits: dict[str, KernelFit]  # kind → the fit whose parameters the card takes
    noise: NoiseEstimate
    symmetry: tuple[float, float | None]  # W* and its 1-sigma error
    drift: float | None  # window drift per sweep
    fit_record: dict[str, Any]  # the card's ``fit`` record (before device-to-device spreads)
    card: DeviceCard | None = None  # built once by build_card
    card_path: Path | None = None

    def fit(self, kind: str, method: str | None = None) -> KernelFit:
        """The pooled fit of ``kind`` by ``method`` (default: the card's method)."""
        return self.pooled[method or self.fit_record["method"]][kind]


def sha256(path: str | Path) -> str | None:
    """Hex SHA-256 of a file's bytes (None when ``path`` is not a file, e.g. in-memory data)."""
    if not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def width_tag(width_s: float | None) -> str:
    """2e-8 → '20ns', 2e-6 → '2us', 2e-3 → '2ms' (None → 'unknown-width')."""
    if width_s is None or not math.isfinite(width_s):
        return "unknown-width"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if width_s >= scale * 0.999:
            return f"{width_s / scale:.4g}{unit}"
    return f"{width_s / 1e-12:.4g}ps"


def _ordered_halves(
    seqs: list[PulseSequence], quality: QualityOptions
) -> list[tuple[int, HalfCycle]]:
    """Usable half-cycles of all files, numbered into one chronological sweep axis."""
    out: list[tuple[int, HalfCycle]] = []
    nxt = 0
    for s in seqs:
        halves = usable_halves(s, quality)
        base = nxt
        for h in halves:
            out.append((base + h.sweep, h))
            nxt = max(nxt, base + h.sweep + 1)
    return out


def _summary_by_method(pooled: dict[str, dict[str, KernelFit]]) -> dict[str, Any]:
    return {m: {k: f.summary() for k, f in by_kind.items()} for m, by_kind in pooled.items()}


def _median(x: list[float]) -> float | None:
    x = [v for v in x if v is not None and math.isfinite(v)]
    return float(np.median(x)) if x else None


def calibrate_device(
    seqs: list[PulseSequence],
    name: str,
    options: CalibrationOptions,
    *,
    rng: np.random.Generator,
    spreads: DeviceSpreads | None = None,
) -> DutCalibration:
    """Fit every method to one device's sequences and build its card (once).

    ``spreads``: device-to-device spreads of the batch this device belongs to (None: the
    card's are assumed 0). Raises :class:`InputError` naming the device when no usable data
    remain, one polarity is missing, too few pulses are left, or the card's fit does not
    converge.
    """
    dut = analyse_device(seqs, name, options, rng=rng)
    dut.card = build_card(dut, options, spreads)
    return dut


def analyse_device(
    seqs: list[PulseSequence],
    name: str,
    options: CalibrationOptions,
    *,
    rng: np.random.Generator,
) -> DutCalibration:
    """Every fit, noise estimate and quality figure of one device; no card yet
    (:func:`build_card` makes it once the batch's device-to-device spreads are known)."""
    seqs = sorted(seqs, key=lambda s: (s.meta.date or _dt.datetime.min, s.meta.count or 0))
    halves = _ordered_halves(seqs, options.quality)
    sources = ", ".join(sorted({Path(s.meta.source).name for s in seqs}))
    if not halves:
        raise InputError(f"{name}: no usable half-cycles in {sources} (see warnings)")
    pol = resolve_polarity([h for _, h in halves], options.ltp_polarity, source=name)
    segs, gmin, gmax = build_segments(
        halves, pol, normalise=options.normalise, g_min_s=options.g_min_s, g_max_s=options.g_max_s
    )
    by_kind = {k: [s for s in segs if s.kind == k] for k in KINDS}
    for k in KINDS:
        if not by_kind[k]:
            raise InputError(
                f"{name}: no usable {k.upper()} half-cycles in {sources} (one polarity only)"
            )

    pooled: dict[str, dict[str, KernelFit]] = {"difference": {}, "trajectory": {}, "paper": {}}
    paper: dict[str, list[KernelFit]] = {}
    per_sweep: dict[str, list[KernelFit]] = {}
    comparison: dict[str, dict[str, KernelFit]] = {}
    for k in KINDS:
        pooled["difference"][k] = fit_method(by_kind[k], k, "difference")
        pooled["trajectory"][k] = fit_method(by_kind[k], k, "trajectory")
        paper[k] = [fit_paper(s) for s in by_kind[k]]
        pooled["paper"][k] = paper[k][0]
        per = []
        if options.method != "paper":
            for s in by_kind[k]:
                try:
                    if options.method == "trajectory":
                        f = fit_trajectory([s], k, starts=[pooled["trajectory"][k].params])
                    else:
                        f = fit_method([s], k, options.method)
                    per.append(dataclasses.replace(f, sweep=s.sweep))
                except (InputError, ValueError):
                    continue
        per_sweep[k] = per if options.method != "paper" else paper[k]
        comparison[k] = compare_models(by_kind[k], k)

    card_fits = {k: pooled[options.method][k] for k in KINDS}
    bound_flags: dict[str, list[str]] = {}
    for k in KINDS:
        if at_bound(card_fits[k]) and options.method == "trajectory":
            card_fits[k] = pooled["trajectory"][k] = refit_off_bound(by_kind[k], k, card_fits[k])
        bound_flags[k] = at_bound(card_fits[k])
        if bound_flags[k]:
            vals = ", ".join(f"{p} = {card_fits[k].params[p]:.4g}" for p in bound_flags[k])
            warnings.warn(
                f"{name}: the {k.upper()} {options.method} fit ends on a parameter bound "
                f"({vals}) from every start tried; the card keeps it, flagged at_bound",
                stacklevel=2,
            )
    for k, f in card_fits.items():
        if not f.success or not all(math.isfinite(v) for v in f.kernel()):
            raise InputError(
                f"{name}: the {k.upper()} {options.method} fit did not converge ({f.message})"
            )
        if min(f.kernel()) <= 0:
            raise InputError(
                f"{name}: the {k.upper()} {options.method} fit reached a non-positive "
                f"parameter {f.kernel()}; the Beta kernel does not describe these data"
            )

    windows = window_table(segs)
    drift = window_drift(windows)
    rsd = {k: rsd_c2c(by_kind[k], card_fits[k].params) for k in KINDS}
    noise = _noise(segs, pooled["trajectory"], options)
    w_star, w_star_err = symmetry_point_with_error(card_fits["ltp"], card_fits["ltd"], rng=rng)

    # ---- fit record -----------------------------------------------------------------
    verdicts: dict[str, Any] = {}
    for k in KINDS:
        comp = comparison[k]
        best_aic = min(f.aic for f in comp.values())
        weights = akaike_weights(comp)
        verdicts[k] = {
            "best": min(comp, key=lambda m: comp[m].aic),
            "models": {
                m: {
                    "aic": f.aic,
                    "bic": f.bic,
                    "delta_aic": f.aic - best_aic,
                    "akaike_weight": weights.get(m),
                    "r2_dw": f.r2_dw,
                    "r2_w": f.r2_w,
                    "n_varied": f.n_varied,
                    "params": f.params,
                }
                for m, f in comp.items()
            },
            "amplitude_aware_beats_identical_pulse": bool(
                comp["amplitude_beta"].aic < comp["beta"].aic
            ),
        }
    better = {}
    for k in KINDS:
        d, t = pooled["difference"][k], pooled["trajectory"][k]
        better[k] = {
            "on_dw_metric": _better(d.r2_dw, t.r2_dw),
            "on_trajectory_metric": _better(d.r2_w, t.r2_w),
        }
    fit_record: dict[str, Any] = {
        "method": options.method,
        "normalise": options.normalise,
        "model": "beta",
        "n_sweeps": len({s.sweep for s in segs}),
        "n_half_cycles": {k: len(by_kind[k]) for k in KINDS},
        "n_pulses": {k: int(sum(len(s.v) for s in by_kind[k])) for k in KINDS},
        # the card method's own R² (trajectory: on the states; difference/paper: on dW)
        "r2_ltp": card_fits["ltp"].r2,
        "r2_ltd": card_fits["ltd"].r2,
        "r2_dw": {k: card_fits[k].r2_dw for k in KINDS},
        "r2_w": {k: card_fits[k].r2_w for k in KINDS},
        "pooled": _summary_by_method(pooled),
        "paper_recipe": {
            k: {
                "median_r2_dw": _median([f.r2_dw for f in paper[k]]),
                "per_sweep": [f.summary() for f in paper[k]],
            }
            for k in KINDS
        },
        "per_sweep_median_r2_dw": {k: _median([f.r2_dw for f in per_sweep[k]]) for k in KINDS},
        "better_method": better,
        "model_comparison": verdicts,
        "parameter_spread_c2c": {k: parameter_spread(per_sweep[k]) for k in KINDS},
        "windows": windows.to_dict(orient="list"),
        "g_window_global_s": [gmin, gmax],
    }
    fit_record = json_clean(fit_record)

    fit_record["noise"] = json_clean(
        {
            "model": "state-space (extended Kalman filter): read noise, c2c shared by LTP and "
            "LTD, state wander",
            "read_noise": noise.read_noise,
            "read_noise_stderr": noise.read_noise_stderr,
            "c2c": noise.c2c.get("ltp"),
            "c2c_stderr": noise.c2c_stderr.get("ltp"),
            "state_wander": noise.wander,
            "state_wander_stderr": noise.wander_stderr,
            "n_reads": noise.n_reads,
            "converged": noise.converged,
            "step_residual_rsd": rsd,
            "reads_per_state": _reads_per_state(seqs),
        }
    )
    fit_record["at_bound"] = bound_flags
    return DutCalibration(
        name=name,
        device_id=seqs[0].meta.device_id or name,
        pulse_width_s=_width(seqs),
        ltp_polarity=pol,
        segments=segs,
        pooled=pooled,
        per_sweep=per_sweep,
        paper=paper,
        comparison=comparison,
        windows=windows,
        g_min_s=gmin,
        g_max_s=gmax,
        files=seqs,
        card_fits=card_fits,
        noise=noise,
        symmetry=(w_star, w_star_err),
        drift=drift,
        fit_record=fit_record,
    )


def _width(seqs: list[PulseSequence]) -> float | None:
    """The one pulse width (s) of all files, or None (unknown or several)."""
    widths = {s.meta.pulse_width_s for s in seqs}
    w = next(iter(widths))
    return float(w) if len(widths) == 1 and w is not None and math.isfinite(w) else None


def _reads_per_state(seqs: list[PulseSequence]) -> dict[str, Any] | None:
    """B2912B ``Read_points`` / ``read_tail_avg_points`` of the files (None elsewhere)."""
    for s in seqs:
        if "Read_points" in s.meta.extra:
            return {
                "read_points": s.meta.extra.get("Read_points"),
                "averaged_points": s.meta.extra.get("read_tail_avg_points"),
                "note": "the file exports the averaged read only, so the repeated reads give "
                "no independent read-noise estimate; read noise is the averaged read's",
            }
    return None


def _noise(
    segs: list[Segment], trajectory: dict[str, KernelFit], options: CalibrationOptions
) -> NoiseEstimate:
    """Read noise and cycle-to-cycle spread from the state-space model (:mod:`.noise`).

    Unless the user fixed the window, the segments are renormalised to the extremes of their
    moving average first, and the trajectory kernels refitted there.
    """
    fixed = options.g_min_s is not None and options.g_max_s is not None
    if fixed:
        return estimate_noise(segs, {k: trajectory[k].kernel() for k in KINDS}, shared_c2c=True)
    smooth = smooth_normalised(segs, per_sweep=options.normalise == "sweep")
    kernels = {}
    for k in KINDS:
        mine = [s for s in smooth if s.kind == k]
        try:
            kernels[k] = fit_trajectory(mine, k, starts=[trajectory[k].params]).kernel()
        except (InputError, ValueError):
            kernels[k] = trajectory[k].kernel()
    return estimate_noise(smooth, kernels, shared_c2c=True)


@dataclass(frozen=True)
class DeviceSpreads:
    """Device-to-device relative s.d. of a batch (``Variability`` field name → value)."""

    values: dict[str, float]
    devices: list[str]
    files: list[str]


def build_card(
    dut: DutCalibration, options: CalibrationOptions, spreads: DeviceSpreads | None = None
) -> DeviceCard:
    """The device card of an analysed device, every field with its source."""
    seqs, name, pol = dut.files, dut.name, dut.ltp_polarity
    card_fits, noise = dut.card_fits, dut.noise
    by_kind = {k: [s for s in dut.segments if s.kind == k] for k in KINDS}
    files = [Path(s.meta.source).name for s in seqs]
    src: dict[str, FieldSource] = {}

    def kp(f: KernelFit) -> KernelParams:
        return KernelParams(
            a=f.params["a"],
            alpha=f.params["alpha"],
            beta=f.params["beta"],
            a_stderr=f.stderr.get("a"),
            alpha_stderr=f.stderr.get("alpha"),
            beta_stderr=f.stderr.get("beta"),
            at_bound=at_bound(f),
        )

    amp: dict[str, AmplitudeKernel | None] = {}
    for k in KINDS:
        f = dut.comparison[k]["amplitude_beta"]
        bound = at_bound(f)
        try:
            amp[k] = AmplitudeKernel(**f.params, at_bound=bound) if f.success else None
        except ValueError:  # a non-positive parameter: no amplitude-aware kernel in the card
            amp[k] = None
        note = "difference fit of the amplitude-aware kernel"
        if bound:
            note += f"; ends on a bound ({', '.join(bound)})"
        src[f"{k}_amplitude"] = (
            measured(files, note)
            if amp[k]
            else assumed(ASSUMED["default"], "amplitude-aware fit failed")
        )
    for k in KINDS:
        note = f"{options.method} fit"
        if at_bound(card_fits[k]):
            note += f"; ends on a bound ({', '.join(at_bound(card_fits[k]))})"
        src[k] = measured(files, note)
    for g in ("g_min_s", "g_max_s"):
        given = getattr(options, g) is not None
        src[g] = FieldSource(origin="user", note="--g-min/--g-max") if given else measured(files)
    c2c_note = "state-space model, one figure for LTP and LTD"
    for f in ("rsd_c2c_ltp", "rsd_c2c_ltd", "read_noise_rsd"):
        src[f"variability.{f}"] = measured(files, c2c_note)
    if dut.drift is not None:
        src["variability.window_drift_per_cycle"] = measured(files)
    d2d: dict[str, float] = {}
    if spreads is not None:
        d2d = spreads.values
        for f in d2d:
            src[f"variability.{f}"] = measured(
                spreads.files, f"spread over devices {', '.join(spreads.devices)}"
            )
    width = dut.pulse_width_s
    if width is None:
        what = "several widths" if len({s.meta.pulse_width_s for s in seqs}) > 1 else "none"
        warnings.warn(
            f"{name}: the files give no single pulse width ({what}); the card assumes 20 ns "
            "(recorded as assumed)",
            stacklevel=2,
        )
    else:
        mapped = options.mapping is not None and options.mapping.pulse_width_s is not None
        src["pulse.width_s"] = (
            FieldSource(origin="user", note="--pulse-width") if mapped else measured(files)
        )
    amp_ltp = [float(np.max(np.abs(s.v))) for s in by_kind["ltp"]]
    amp_ltd = [float(np.max(np.abs(s.v))) for s in by_kind["ltd"]]
    reads = [s.meta.read_voltage_v for s in seqs if s.meta.read_voltage_v is not None]
    src["pulse.amplitude_ltp_v"] = src["pulse.amplitude_ltd_v"] = measured(
        files, "median of each half-cycle's largest |V|"
    )
    if reads:
        src["pulse.read_voltage_v"] = measured(files)
    src["pulse.ltp_polarity"] = (
        measured(files, "inferred from the data")
        if options.ltp_polarity == "auto"
        else FieldSource(origin="user", note="--ltp-polarity")
    )
    meta0 = seqs[0].meta
    w_star, w_star_err = dut.symmetry
    fit_record = dict(dut.fit_record)
    if spreads is not None:
        fit_record["d2d"] = json_clean({**spreads.values, "devices": spreads.devices})
    return DeviceCard(
        name=name,
        description=(
            f"Calibrated from {len(seqs)} file(s) of device {meta0.device_id or name} "
            f"({meta0.instrument or meta0.parser}); {options.method} fit, "
            f"{options.normalise} normalisation"
        ),
        ltp=kp(card_fits["ltp"]),
        ltd=kp(card_fits["ltd"]),
        ltp_amplitude=amp["ltp"],
        ltd_amplitude=amp["ltd"],
        g_min_s=dut.g_min_s,
        g_max_s=dut.g_max_s,
        symmetry_point=w_star if math.isfinite(w_star) else None,
        symmetry_point_stderr=w_star_err,
        variability=Variability(
            rsd_c2c_ltp=_nonneg(noise.c2c["ltp"]),
            rsd_c2c_ltd=_nonneg(noise.c2c["ltd"]),
            rsd_c2c_stderr=noise.c2c_stderr["ltp"],
            read_noise_rsd=_nonneg(noise.read_noise),
            read_noise_stderr=noise.read_noise_stderr,
            window_drift_per_cycle=dut.drift,
            **{k: _nonneg(v) for k, v in d2d.items()},
        ),
        pulse=PulseSpec(
            width_s=20e-9 if width is None else width,
            amplitude_ltp_v=float(pol * np.median(amp_ltp)),
            amplitude_ltd_v=float(-pol * np.median(amp_ltd)),
            read_voltage_v=float(np.median(reads)) if reads else None,
            ltp_polarity=pol,
        ),
        fit=fit_record,
        provenance=Provenance(
            source_files=[
                {
                    "path": s.meta.source,
                    "sha256": sha256(s.meta.source),
                    "parser": s.meta.parser,
                    "meta": json_clean(s.meta.to_dict()),
                }
                for s in seqs
            ],
            fields=src,
            options=json_clean(options.to_dict()),
            ferrocim_version=__version__,
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        ),
    )


def _better(r2_difference: float, r2_trajectory: float, tol: float = 1e-3) -> str:
    """'difference', 'trajectory' or 'tie' (R² within ``tol``)."""
    if abs(r2_difference - r2_trajectory) <= tol:
        return "tie"
    return "difference" if r2_difference > r2_trajectory else "trajectory"


def _nonneg(x: float) -> float:
    return float(x) if math.isfinite(x) and x >= 0 else 0.0


def json_clean(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python numbers (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
