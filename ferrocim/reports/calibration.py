"""The calibration report: one section per device card plus an overview of all devices.

:func:`add_calibration_section` needs only a :class:`DeviceCard` (its ``fit`` record holds
the quality numbers), so a training-run report can reuse it for the card it ran on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferrocim.calibration.card import DeviceCard
from ferrocim.reports import formatting as fmt
from ferrocim.reports.html import Report

_POLARITY = {1: "positive", -1: "negative"}


def _fmt(x: Any, err: Any = None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    s = f"{x:.4g}"
    return f"{s} ± {err:.2g}" if isinstance(err, float) and math.isfinite(err) else s


def _verdict(metric: str, better: str) -> str:
    """One clause on which fit method wins on ``metric`` (``better`` may be ``"tie"``)."""
    if better == "tie":
        return f"on the {metric} the difference and trajectory fits are equally good"
    return f"on the {metric} the {better} fit is better"


def recommend(result: Any) -> tuple[str, str] | None:
    """The card to use among every card the report covers
    (``CalibrationResult.recommended``), and why; ``None`` if none.

    A card drives a simulation pulse by pulse, so the card whose kernel reproduces its
    measured conductance trajectories best (mean trajectory R² of LTP and LTD) is the one
    whose simulated array behaves most like the measured device.
    """
    from ferrocim.calibration.pipeline import card_score

    choice = result.recommended()
    if choice is None:
        return None
    name = choice[0]
    cards = {n: c for n, c, _ in result.cards()}
    best = cards[name]
    r2 = best.fit.get("r2_w") or {}
    why = (
        f"its fitted kernel reproduces the measured conductance trajectories best (R² "
        f"trajectory LTP {fmt.r2(r2.get('ltp'))}, LTD {fmt.r2(r2.get('ltd'))}, "
        f"mean {fmt.r2(card_score(best))}"
    )
    others = sorted(
        ((n, card_score(c)) for n, c in cards.items() if n != name and np.isfinite(card_score(c))),
        key=lambda t: t[1],
        reverse=True,
    )
    if others:
        why += f"; next best {others[0][0]} with mean {fmt.r2(others[0][1])}"
    return name, why + ")."


def card_parameter_table(card: DeviceCard) -> pd.DataFrame:
    """Kernel parameters ± 1-sigma errors of a card."""
    rows = []
    for kind in ("ltp", "ltd"):
        k = getattr(card, kind)
        rows.append(
            {
                "kind": kind.upper(),
                "A": _fmt(k.a, k.a_stderr),
                "alpha": _fmt(k.alpha, k.alpha_stderr),
                "beta": _fmt(k.beta, k.beta_stderr),
                "at bound": ", ".join(k.at_bound) or "–",
                "c2c": _fmt(
                    getattr(card.variability, f"rsd_c2c_{kind}"), card.variability.rsd_c2c_stderr
                ),
                "R² dW": (card.fit.get("r2_dw") or {}).get(kind),
                "R² trajectory": (card.fit.get("r2_w") or {}).get(kind),
            }
        )
    return pd.DataFrame(rows)


def _window_status(window: dict[str, Any]) -> str:
    """'fitted, extrapolated (g_max)' … from a card's ``fit['window']``."""
    if not window:
        return "–"
    out = f"{window.get('normalisation')}, {window.get('status')}"
    if window.get("extrapolated_edges"):
        out += f" ({', '.join(window['extrapolated_edges'])})"
    return out


def window_table(cards: list[DeviceCard]) -> pd.DataFrame:
    """Per device: which window the card uses and why, against the measured conductance
    range and the fitted window's uncertainty (``fit['window']`` of each card)."""
    rows = []
    for c in cards:
        w = c.fit.get("window") or {}
        rng = w.get("measured_range_s") or [None, None]
        fitted = w.get("fitted") or {}
        minmax = w.get("minmax") or {}
        seen = w.get("saturation_seen") or {}

        def yes(x: Any) -> str:
            return "–" if x is None else ("yes" if x else "no")

        rows.append(
            {
                "device": c.name,
                "window": _window_status(w),
                "Gmin (S)": c.g_min_s,
                "Gmax (S)": c.g_max_s,
                "measured min (S)": rng[0],
                "measured max (S)": rng[1],
                "saturates at Gmin": yes(seen.get("g_min")),
                "saturates at Gmax": yes(seen.get("g_max")),
                "fitted Gmin (S)": _fmt(fitted.get("g_min_s"), fitted.get("g_min_stderr")),
                "fitted Gmax (S)": _fmt(fitted.get("g_max_s"), fitted.get("g_max_stderr")),
                "RSS fitted / min-max": (
                    f"{fitted['rss_range_units']:.3g} / {minmax['rss_range_units']:.3g}"
                    if fitted and minmax
                    else "–"
                ),
                "why": w.get("reason", "–"),
            }
        )
    return pd.DataFrame(rows)


