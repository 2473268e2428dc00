"""A device card's fit as plain text, in the manner of lmfit's ``ModelResult.fit_report()``.

:func:`card_fit_report` needs only the card (its ``fit`` record holds the statistics), so
it serves a card loaded from disk as well as one just calibrated
(:meth:`DeviceCard.fit_report`, :meth:`CalibrationResult.fit_report`, ``ferrocim devices
show``). Sections: ``[[Card]]``, ``[[Fit Statistics]]``, ``[[Variables]]`` (value ± 1-sigma
error, relative error, bounds, at-bound mark), ``[[Correlations]]``, ``[[Noise]]``,
``[[Flags]]`` (:func:`ferrocim.calibration.quality.fit_flags`) and ``[[Sources]]``.
Units: conductances in S, widths in s, kernel parameters and spreads dimensionless.
"""

from __future__ import annotations

import math
from typing import Any

#: Correlations of the fitted parameters at or above this |value| are listed (lmfit's 0.1).
MIN_CORREL = 0.1


def _num(x: Any, spec: str = ".6g") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return format(v, spec) if math.isfinite(v) else "–"


def _pm(value: Any, err: Any) -> str:
    """``0.0518 +/- 0.00263 (5.07%)`` (lmfit's layout); the value alone without an error."""
    text = _num(value)
    try:
        v, e = float(value), float(err)
    except (TypeError, ValueError):
        return f"{text} (no error estimate)"
    rel = f" ({abs(e / v) * 100:.2f}%)" if v else ""
    return f"{text} +/- {_num(e, '.3g')}{rel}"


def _bounds(model: str, kind: str) -> dict[str, tuple[float | None, float | None]]:
    """Bounds of each parameter of the card's step model (from its lmfit parameter hints)."""
    from ferrocim.calibration.models import make_model

    try:
        hints = make_model(model, kind)[0].param_hints
    except ValueError:
        return {}
    return {k: (h.get("min"), h.get("max")) for k, h in hints.items()}


