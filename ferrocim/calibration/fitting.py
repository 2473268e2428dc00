"""Fits of the step kernel to normalised half-cycles, by three methods.

- ``difference``: fit consecutive steps ``dW_k = W_{k+1} - W_k`` (sign-flipped for LTD)
  against the state ``W_k`` before the pulse — what the paper does; differencing doubles
  the read noise and correlates neighbouring points.
- ``trajectory``: integrate the kernel pulse by pulse from each half-cycle's measured start
  and fit the predicted states to the measured ones — what the crossbar simulates; it
  uses every read once.
- ``paper``: the paper's recipe — one sweep, min-max normalised, consecutive-dW fit with
  bounds a in [0, 1], alpha and beta in [0.1, 10], start (0.05, 2, 2).

Every result reports R² on the dW metric (``r2_dw``) and on the state trajectory
(``r2_w``) so the methods can be compared on the same footing; AIC/BIC compare models
fitted to the same data only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import lmfit
import numpy as np

from ferrocim.calibration.kernel import STATE_HIGH, STATE_LOW, beta_step, kernel_input
from ferrocim.calibration.models import (
    PAPER_START,
    amplitude_beta_step,
    make_model,
    pulse_amplitude,
)
from ferrocim.checks import InputError

METHODS = ("difference", "trajectory", "paper")
KINDS = ("ltp", "ltd")
#: Fewest pulse transitions a fit accepts (per half-cycle for per-sweep fits).
MIN_STEPS = 6
#: A trajectory fit from the first start with this R² skips the fallback starts.
GOOD_ENOUGH_R2 = 0.98
#: Most model evaluations one trajectory fit may spend per start.
MAX_NFEV = 2000


@dataclass(frozen=True)
class Segment:
    """One normalised half-cycle: states ``w`` (n+1 values), pulse amplitudes ``v`` (n, V)."""

    kind: str
    sweep: int
    source: str
    w: np.ndarray
    v: np.ndarray
    g_min_s: float
    g_max_s: float
    first_line: int = 0

    @property
    def direction(self) -> int:
        return +1 if self.kind == "ltp" else -1

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(state before each pulse, step in the kind's direction)."""
        return self.w[:-1], self.direction * np.diff(self.w)