def noise_table(cards: list[DeviceCard]) -> pd.DataFrame:
    """Per device: read noise (its form chosen by BIC) and cycle-to-cycle spread ± 1 sigma
    (state-space model), and the single-step residual spread that mixes both."""
    rows = []
    for c in cards:
        v = c.variability
        noise = c.fit.get("noise") or {}
        old = noise.get("step_residual_rsd") or {}
        corr = noise.get("c2c_wander_correlation")
        rows.append(
            {
                "device": c.name,
                "read-noise form": noise.get("read_noise_form", "additive"),
                "read noise (window)": _fmt(v.read_noise_rsd, v.read_noise_stderr),
                "read noise (of G)": _fmt(v.read_noise_g_rsd, v.read_noise_g_stderr),
                "c2c (per step)": _fmt(v.rsd_c2c_ltp, v.rsd_c2c_stderr),
                "state wander (window)": _fmt(
                    (c.fit.get("noise") or {}).get("state_wander"),
                    (c.fit.get("noise") or {}).get("state_wander_stderr"),
                ),
                "wander kept": "–"
                if noise.get("state_wander_kept") is None
                else ("yes" if noise["state_wander_kept"] else "no (BIC)"),
                "c2c-wander corr.": _fmt(corr),
                "step residual LTP": _fmt(old.get("ltp")),
                "step residual LTD": _fmt(old.get("ltd")),
                "source": c.source("variability.read_noise_rsd").origin,
            }
        )
    return pd.DataFrame(rows)


def provenance_table(card: DeviceCard) -> pd.DataFrame:
    """Where the card's fields came from (measured / assumed / user), one row per source:
    fields with the same origin, files (or reference) and note share a row."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for name, src in card.provenance.fields.items():
        key = (
            src.origin,
            ", ".join(src.files) if src.files else (src.reference or ""),
            src.note or "",
        )
        groups.setdefault(key, []).append(name)
    rows = [
        {"fields": ", ".join(names), "origin": origin, "from": where, "note": note}
        for (origin, where, note), names in groups.items()
    ]
    return pd.DataFrame(rows, columns=["fields", "origin", "from", "note"])


def model_comparison_table(card: DeviceCard) -> pd.DataFrame | None:
    """ΔAIC, Akaike weight and R² of each step model (same dW data), per kind."""
    comp = card.fit.get("model_comparison")
    if not comp:
        return None
    rows = []
    for kind, rec in comp.items():
        for model, m in rec["models"].items():
            rows.append(
                {
                    "kind": kind.upper(),
                    "model": model,
                    "params": m["n_varied"],
                    "ΔAIC": m["delta_aic"],
                    "Akaike weight": m["akaike_weight"],
                    "R² dW": m["r2_dw"],
                    "R² trajectory": m["r2_w"],
                    "best": "yes" if model == rec["best"] else "",
                }
            )
    return pd.DataFrame(rows)


def method_table(card: DeviceCard) -> pd.DataFrame | None:
    """Fit quality of each method on both metrics (pooled fits; paper = median per sweep)."""
    pooled = card.fit.get("pooled")
    if not pooled:
        return None
    rows = []
    for method, by_kind in pooled.items():
        for kind, f in by_kind.items():
            r2dw = f["r2_dw"]
            if method == "paper":
                r2dw = card.fit["paper_recipe"][kind]["median_r2_dw"]
            rows.append(
                {
                    "method": method,
                    "kind": kind.upper(),
                    "A": _fmt(f["a"], f.get("a_stderr")),
                    "alpha": _fmt(f["alpha"], f.get("alpha_stderr")),
                    "beta": _fmt(f["beta"], f.get("beta_stderr")),
                    "R² dW": r2dw,
                    "R² trajectory": f["r2_w"],
                    "RMSE W": f["rmse_w"],
                }
            )
    return pd.DataFrame(rows)


def _d2d_words(card: DeviceCard) -> str:
    """The card's device-to-device spreads in words (for a report that has no overview)."""
    var = card.variability
    return (
        f"d2d LTP A {var.a_ltp_dtod:.3g}, alpha {var.alpha_ltp_dtod:.3g}, beta "
        f"{var.beta_ltp_dtod:.3g}; LTD A {var.a_ltd_dtod:.3g}, alpha {var.alpha_ltd_dtod:.3g}, "
        f"beta {var.beta_ltd_dtod:.3g}"
    )


