"""Variability: cycle-to-cycle, device-to-device, window drift; symmetry-point uncertainty.

All spreads are relative standard deviations (dimensionless); conductances in S.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ferrocim.calibration.fitting import KernelFit, Segment, predict_steps
from ferrocim.calibration.kernel import symmetry_point


def rsd_c2c(segments: list[Segment], params: dict[str, float], model: str = "beta") -> float:
    """Relative s.d. of one pulse's step around the fitted kernel.

    ``sqrt(sum (dW - dW_fit)^2 / sum dW_fit^2)``: the spread of the multiplicative factor
    ``dW / dW_fit`` weighted by the step size, which is what the crossbar draws per pulse
    (A ~ N(A, (rsd A)^2)). It includes read noise, so it is an upper bound on the device's
    own cycle-to-cycle noise.
    """
    w = np.concatenate([s.steps()[0] for s in segments])
    dw = np.concatenate([s.steps()[1] for s in segments])
    v = np.concatenate([s.v for s in segments])
    pred = predict_steps(w, v, params, model)
    den = float(np.sum(pred**2))
    return float(np.sqrt(np.sum((dw - pred) ** 2) / den)) if den > 0 else float("nan")


def window_table(segments: list[Segment]) -> pd.DataFrame:
    """Per sweep: Gmin, Gmax (S) of its reads and the window ratio Gmax/Gmin."""
    rows = []
    for sw in sorted({s.sweep for s in segments}):
        g = np.concatenate(
            [s.g_min_s + s.w * (s.g_max_s - s.g_min_s) for s in segments if s.sweep == sw]
        )
        rows.append(
            {
                "sweep": sw,
                "g_min_s": float(g.min()),
                "g_max_s": float(g.max()),
                "window": float(g.max() / g.min()),
            }
        )
    return pd.DataFrame(rows, columns=["sweep", "g_min_s", "g_max_s", "window"])


def window_drift(table: pd.DataFrame) -> float | None:
    """Linear trend of the window ratio per sweep, relative to its mean (None if < 2 sweeps)."""
    if len(table) < 2:
        return None
    slope = float(np.polyfit(table["sweep"].to_numpy(float), table["window"].to_numpy(), 1)[0])
    return slope / float(table["window"].mean())


def relative_spread(values: Sequence[float]) -> float | None:
    """Sample s.d. / |mean| of finite values (None with fewer than two)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size < 2 or np.mean(x) == 0:
        return None
    return float(np.std(x, ddof=1) / abs(np.mean(x)))


def parameter_spread(fits: list[KernelFit]) -> dict[str, float | None]:
    """Relative s.d. of each kernel parameter over per-sweep fits (cycle-to-cycle)."""
    ok = [f for f in fits if f.success]
    return {k: relative_spread([f.params[k] for f in ok]) for k in ("a", "alpha", "beta")}


def _sample(fit: KernelFit, n: int, rng: np.random.Generator) -> np.ndarray | None:
    names = ("a", "alpha", "beta")
    if fit.covar is None or tuple(fit.covar_names) != names:
        return None
    mean = np.array([fit.params[k] for k in names])
    cov = 0.5 * (fit.covar + fit.covar.T)
    return rng.multivariate_normal(mean, cov, size=n, method="eigh")


def symmetry_point_with_error(
    ltp: KernelFit,
    ltd: KernelFit,
    *,
    rng: np.random.Generator,
    n_samples: int = 300,
) -> tuple[float, float | None]:
    """W* of the LTP/LTD pair and its 1-sigma error from sampling both covariances.

    Draws ``n_samples`` parameter sets from each fit's multivariate normal (with ``rng``),
    keeps draws with positive parameters, and returns the s.d. of the W* found. The error is
    ``None`` when a fit has no covariance or fewer than 10 draws give a W*.
    """
    w_star = symmetry_point(ltp.kernel(), ltd.kernel())
    sp, sd = _sample(ltp, n_samples, rng), _sample(ltd, n_samples, rng)
    if sp is None or sd is None or not math.isfinite(w_star):
        return w_star, None
    vals = []
    for p, d in zip(sp, sd, strict=True):
        if (p > 0).all() and (d > 0).all():
            w = symmetry_point(tuple(p), tuple(d), grid=401)
            if math.isfinite(w):
                vals.append(w)
    if len(vals) < 10:
        return w_star, None
    return w_star, float(np.std(vals, ddof=1))