@dataclass(frozen=True)
class KernelFit:
    """One fitted step model with its uncertainties and goodness of fit (dimensionless)."""

    kind: str
    method: str
    model: str
    params: dict[str, float]
    stderr: dict[str, float | None]
    correl: dict[str, float]
    covar_names: tuple[str, ...]
    covar: np.ndarray | None
    n_points: int
    n_varied: int
    r2: float
    r2_dw: float
    r2_w: float
    rmse_w: float
    redchi: float
    aic: float
    bic: float
    success: bool
    errorbars: bool
    message: str
    sweep: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def kernel(self) -> tuple[float, float, float]:
        """(a, alpha, beta)."""
        return (self.params["a"], self.params["alpha"], self.params["beta"])

    def summary(self) -> dict[str, Any]:
        """Flat JSON-friendly record (no covariance matrix)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "method": self.method,
            "model": self.model,
            "sweep": self.sweep,
            "n_points": self.n_points,
            "n_varied": self.n_varied,
            "r2": _finite(self.r2),
            "r2_dw": _finite(self.r2_dw),
            "r2_w": _finite(self.r2_w),
            "rmse_w": _finite(self.rmse_w),
            "redchi": _finite(self.redchi),
            "aic": _finite(self.aic),
            "bic": _finite(self.bic),
            "success": self.success,
            "errorbars": self.errorbars,
        }
        for k, v in self.params.items():
            out[k] = _finite(v)
            out[f"{k}_stderr"] = _finite(self.stderr.get(k))
        out["correl"] = {k: _finite(v) for k, v in self.correl.items()}
        return out


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


# ---- evaluation ----------------------------------------------------------------------
def predict_steps(w: np.ndarray, v: np.ndarray, params: dict[str, float], model: str) -> np.ndarray:
    """Predicted step magnitude at states ``w`` (before the pulse) and amplitudes ``v`` (V).

    The kernel is evaluated at the measured state itself (kept 1e-15 inside (0, 1) only so that
    fractional powers stay finite): a fit models what the device did, not the crossbar's
    programming clamp.
    """
    wc = kernel_input(w)
    if model == "amplitude_beta":
        return amplitude_beta_step(wc, v, **params)
    return beta_step(wc, params["a"], params["alpha"], params["beta"])


def integrate(
    segments: list[Segment],
    params: dict[str, float],
    model: str = "beta",
    *,
    starts: np.ndarray | None = None,
) -> list[np.ndarray]:
    """States predicted pulse by pulse from each segment's start.

    ``starts`` (one W per segment) defaults to the measured first state. The start and every
    state saturate at the edges of the window, [0, 1] (a device cannot leave its conductance
    range); the kernel is evaluated at the state itself. Returns one array of n+1 states per
    segment.
    """
    if not segments:
        return []
    m = len(segments)
    n = max(len(s.v) for s in segments)
    v = np.zeros((m, n))
    for i, s in enumerate(segments):
        v[i, : len(s.v)] = s.v
    dirs = np.array([s.direction for s in segments], dtype=float)
    w0 = np.array([s.w[0] for s in segments], dtype=float) if starts is None else starts
    w = np.clip(np.asarray(w0, dtype=float), STATE_LOW, STATE_HIGH)
    out = np.empty((m, n + 1))
    out[:, 0] = w
    if model == "amplitude_beta":
        a_k = pulse_amplitude(v, params["a"], params["v_th"], params["p"])
    else:
        a_k = np.full((m, n), params["a"])
    alpha, beta = params["alpha"], params["beta"]
    for k in range(n):
        step = beta_step(kernel_input(w), a_k[:, k], alpha, beta)
        w = np.clip(w + dirs * step, STATE_LOW, STATE_HIGH)
        out[:, k + 1] = w
    return [out[i, : len(s.w)] for i, s in enumerate(segments)]


#: A fitted start state begins this far inside the window: lmfit's bound transform has zero
#: slope at a bound, so a start placed exactly on 0 or 1 (a min-max normalised extreme)
#: would never move.
START_MARGIN = 1e-3


def _start_guess(w0: float) -> float:
    """Initial value of a fitted start state: the first read, kept ``START_MARGIN`` inside."""
    return float(np.clip(w0, STATE_LOW + START_MARGIN, STATE_HIGH - START_MARGIN))


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss = float(np.sum((y - np.mean(y)) ** 2))
    return float(1.0 - np.sum((y - yhat) ** 2) / ss) if ss > 0 else float("nan")


def best_starts(
    segments: list[Segment], params: dict[str, float], model: str = "beta"
) -> np.ndarray:
    """Start state of each segment that makes the integrated kernel fit best (params fixed).

    The first read is as noisy as any other, and near a bound the kernel's early steps
    depend strongly on it, so every method's trajectory is judged from its best starts.
    """
    y = [s.w[1:] for s in segments]

    def residual(p: lmfit.Parameters) -> np.ndarray:
        w0 = np.array([p[f"w0_{i}"].value for i in range(len(segments))])
        pred = integrate(segments, params, model, starts=w0)
        return np.concatenate([q[1:] - yi for q, yi in zip(pred, y, strict=True)])

    p = lmfit.Parameters()
    for i, seg in enumerate(segments):
        p.add(f"w0_{i}", value=_start_guess(seg.w[0]), min=STATE_LOW, max=STATE_HIGH)
    try:
        res = lmfit.minimize(residual, p, method="leastsq", max_nfev=200 * len(segments))
    except ValueError:
        return np.clip(np.array([s.w[0] for s in segments]), STATE_LOW, STATE_HIGH)
    return np.array([res.params[f"w0_{i}"].value for i in range(len(segments))])


def evaluate(
    segments: list[Segment], params: dict[str, float], model: str = "beta"
) -> dict[str, float]:
    """R² on the dW metric; R² and RMSE of the trajectory integrated from the best starts."""
    w_b = np.concatenate([s.steps()[0] for s in segments])
    dw = np.concatenate([s.steps()[1] for s in segments])
    v = np.concatenate([s.v for s in segments])
    r2_dw = _r2(dw, predict_steps(w_b, v, params, model))
    pred = integrate(segments, params, model, starts=best_starts(segments, params, model))
    y = np.concatenate([s.w[1:] for s in segments])
    yhat = np.concatenate([p[1:] for p in pred])
    return {
        "r2_dw": r2_dw,
        "r2_w": _r2(y, yhat),
        "rmse_w": float(np.sqrt(np.mean((y - yhat) ** 2))),
    }


# ---- fitting -------------------------------------------------------------------------
def _check_enough(segments: list[Segment], kind: str, what: str) -> None:
    n = sum(len(s.v) for s in segments)
    if not segments or n < MIN_STEPS:
        src = segments[0].source if segments else "<no data>"
        raise InputError(
            f"{src}: too few {kind.upper()} pulses to fit ({n} in {what}; need at least "
            f"{MIN_STEPS})"
        )


def _package(
    res: lmfit.model.ModelResult | lmfit.minimizer.MinimizerResult,
    segments: list[Segment],
    *,
    kind: str,
    method: str,
    model: str,
    r2: float,
    sweep: int | None,
) -> KernelFit:
    params = {k: float(p.value) for k, p in res.params.items() if not k.startswith("w0_")}
    starts = [float(p.value) for k, p in res.params.items() if k.startswith("w0_")]
    stderr = {
        k: (float(p.stderr) if p.stderr is not None and np.isfinite(p.stderr) else None)
        for k, p in res.params.items()
        if p.vary and k in params
    }
    correl: dict[str, float] = {}
    names = [k for k, p in res.params.items() if p.vary and k in params]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            c = (res.params[a].correl or {}).get(b)
            if c is not None:
                correl[f"{a}:{b}"] = float(c)
    ev = evaluate(segments, params, model)
    covar = getattr(res, "covar", None)
    var_names = list(getattr(res, "var_names", None) or names)
    if covar is not None:  # keep the kernel block (drop nuisance start states)
        idx = [var_names.index(k) for k in names if k in var_names]
        covar = np.asarray(covar)[np.ix_(idx, idx)]
        var_names = [var_names[i] for i in idx]
    return KernelFit(
        kind=kind,
        method=method,
        model=model,
        params=params,
        stderr=stderr,
        correl=correl,
        covar_names=tuple(var_names),
        covar=None if covar is None else np.array(covar, dtype=float),
        n_points=int(res.ndata),
        n_varied=int(res.nvarys),
        r2=r2,
        r2_dw=ev["r2_dw"],
        r2_w=ev["r2_w"],
        rmse_w=ev["rmse_w"],
        redchi=float(res.redchi),
        aic=float(res.aic),
        bic=float(res.bic),
        success=bool(res.success),
        errorbars=bool(res.errorbars),
        message=str(res.message),
        sweep=sweep,
        extra={"fitted_starts": starts} if starts else {},
    )


def fit_difference(
    segments: list[Segment],
    kind: str,
    *,
    model: str = "beta",
    method: str = "difference",
    paper_start: bool = False,
    sweep: int | None = None,
) -> KernelFit:
    """Fit steps against the state before each pulse (pooled over ``segments``).

    ``paper_start=True`` applies the paper's bounds (a in [0, 1]) and start (0.05, 2, 2)
    instead of ``guess()``.
    """
    _check_enough(segments, kind, "the difference fit")
    w_b = np.concatenate([s.steps()[0] for s in segments])
    dw = np.concatenate([s.steps()[1] for s in segments])
    v = np.concatenate([s.v for s in segments])
    wc = kernel_input(w_b)
    mdl, fixed = make_model(model, kind)
    kw: dict[str, Any] = {"w": wc}
    if model == "amplitude_beta":
        kw["v"] = v
        params = mdl.guess(dw, **kw)
    elif paper_start:
        params = mdl.make_params(**dict(zip(("a", "alpha", "beta"), PAPER_START, strict=True)))
        params["a"].set(min=0.0, max=1.0)
    else:
        params = mdl.guess(dw, **kw)
    for k, val in fixed.items():
        params[k].set(value=val, vary=False)
    if model == "linear":
        params["a"].set(value=max(float(np.mean(dw)), 1e-6))
    res = mdl.fit(dw, params, nan_policy="raise", **kw)
    return _package(
        res, segments, kind=kind, method=method, model=model, r2=float(res.rsquared), sweep=sweep
    )


def fit_trajectory(
    segments: list[Segment],
    kind: str,
    *,
    model: str = "beta",
    starts: list[dict[str, float]] | None = None,
    sweep: int | None = None,
) -> KernelFit:
    """Fit the pulse-by-pulse integrated kernel to the measured states (pooled).

    Each segment's start state is a nuisance parameter (the measured first read is noisy);
    the fitted starts are kept in ``extra['fitted_starts']``. The integrated model is not
    convex in its parameters, so the fit runs from several
    ``starts`` (then the model's ``guess()`` and the paper's 0.05, 2, 2) and keeps the
    one with the lowest chi-square; the fallbacks are skipped once a start reaches
    R² >= ``GOOD_ENOUGH_R2``.
    """
    _check_enough(segments, kind, "the trajectory fit")
    mdl, fixed = make_model(model, kind)
    w_b = np.concatenate([s.steps()[0] for s in segments])
    dw = np.concatenate([s.steps()[1] for s in segments])
    kw: dict[str, Any] = {"w": kernel_input(w_b)}
    if model == "amplitude_beta":
        kw["v"] = np.concatenate([s.v for s in segments])
    candidates = [mdl.guess(dw, **kw)]
    if model != "amplitude_beta":
        candidates.append(
            mdl.make_params(**dict(zip(("a", "alpha", "beta"), PAPER_START, strict=True)))
        )
    for st in starts or []:
        p = mdl.make_params(**{k: v for k, v in st.items() if k in mdl.param_names})
        candidates.insert(0, p)
    y = np.concatenate([s.w[1:] for s in segments])
    m = len(segments)

    def residual(p: lmfit.Parameters) -> np.ndarray:
        vals = {k: float(x.value) for k, x in p.items() if not k.startswith("w0_")}
        w0 = np.array([p[f"w0_{i}"].value for i in range(m)])
        pred = integrate(segments, vals, model, starts=w0)
        return np.concatenate([q[1:] for q in pred]) - y

    best = None
    ss = float(np.sum((y - y.mean()) ** 2))
    for params in candidates:
        if best is not None and ss > 0 and 1.0 - best.chisqr / ss >= GOOD_ENOUGH_R2:
            break  # the first start already fits: skip the fallbacks
        for k, val in fixed.items():
            params[k].set(value=val, vary=False)
        # the measured start is itself a noisy read: fit each segment's start state too
        for i, seg in enumerate(segments):
            params.add(f"w0_{i}", value=_start_guess(seg.w[0]), min=STATE_LOW, max=STATE_HIGH)
        try:
            res = lmfit.minimize(
                residual, params, method="leastsq", nan_policy="raise", max_nfev=MAX_NFEV
            )
        except ValueError:  # NaN from an extreme start: try the next one
            continue
        if best is None or res.chisqr < best.chisqr:
            best = res
    if best is None:
        raise InputError(
            f"{segments[0].source}: the {kind.upper()} trajectory fit did not converge from "
            "any start (the model produced NaN)"
        )
    if not best.errorbars:
        # a start state at its bound leaves the Jacobian singular: estimate the kernel's
        # errors with the starts held at their best values
        held = best.params.copy()
        for i in range(m):
            held[f"w0_{i}"].set(vary=False)
        again = lmfit.minimize(
            residual, held, method="leastsq", nan_policy="raise", max_nfev=MAX_NFEV
        )
        if again.errorbars and again.chisqr <= best.chisqr * (1 + 1e-6):
            best = again
    r2 = 1.0 - float(np.sum(best.residual**2)) / ss if ss > 0 else float("nan")
    return _package(best, segments, kind=kind, method="trajectory", model=model, r2=r2, sweep=sweep)


def fit_paper(segment: Segment) -> KernelFit:
    """The paper's recipe on one half-cycle (normalised over its own sweep)."""
    return fit_difference(
        [segment], segment.kind, method="paper", paper_start=True, sweep=segment.sweep
    )