def _d2d_reference(card: DeviceCard) -> str:
    """Where a device section of the calibration report points for the d2d spreads."""
    devices = ((card.fit or {}).get("d2d") or {}).get("devices")
    if not devices:
        return "no device-to-device spread (no other device at this pulse width in its run)"
    return (
        f"device-to-device spreads over {', '.join(devices)}: see 'Device-to-device spread' "
        "in the overview"
    )


def add_calibration_section(
    report: Report,
    card: DeviceCard,
    *,
    section: str | None = None,
    figure: Any = None,
    d2d_in_overview: bool = False,
    note: str | None = None,
) -> None:
    """Add one card's calibration (parameters, window, variability, fit quality) to ``report``.

    ``figure`` (a matplotlib figure or PNG bytes) is added when given. Works for presets
    too (then only the parameters are known). ``d2d_in_overview``: the report shows the
    device-to-device spreads once, in its overview, and the section points there instead
    of repeating them. ``note``: a first line (e.g. that the card was kept from an earlier
    calibration). Poor fits (:func:`ferrocim.calibration.quality.fit_flags`) are flagged.
    """
    from ferrocim.calibration.quality import fit_flags

    sec = section or f"Device {card.name}"
    w_star = _fmt(card.symmetry_point, card.symmetry_point_stderr)
    lines = [
        *([note] if note else []),
        f"{card.description}",
        f"Conductance window {fmt.quantity(card.g_min_s, 'conductance')} – "
        f"{fmt.quantity(card.g_max_s, 'conductance')}; symmetry point "
        f"W* = {w_star}; pulse width {fmt.quantity(card.pulse.width_s, 'time')}; LTP polarity "
        f"{_POLARITY.get(card.pulse.ltp_polarity, 'unknown')}.",
    ]
    fit = card.fit
    if fit:
        lines.append(
            f"Card parameters from the {fit.get('method')} fit with {fit.get('normalise')} "
            f"normalisation over {fit.get('n_sweeps')} sweep(s)."
        )
        window = fit.get("window") or {}
        if window:
            rng = window.get("measured_range_s") or [None, None]
            lines.append(
                f"Conductance window: {_window_status(window)}; "
                f"{fmt.quantity(card.g_min_s, 'conductance')} – "
                f"{fmt.quantity(card.g_max_s, 'conductance')} against a measured range of "
                f"{fmt.quantity(rng[0], 'conductance')} – "
                f"{fmt.quantity(rng[1], 'conductance')} "
                f"({window.get('reason', '')})."
            )
        noise = fit.get("noise") or {}
        if noise.get("read_noise_form"):
            lines.append(
                f"Read noise: {noise['read_noise_form']} form (chosen by BIC among additive, "
                "proportional to G and both); state wander "
                + ("kept." if noise.get("state_wander_kept") else "dropped (BIC).")
            )
        better = fit.get("better_method", {})
        for kind, b in better.items():
            lines.append(
                f"{kind.upper()}: {_verdict('dW metric', b['on_dw_metric'])}; "
                f"{_verdict('conductance trajectory', b['on_trajectory_metric'])}."
            )
        for kind, rec in (fit.get("model_comparison") or {}).items():
            verdict = "beats" if rec["amplitude_aware_beats_identical_pulse"] else "does not beat"
            lines.append(
                f"{kind.upper()}: lowest AIC for the {rec['best']} model; the amplitude-aware "
                f"kernel {verdict} the identical-pulse Beta kernel."
            )
    var = card.variability
    lines.append(
        f"Variability: read noise {_fmt(var.read_noise_rsd, var.read_noise_stderr)} of the "
        f"window; cycle-to-cycle LTP {_fmt(var.rsd_c2c_ltp, var.rsd_c2c_stderr)}, LTD "
        f"{_fmt(var.rsd_c2c_ltd, var.rsd_c2c_stderr)} per step; "
        f"{_d2d_reference(card) if d2d_in_overview else _d2d_words(card)}; "
        f"window drift per sweep {_fmt(var.window_drift_per_cycle)}."
    )
    for flag in fit_flags(card):
        lines.append(f"POOR FIT: {flag}.")
    for kind in ("ltp", "ltd"):
        for label, rec in (
            ("", getattr(card, kind)),
            (" amplitude-aware", getattr(card, f"{kind}_amplitude")),
        ):
            if rec is not None and rec.at_bound:
                lines.append(
                    f"WARNING: the {kind.upper()}{label} fit of {card.name} ends on a parameter "
                    f"bound ({', '.join(rec.at_bound)}); treat these parameters as a limit, not "
                    "a measurement."
                )
    assumed_fields = [f for f, s in card.provenance.fields.items() if s.origin == "assumed"]
    if assumed_fields:
        lines.append(f"Assumed (not measured): {', '.join(assumed_fields)}.")
    report.add_text("Summary", "\n\n".join(lines), section=sec)
    report.add_table("Kernel parameters", card_parameter_table(card), section=sec)
    mt = method_table(card)
    if mt is not None:
        report.add_table(
            "Methods",
            mt,
            section=sec,
            caption="R² dW: consecutive-step metric (paper: median over sweeps); "
            "R² trajectory: states integrated pulse by pulse from each sweep's start.",
        )
    ct = model_comparison_table(card)
    if ct is not None:
        report.add_table("Model comparison (AIC)", ct, section=sec)
    report.add_table("Field sources", provenance_table(card), section=sec)
    if figure is not None:
        report.add_figure(f"Fits of {card.name}", figure, section=sec, png_name=f"{card.name}.png")