def card_fit_report(card: Any) -> str:
    """The text report of a :class:`~ferrocim.calibration.card.DeviceCard` (module doc)."""
    from ferrocim.calibration.quality import (
        MIN_SHAPE_EXPONENT,
        POOR_R2_DW,
        POOR_R2_TRAJECTORY,
        fit_flags,
    )

    fit = card.fit or {}
    window = fit.get("window") or {}
    lines = ["[[Card]]", f"    name:               {card.name}"]
    if card.description:
        lines.append(f"    description:        {card.description}")
    lines += [
        f"    conductance window: {_num(card.g_min_s, '.4g')} S - {_num(card.g_max_s, '.4g')} S"
        + (f" ({window.get('normalisation')}, {window.get('status')})" if window else ""),
        f"    pulse width:        {_num(card.pulse.width_s, '.4g')} s "
        f"({card.source('pulse.width_s').origin})",
        f"    symmetry point W*:  {_pm(card.symmetry_point, card.symmetry_point_stderr)}",
    ]
    lines.append("[[Fit Statistics]]")
    if not fit:
        lines.append("    (no fit record: a preset or hand-made card)")
    else:
        pooled = (fit.get("pooled") or {}).get(fit.get("method"), {})
        lines += [
            f"    method:             {fit.get('method')} fit of the {fit.get('model')} model, "
            f"normalisation {fit.get('normalise')}",
            f"    # sweeps:           {fit.get('n_sweeps')}",
        ]
        for kind in ("ltp", "ltd"):
            k = kind.upper()
            f = pooled.get(kind) or {}
            lines += [
                f"    {k} # data points:  {f.get('n_points', '–')}  # variables: "
                f"{f.get('n_varied', '–')}  # half-cycles: "
                f"{(fit.get('n_half_cycles') or {}).get(kind, '–')}",
                f"    {k} R² trajectory:  {_num((fit.get('r2_w') or {}).get(kind), '.4f')}  "
                f"R² dW: {_num((fit.get('r2_dw') or {}).get(kind), '.4f')}  RMSE W: "
                f"{_num(f.get('rmse_w'), '.4g')}",
                f"    {k} reduced chi²:   {_num(f.get('redchi'), '.4g')}  AIC: "
                f"{_num(f.get('aic'), '.2f')}  BIC: {_num(f.get('bic'), '.2f')}",
            ]
            best = ((fit.get("model_comparison") or {}).get(kind) or {}).get("best")
            if best:
                lines.append(f"    {k} lowest-AIC model: {best}")
    lines.append("[[Variables]]")
    model = str(fit.get("model") or "beta")
    for kind in ("ltp", "ltd"):
        params = getattr(card, kind)
        bounds = _bounds(model, kind) if fit else {}  # a preset was not fitted here
        for p in ("a", "alpha", "beta"):
            value = _pm(getattr(params, p), getattr(params, f"{p}_stderr"))
            lo, hi = bounds.get(p, (None, None))
            where = f"  bounds [{_num(lo, 'g')}, {_num(hi, 'g')}]" if p in bounds else ""
            mark = "  (at bound)" if p in params.at_bound else ""
            lines.append(f"    {kind}.{p + ':':7} {value}{where}{mark}")
    correl = []
    pooled = (fit.get("pooled") or {}).get(fit.get("method"), {}) if fit else {}
    for kind in ("ltp", "ltd"):
        for pair, c in ((pooled.get(kind) or {}).get("correl") or {}).items():
            if c is not None and abs(c) >= MIN_CORREL:
                names = pair.replace(":", f", {kind}.")
                correl.append((abs(c), f"    C({kind}.{names}) = {c:+.4f}"))
    if correl:
        lines.append(f"[[Correlations]] (unreported correlations are < {MIN_CORREL})")
        lines += [t for _, t in sorted(correl, reverse=True)]
    v = card.variability
    noise = fit.get("noise") or {}
    lines += [
        "[[Noise]]",
        f"    read noise form:    {noise.get('read_noise_form', 'additive')}"
        + (" (chosen by BIC)" if noise else ""),
        f"    read noise:         {_pm(v.read_noise_rsd, v.read_noise_stderr)} of the window",
        f"    read noise of G:    {_pm(v.read_noise_g_rsd, v.read_noise_g_stderr)}",
        f"    c2c LTP / LTD:      {_pm(v.rsd_c2c_ltp, v.rsd_c2c_stderr)} / "
        f"{_num(v.rsd_c2c_ltd)} per step",
    ]
    if noise.get("state_wander") is not None:
        kept = "kept" if noise.get("state_wander_kept") else "dropped (BIC)"
        wander = _pm(noise.get("state_wander"), noise.get("state_wander_stderr"))
        lines.append(f"    state wander:       {wander} ({kept})")
    devices = (fit.get("d2d") or {}).get("devices")
    lines.append(
        f"    d2d LTP a/alpha/beta: {_num(v.a_ltp_dtod, '.3g')} / {_num(v.alpha_ltp_dtod, '.3g')}"
        f" / {_num(v.beta_ltp_dtod, '.3g')}; LTD {_num(v.a_ltd_dtod, '.3g')} / "
        f"{_num(v.alpha_ltd_dtod, '.3g')} / {_num(v.beta_ltd_dtod, '.3g')}"
        + (f" (over {', '.join(devices)})" if devices else " (no other device)")
    )
    if v.window_drift_per_cycle is not None:
        lines.append(f"    window drift:       {_num(v.window_drift_per_cycle, '.3g')} per sweep")
    flags = fit_flags(card)
    lines.append(
        f"[[Flags]] (R² dW < {POOR_R2_DW}, R² trajectory < {POOR_R2_TRAJECTORY}, "
        f"shape exponent < {MIN_SHAPE_EXPONENT:g})"
    )
    lines += [f"    POOR FIT: {f}" for f in flags] or ["    none"]
    lines.append("[[Sources]]")
    files = [str(f.get("path", "?")) for f in card.provenance.source_files]
    lines += [f"    file: {f}" for f in files] or ["    (no source files recorded)"]
    by_origin: dict[str, list[str]] = {}
    for name, src in card.provenance.fields.items():
        by_origin.setdefault(src.origin, []).append(name)
    for origin, names in by_origin.items():
        lines.append(f"    {origin}: {', '.join(names)}")
    if card.provenance.citation:
        lines.append(f"    citation: {card.provenance.citation}")
    return "\n".join(lines)


__all__ = ["MIN_CORREL", "card_fit_report"]