def fit_method(
    segments: list[Segment],
    kind: str,
    method: str,
    *,
    model: str = "beta",
    starts: list[dict[str, float]] | None = None,
) -> KernelFit:
    """Pooled fit by ``method`` ('difference', 'trajectory'); 'paper' uses the first sweep.

    ``starts``: extra start values of a trajectory fit, tried first (the difference fit's
    parameters follow).
    """
    if method == "difference":
        return fit_difference(segments, kind, model=model)
    if method == "trajectory":
        try:
            first = [fit_difference(segments, kind, model=model).params]
        except InputError:
            raise
        except ValueError:  # a failed start only costs one start
            first = []
        # fit_trajectory tries its starts last-given first
        return fit_trajectory(segments, kind, model=model, starts=first + list(starts or [])[::-1])
    if method == "paper":
        return fit_paper(segments[0])
    raise InputError(f"Invalid value for 'method': got {method!r}; allowed {METHODS}")


#: Extra starts (a, alpha, beta) of a trajectory fit that ended on a bound.
RETRY_STARTS = (
    {"a": 0.05, "alpha": 1.5, "beta": 1.5},
    {"a": 0.2, "alpha": 2.0, "beta": 3.0},
    {"a": 0.5, "alpha": 3.0, "beta": 2.0},
    {"a": 0.02, "alpha": 1.1, "beta": 1.1},
)