def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]…`` or None where a level is missing (cards of older runs)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def overview_table(result: Any) -> pd.DataFrame:
    """One row per card covered: this run's devices, then cards kept from an earlier
    calibration into the same folder (column ``calibrated`` when there are any)."""
    from ferrocim.calibration.quality import fit_flags

    files = {d.name: len(d.files) for d in result.duts}
    kept = {k.name for k in getattr(result, "kept", [])}
    rows = []
    for name, c, _ in result.cards():
        f = c.fit or {}
        row = {
            "device": name,
            "files": files.get(name, len(c.provenance.source_files)),
            "sweeps": f.get("n_sweeps"),
            "width (s)": c.pulse.width_s,
            "Gmin (S)": c.g_min_s,
            "Gmax (S)": c.g_max_s,
            "window": _window_status(f.get("window") or {}),
            "read-noise form": (f.get("noise") or {}).get("read_noise_form", "–"),
            "A LTP": c.ltp.a,
            "α LTP": c.ltp.alpha,
            "β LTP": c.ltp.beta,
            "A LTD": c.ltd.a,
            "α LTD": c.ltd.alpha,
            "β LTD": c.ltd.beta,
            "at bound": ", ".join(
                f"{k.upper()} {p}" for k in ("ltp", "ltd") for p in getattr(c, k).at_bound
            )
            or "–",
            "W*": _fmt(c.symmetry_point, c.symmetry_point_stderr),
            "R² traj LTP": _get(f, "r2_w", "ltp"),
            "R² traj LTD": _get(f, "r2_w", "ltd"),
            "R² dW LTP": _get(f, "r2_dw", "ltp"),
            "R² dW LTD": _get(f, "r2_dw", "ltd"),
            "paper R² dW LTP": _get(f, "paper_recipe", "ltp", "median_r2_dw"),
            "paper R² dW LTD": _get(f, "paper_recipe", "ltd", "median_r2_dw"),
            "best model LTP": _get(f, "model_comparison", "ltp", "best"),
            "best model LTD": _get(f, "model_comparison", "ltd", "best"),
            "fit flags": len(fit_flags(c)) or "–",
        }
        if kept:
            row["calibrated"] = "earlier (kept)" if name in kept else "this run"
        rows.append(row)
    return pd.DataFrame(rows)


