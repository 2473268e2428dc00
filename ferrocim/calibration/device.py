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
    fit_difference,
    fit_method,
    fit_paper,
    fit_trajectory,
    refit_off_bound,
)
from ferrocim.calibration.models import PAPER_START
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
from ferrocim.calibration.window import (
    JointFit,
    choose_window,
    fit_joint,
    fit_window,
    saturation_seen,
)
from ferrocim.checks import InputError, check_option

#: |correlation| of the c2c and state-wander estimates above which the two are reported as
#: not separately identified (they trade against each other when steps vary little).
C2C_WANDER_MAX_CORR = 0.9
#: ``CalibrationOptions.normalise`` values (see its docstring).
NORMALISE_OPTIONS = ("auto", "fitted", "sweep", "global")


@dataclass(frozen=True)
class CalibrationOptions:
    """Choices of a calibration run (recorded in every card's provenance).

    ``method`` picks whose pooled parameters go into the card; every method is fitted and
    reported. ``normalise`` sets the conductance window: ``fitted`` (one window shared by
    LTP and LTD, fitted with the kernels; :mod:`~ferrocim.calibration.window`), ``sweep``
    (min-max of each sweep's reads), ``global`` (min-max of all reads) or ``auto`` (the
    fitted window where it is identified and fits at least as well as min-max per sweep,
    else min-max per sweep; the card says which and why). ``g_min_s``/``g_max_s`` (S) give
    the window instead (not with ``sweep``).
    ``devices`` keeps only the files of these device ids (None: all); ``pool_devices``
    fits the files of all (kept) devices at one pulse width as one device named
    ``pooled_<width>``.
    """

    format: str = "auto"
    ltp_polarity: str = "auto"
    normalise: str = "auto"
    method: str = "trajectory"
    mapping: ColumnMapping | None = None
    read_column: str = "R_low"
    g_min_s: float | None = None
    g_max_s: float | None = None
    quality: QualityOptions = field(default_factory=QualityOptions)
    seed: int = 0
    plots: bool = True
    progress: bool = True
    devices: tuple[str, ...] | None = None
    pool_devices: bool = False

    def __post_init__(self) -> None:
        check_option("format", self.format, ("auto", "b1500", "b2912b", "csv"))
        check_option("ltp_polarity", self.ltp_polarity, ("auto", "positive", "negative"))
        check_option("normalise", self.normalise, NORMALISE_OPTIONS)
        if self.normalise == "sweep" and (self.g_min_s is not None or self.g_max_s is not None):
            raise InputError(
                "--g-min/--g-max give one window for all sweeps; they cannot be combined with "
                "--normalise sweep (use auto, global or fitted)"
            )
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
            "devices": None if self.devices is None else list(self.devices),
            "pool_devices": self.pool_devices,
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
    window: dict[str, Any] = field(default_factory=dict)  # the card's ``fit['window']``
    card: DeviceCard | None = None  # built once by build_card
    card_path: Path | None = None

    def fit(self, kind: str, method: str | None = None) -> KernelFit:
        """The pooled fit of ``kind`` by ``method`` (default: the card's method)."""
        return self.pooled[method or self.fit_record["method"]][kind]

    def fit_report(self) -> str:
        """The card's fit as lmfit-style text (:meth:`DeviceCard.fit_report`)."""
        if self.card is None:
            raise InputError(f"{self.name}: no card built yet, so no fit report")
        return self.card.fit_report()


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
    # messages name the files, not only the device id from their headers
    pol = resolve_polarity(
        [h for _, h in halves], options.ltp_polarity, source=f"{name} ({sources})"
    )
    segs_mm, _, _ = build_segments(halves, pol, normalise="sweep")
    for k in KINDS:
        if not any(s.kind == k for s in segs_mm):
            raise InputError(
                f"{name}: no usable {k.upper()} half-cycles in {sources} (one polarity only)"
            )
    segs, gmin, gmax, window, joint = _window(halves, pol, segs_mm, options, name)
    by_kind = {k: [s for s in segs if s.kind == k] for k in KINDS}
    # the paper's recipe is min-max per sweep, whatever window the card uses
    mm_by_kind = {k: [s for s in segs_mm if s.kind == k] for k in KINDS}
    first_starts = (
        {k: [joint.kernels[k]] for k in KINDS} if joint is not None else {k: [] for k in KINDS}
    )

    pooled: dict[str, dict[str, KernelFit]] = {"difference": {}, "trajectory": {}, "paper": {}}
    paper: dict[str, list[KernelFit]] = {}
    per_sweep: dict[str, list[KernelFit]] = {}
    comparison: dict[str, dict[str, KernelFit]] = {}
    for k in KINDS:
        pooled["difference"][k] = fit_method(by_kind[k], k, "difference")
        pooled["trajectory"][k] = fit_method(by_kind[k], k, "trajectory", starts=first_starts[k])
        paper[k] = [fit_paper(s) for s in mm_by_kind[k]]
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
    noise = _noise(segs, pooled["trajectory"], options, window["normalisation"])
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
        "normalise": window["normalisation"],
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
        "window": window,
    }
    fit_record = json_clean(fit_record)

    fit_record["noise"] = json_clean(
        {
            "model": "state-space (extended Kalman filter): read noise (additive and/or "
            "proportional to G, chosen by BIC), c2c shared by LTP and LTD, state wander "
            "(kept where BIC asks for it)",
            "read_noise_form": noise.read_form,
            "read_noise": noise.read_noise,
            "read_noise_stderr": noise.read_noise_stderr,
            "read_noise_g": noise.read_noise_g,
            "read_noise_g_stderr": noise.read_noise_g_stderr,
            "state_wander_kept": noise.wander_kept,
            "c2c_wander_correlation": noise.c2c_wander_correlation,
            "c2c_wander_identified": (
                None
                if noise.c2c_wander_correlation is None
                else abs(noise.c2c_wander_correlation) < C2C_WANDER_MAX_CORR
            ),
            "candidates": list(noise.candidates),
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
        window=fit_record["window"],
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
    segs: list[Segment],
    trajectory: dict[str, KernelFit],
    options: CalibrationOptions,
    normalisation: str,
) -> NoiseEstimate:
    """Read noise and cycle-to-cycle spread from the state-space model (:mod:`.noise`).

    With a fitted or given window the card's trajectory kernels are used as they are. With
    min-max windows the segments are renormalised to the extremes of their moving average
    first (min-max puts the noisiest reads at the bounds), and the kernels refitted there.
    """
    if normalisation in ("fitted", "given"):
        return estimate_noise(segs, {k: trajectory[k].kernel() for k in KINDS}, shared_c2c=True)
    smooth = smooth_normalised(segs, per_sweep=normalisation == "sweep")
    kernels = {}
    for k in KINDS:
        mine = [s for s in smooth if s.kind == k]
        try:
            kernels[k] = fit_trajectory(mine, k, starts=[trajectory[k].params]).kernel()
        except (InputError, ValueError):
            kernels[k] = trajectory[k].kernel()
    return estimate_noise(smooth, kernels, shared_c2c=True)


def _start_kernels(segs: list[Segment]) -> dict[str, dict[str, float]]:
    """Difference-fit kernels of each kind (the paper's start where that fit fails)."""
    out = {}
    for k in KINDS:
        try:
            out[k] = fit_difference([s for s in segs if s.kind == k], k).params
        except (InputError, ValueError):
            out[k] = dict(zip(("a", "alpha", "beta"), PAPER_START, strict=True))
    return out


def _window(
    halves: list[tuple[int, HalfCycle]],
    pol: int,
    segs_mm: list[Segment],
    options: CalibrationOptions,
    name: str,
) -> tuple[list[Segment], float, float, dict[str, Any], JointFit | None]:
    """The segments in the window the card uses, that window (S), its record, and the joint
    fit of kernels and window when the fitted window is used (else None).

    ``options.normalise`` 'auto' fits the window (:func:`~.window.fit_window`) and the
    kernels with min-max per-sweep windows on the same reads, and keeps the fitted window
    when :func:`~.window.choose_window` says so.
    """
    allg = np.concatenate([h.states_s() for _, h in halves])
    measured_range = [float(allg.min()), float(allg.max())]
    seen = saturation_seen(segs_mm)
    sat = {edge: v["seen"] for edge, v in seen.items()}
    rec: dict[str, Any] = {
        "requested": options.normalise,
        "measured_range_s": measured_range,
        "saturation_seen": sat,
        "saturation_step_ratio": {edge: v["ratio"] for edge, v in seen.items()},
    }
    given = options.g_min_s is not None or options.g_max_s is not None
    if given or options.normalise in ("sweep", "global"):
        norm = "sweep" if options.normalise == "sweep" else "global"
        segs, gmin, gmax = build_segments(
            halves, pol, normalise=norm, g_min_s=options.g_min_s, g_max_s=options.g_max_s
        )
        both = options.g_min_s is not None and options.g_max_s is not None
        if both:
            norm, reason, status = "given", "given by the user (--g-min/--g-max)", "given"
        else:
            reason = (
                "min-max of each sweep's reads, as requested"
                if norm == "sweep"
                else "min-max of all reads, as requested"
                + (" (one edge given by the user)" if given else "")
            )
            status = "measured" if all(sat.values()) else "measured range"
        rec.update(normalisation=norm, reason=reason, status=status)
        rec.update(g_min_s=gmin, g_max_s=gmax)
        return segs, gmin, gmax, rec, None

    fixed = {s.sweep: (s.g_min_s, s.g_max_s) for s in segs_mm}
    minmax = fit_joint(segs_mm, _start_kernels(segs_mm), window="fixed", fixed=fixed)
    fitted = fit_window(segs_mm, minmax.kernels)
    if options.normalise == "fitted":
        use = "fitted"
        reason = "fitted window, as requested"
        if not fitted.identified:
            reason += " (not identified by the data: treat it as a guess)"
            warnings.warn(
                f"{name}: the fitted conductance window is not identified by the data "
                f"({', '.join(fitted.at_bound) or 'its width is undetermined'}); the card "
                "keeps it as requested (try --normalise auto or sweep)",
                stacklevel=3,
            )
    else:
        use, why = choose_window(fitted, minmax)
        reason = f"auto: {why}"
    rec.update(fitted=fitted.summary(), minmax=minmax.summary())
    if use == "fitted":
        segs, _, _ = build_segments(halves, pol, normalise="fitted", windows=fitted.windows)
        gmin, gmax = fitted.g_min_s, fitted.g_max_s
        status = "measured" if all(sat.values()) else "extrapolated"
        if status == "extrapolated":
            rec["extrapolated_edges"] = [e for e, v in sat.items() if not v]
        rec.update(
            normalisation="fitted",
            reason=reason,
            status=status,
            g_min_s=gmin,
            g_max_s=gmax,
            drift_per_sweep_s=list(fitted.drift_s),
        )
        return segs, gmin, gmax, rec, fitted
    rec.update(
        normalisation="sweep",
        reason=reason,
        status="measured" if all(sat.values()) else "measured range",
        g_min_s=measured_range[0],
        g_max_s=measured_range[1],
    )
    return segs_mm, measured_range[0], measured_range[1], rec, None


def window_note(window: dict[str, Any], edge: str) -> str:
    """Source note of the card's ``g_min_s``/``g_max_s`` (``edge`` 'g_min' or 'g_max')."""
    norm = window.get("normalisation")
    seen = (window.get("saturation_seen") or {}).get(edge)
    if norm == "fitted":
        how = (
            "measured (the device saturates there)"
            if seen
            else "extrapolated (no saturation seen: set by the kernel's shape)"
        )
        return f"fitted window shared by LTP and LTD; {edge.replace('_', '')} {how}"
    if norm in ("sweep", "global"):
        note = "min-max of the reads" + (" (per sweep in the fits)" if norm == "sweep" else "")
        if seen is False:
            note += "; the device did not saturate there, so the true window is wider"
        return note
    return "given by the user"


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
        src[g] = (
            FieldSource(origin="user", note="--g-min/--g-max")
            if given
            else measured(files, window_note(dut.window, g[:-2]))
        )
    c2c_note = "state-space model, one figure for LTP and LTD"
    if not noise.wander_kept:
        c2c_note += "; no state wander (BIC)"
    elif noise.c2c_wander_correlation is not None and (
        abs(noise.c2c_wander_correlation) >= C2C_WANDER_MAX_CORR
    ):
        c2c_note += (
            f"; traded against the state wander (correlation "
            f"{noise.c2c_wander_correlation:+.2f}): not separately identified"
        )
    for f in ("rsd_c2c_ltp", "rsd_c2c_ltd"):
        src[f"variability.{f}"] = measured(files, c2c_note)
    form_note = f"state-space model, read-noise form '{noise.read_form}' chosen by BIC"
    for f in ("read_noise_rsd", "read_noise_g_rsd"):
        src[f"variability.{f}"] = measured(files, form_note)
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
            f"{dut.window.get('normalisation')} window ({dut.window.get('status')})"
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
            read_noise_rsd=_nonneg(noise.read_noise) if noise.read_form != "proportional" else 0.0,
            read_noise_stderr=noise.read_noise_stderr,
            read_noise_g_rsd=_nonneg(noise.read_noise_g),
            read_noise_g_stderr=noise.read_noise_g_stderr,
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