def at_bound(fit: KernelFit, rel: float = 1e-3) -> list[str]:
    """Varied parameters of ``fit`` within ``rel`` of a bound of its model (the paper's
    recipe bounds a to [0, 1]); zero lower bounds count within 1e-6."""
    hints = make_model(fit.model, fit.kind)[0].param_hints
    out = []
    for k in fit.stderr:  # only varied parameters can sit on a bound
        lo, hi = hints.get(k, {}).get("min"), hints.get(k, {}).get("max")
        if fit.method == "paper" and k == "a":
            hi = 1.0
        v = fit.params[k]
        if lo is not None and v <= lo + rel * max(abs(lo), 1e-3):
            out.append(k)
        elif hi is not None and v >= hi * (1 - rel):
            out.append(k)
    return out


def chisqr(fit: KernelFit) -> float:
    """Sum of squared residuals of ``fit`` (from its reduced chi-square)."""
    return fit.redchi * max(fit.n_points - fit.n_varied, 1)


def refit_off_bound(segments: list[Segment], kind: str, fit: KernelFit) -> KernelFit:
    """A trajectory fit that ended on a bound, retried from :data:`RETRY_STARTS`.

    Returns the lowest chi-square fit; an interior fit within 1 % of that chi-square is
    preferred to a fit on a bound (the data do not tell them apart).
    """
    fits = [fit]
    for st in RETRY_STARTS:
        try:
            fits.append(fit_trajectory(segments, kind, starts=[st], sweep=fit.sweep))
        except (InputError, ValueError):
            continue
    best = min(fits, key=chisqr)
    inside = [f for f in fits if not at_bound(f) and chisqr(f) <= 1.01 * chisqr(best)]
    return min(inside, key=chisqr) if inside else best


def compare_models(segments: list[Segment], kind: str) -> dict[str, KernelFit]:
    """Beta vs linear vs soft-bounds vs amplitude-aware, all on the same dW data."""
    out: dict[str, KernelFit] = {}
    for name in ("beta", "linear", "soft_bounds", "amplitude_beta"):
        out[name] = fit_difference(segments, kind, model=name)
    return out


def akaike_weights(fits: dict[str, KernelFit]) -> dict[str, float]:
    """exp(-ΔAIC/2) normalised: the relative support of each model on the same data."""
    aic = {k: f.aic for k, f in fits.items() if math.isfinite(f.aic)}
    if not aic:
        return {}
    best = min(aic.values())
    raw = {k: math.exp(-(v - best) / 2) for k, v in aic.items()}
    tot = sum(raw.values())
    return {k: v / tot for k, v in raw.items()}