def r2_summary(result: Any) -> pd.DataFrame:
    """Median R² over all half-cycles of all devices, per method, dW and trajectory metric.

    ``paper``: the paper's recipe per sweep; ``difference``/``trajectory``: the pooled fit of
    each device evaluated on each of its half-cycles; ``amplitude-aware``: pooled
    amplitude-aware kernel, same evaluation.
    """
    from ferrocim.calibration.fitting import evaluate

    acc: dict[tuple[str, str, str], list[float]] = {}
    for d in result.duts:
        for kind in ("ltp", "ltd"):
            segs = [s for s in d.segments if s.kind == kind]
            for f in d.paper[kind]:
                acc.setdefault(("paper (per sweep)", kind, "dw"), []).append(f.r2_dw)
                acc.setdefault(("paper (per sweep)", kind, "w"), []).append(f.r2_w)
            fits = {
                "difference (pooled)": d.pooled["difference"][kind],
                "trajectory (pooled)": d.pooled["trajectory"][kind],
                "amplitude-aware (pooled)": d.comparison[kind]["amplitude_beta"],
            }
            for name, fit in fits.items():
                for s in segs:
                    ev = evaluate([s], fit.params, fit.model)
                    acc.setdefault((name, kind, "dw"), []).append(ev["r2_dw"])
                    acc.setdefault((name, kind, "w"), []).append(ev["r2_w"])
    rows = []
    for name in dict.fromkeys(k[0] for k in acc):
        row: dict[str, Any] = {"method": name}
        for kind in ("ltp", "ltd"):
            for metric in ("dw", "w"):
                vals = [v for v in acc.get((name, kind, metric), []) if np.isfinite(v)]
                label = "dW" if metric == "dw" else "trajectory"
                row[f"{kind.upper()} R² {label}"] = float(np.median(vals)) if vals else None
        row["half-cycles"] = len(acc.get((name, "ltp", "dw"), [])) + len(
            acc.get((name, "ltd", "dw"), [])
        )
        rows.append(row)
    return pd.DataFrame(rows)


def build_calibration_report(result: Any, *, plots: bool = True) -> tuple[Report, dict[str, Any]]:
    """The report of a :class:`~ferrocim.calibration.pipeline.CalibrationResult`.

    Returns the report and the per-device figures (name → :class:`FigureImages`).
    """
    from ferrocim.calibration.quality import (
        MIN_SHAPE_EXPONENT,
        POOR_R2_DW,
        POOR_R2_TRAJECTORY,
        fit_flags,
    )
    from ferrocim.reports.calibration_plots import (
        plot_conductance_vs_pulse,
        plot_conductance_vs_voltage,
        plot_device,
        plot_r2_overview,
    )
    from ferrocim.reports.html import render_figure

    kept = list(getattr(result, "kept", []))
    cards = result.cards()
    subtitle = f"{len(result.duts)} device(s) calibrated, {len(result.failures)} failure(s)"
    if kept:
        subtitle += f", {len(kept)} card(s) kept from an earlier calibration"
    rep = Report(title="ferrocim calibration", subtitle=subtitle)
    rep.add_headline("devices calibrated", fmt.count(len(result.duts)))
    if kept:
        rep.add_headline("cards kept", fmt.count(len(kept)))
    rep.add_headline("failures", fmt.count(len(result.failures)))
    if getattr(result, "merge_note", None):
        rep.add_text("Merged with an earlier calibration", result.merge_note, section="Overview")
    choice = recommend(result)
    if choice is not None:
        name, why = choice
        card_path = next(p for n, _, p in cards if n == name)
        best = next(c for n, c, _ in cards if n == name)
        r2 = best.fit.get("r2_w") or {}
        rep.add_headline("recommended card", name)
        rep.add_headline(
            "its R² trajectory LTP / LTD", f"{fmt.r2(r2.get('ltp'))} / {fmt.r2(r2.get('ltd'))}"
        )
        rep.add_text(
            "Recommended card",
            f"Use {name} ({card_path}): {why}\n\n"
            f"Train on it with `ferrocim train device --card {card_path}`.",
            section="Overview",
        )
    elif not cards:
        rep.add_warning("No device could be calibrated; see the failures below.")
    flags = [f for _, c, _ in cards for f in fit_flags(c)]
    if flags:
        rep.add_warning(
            f"{len(flags)} poor-fit flag(s): " + "; ".join(flags) + f". Thresholds: R² dW < "
            f"{POOR_R2_DW}, R² trajectory < {POOR_R2_TRAJECTORY}, shape exponent < "
            f"{MIN_SHAPE_EXPONENT:g} (ferrocim.calibration.quality)."
        )
    if cards:
        rep.add_table("Devices", overview_table(result), section="Overview")
    if result.duts:
        summ = r2_summary(result)
        rep.add_table(
            "Median R² over half-cycles",
            summ,
            section="Overview",
            caption="dW: consecutive-step metric; trajectory: states integrated pulse by "
            "pulse. The paper reports R² 0.98 (LTP) / 0.92 (LTD) for its own FTJ with its recipe."
            + (" This run's devices only (kept cards hold no half-cycles)." if kept else ""),
        )
        if plots:
            rows = [
                {"method": r["method"], "ltp": r["LTP R² dW"], "ltd": r["LTD R² dW"]}
                for r in summ.to_dict(orient="records")
            ]
            rep.add_figure("Median R² (dW metric)", plot_r2_overview(rows), section="Overview")
    if cards:
        rep.add_table(
            "Conductance window",
            window_table([c for _, c, _ in cards]),
            section="Overview",
            caption="Which window each card uses: fitted with the kernels (one window for LTP "
            "and LTD) or min-max of each sweep's reads; 'measured' where the device saturates "
            "at both edges, 'extrapolated' where an edge comes from the kernel's shape, "
            "'measured range' for min-max without saturation. The fitted window's 1-sigma "
            "errors and its residual sum of squares against min-max (units of the measured "
            "range, same reads) are what --normalise auto decided on.",
        )
        rep.add_table(
            "Read noise and cycle-to-cycle spread",
            noise_table([c for _, c, _ in cards]),
            section="Overview",
            caption="State-space model (extended Kalman filter) of each device's half-cycles: "
            "read noise is the s.d. of one read as a fraction of the conductance window "
            "and/or of the conductance read (form chosen by BIC); "
            "cycle-to-cycle the relative s.d. of one step; state wander a per-pulse random "
            "walk of the state that does not scale with the step (not simulated by the "
            "crossbar); all ± 1 sigma. 'Step residual' is the "
            "single-step spread around the kernel that mixes both (the figure cards carried "
            "before schema version 2).",
        )
    if not result.d2d.empty:
        rep.add_table(
            "Device-to-device spread",
            result.d2d,
            section="Overview",
            caption="Relative s.d. across the devices measured at the same pulse width (shown "
            "once here; each card carries the spreads of its width group).",
        )
    if result.failures:
        rep.add_table(
            "Failures",
            pd.DataFrame(result.failures, columns=["input", "message"]),
            section="Overview",
        )
    if result.skipped:
        rep.add_table(
            "Skipped files",
            pd.DataFrame(
                [(_relative(result, p), why) for p, why in result.skipped],
                columns=["file", "reason"],
            ),
            section="Overview",
            caption="Paths relative to the input folder they were found in.",
        )
    if result.warnings:
        rep.add_text("Warnings", "\n\n".join(result.warnings), section="Overview")
    images: dict[str, Any] = {}
    for d in result.duts:
        fig = None
        if plots:
            images[d.name] = fig = render_figure(plot_device(d))
        add_calibration_section(rep, d.card, figure=fig, d2d_in_overview=True)
        if plots:
            sec = f"Device {d.card.name}"
            images[f"{d.name}_g_vs_pulse"] = g_pulse = render_figure(plot_conductance_vs_pulse(d))
            rep.add_figure(
                "Conductance and write amplitude vs pulse number",
                g_pulse,
                section=sec,
                png_name=f"{d.name}_g_vs_pulse.png",
            )
            images[f"{d.name}_g_vs_v"] = g_v = render_figure(plot_conductance_vs_voltage(d))
            rep.add_figure(
                "Conductance vs write amplitude, per sweep",
                g_v,
                section=sec,
                png_name=f"{d.name}_g_vs_v.png",
            )
    for k in kept:
        png = result.out_dir / "plots" / f"{k.name}.png"
        created = k.card.provenance.created or "an earlier run"
        add_calibration_section(
            rep,
            k.card,
            section=f"Device {k.name}",
            figure=png.read_bytes() if plots and png.is_file() else None,
            d2d_in_overview=True,
            note=f"Kept from an earlier calibration into this folder ({k.path}, created "
            f"{created}): from its card only, without per-sweep fits"
            + (" (figure from that run)." if plots and png.is_file() else "."),
        )
    return rep, images


def _relative(result: Any, path: str) -> str:
    """``path`` relative to its input folder (``CalibrationResult.relative``)."""
    rel = getattr(result, "relative", None)
    return rel(path) if rel is not None else Path(path).name


def write_calibration_report(
    result: Any, out_dir: str | os.PathLike[str], *, plots: bool = True
) -> Path:
    """Write ``calibration.html`` and ``plots/<device>*.png`` (+ ``.svg``) under ``out_dir``."""
    from ferrocim.atomic import write_bytes
    from ferrocim.names import inside

    out = Path(out_dir)
    rep, images = build_calibration_report(result, plots=plots)
    for name, im in images.items():
        write_bytes(inside(out, "plots", f"{name}.png"), im.png)
        if im.svg is not None:
            write_bytes(inside(out, "plots", f"{name}.svg"), im.svg)
    return rep.save(out / "calibration.html")
