"""Read noise and cycle-to-cycle noise, told apart by a state-space model of the kernel.

The measured half-cycles are modelled as a hidden state that the kernel drives and a noisy
read of it (all in normalised conductance W, dimensionless):

    x_{k+1} = x_k + d · f(x_k) · (1 + c · η_k) + q · ζ_k   (one pulse, d = +1 LTP / −1 LTD)
    y_k     = x_k + r · ε_k                                (read)

with ``f`` the fitted Beta kernel, ``η, ζ, ε ~ N(0, 1)`` independent, ``c`` the cycle-to-cycle
relative s.d. of one step (what the crossbar draws per pulse: ``A ~ N(A, (c·A)²)``), ``q`` a
state wander per pulse that does not scale with the step (drift, relaxation, kernel misfit
near the bounds where ``f`` vanishes; the crossbar does not simulate it) and ``r`` the read
noise as a fraction of the conductance window (one read's s.d. is ``r·(Gmax−Gmin)``).

The two noises leave different marks. Read noise is white on the measured levels: it does
not propagate, and consecutive step residuals are negatively correlated. Cycle-to-cycle
noise enters the state and accumulates along the trajectory like a random walk, damped only
by the kernel's restoring drift. Residual moments of single steps cannot separate them when
the read noise is a few per cent of the window; the multi-step structure can.

:func:`estimate_noise` takes both from an extended Kalman filter: per pulse it predicts the
state (``x⁻ = x + d f(x)``; variance ``P⁻ = F² P + c² f(x)² + q²``, ``F = 1 + d f'(x)``),
updates with the read (innovation variance ``S = P⁻ + r²``), and sums the Gaussian
log-likelihood of the innovations. Each half-cycle starts from its first read (``P₀ = r²``).
``r``, ``c`` (one for both kinds, or ``c_LTP`` and ``c_LTD``) and ``q`` maximise the
likelihood with the kernels fixed at their fits; their 1-sigma errors come from the inverse
Hessian of the negative log-likelihood (it depends on c² and q² only, so the Hessian is well
defined at 0). Without ``q``, a misfit near the bounds (where the step vanishes) would be
read as a huge relative step spread: on the bundled B1500 devices ``c`` ≈ 1 without it and
0.08–0.34 with it, while synthetic devices give the same ``c`` either way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.optimize import minimize

from ferrocim.calibration.fitting import KINDS, Segment
from ferrocim.calibration.kernel import (
    STATE_HIGH,
    STATE_LOW,
    beta_step,
    kernel_input,
    pulse_amplitude,
)

#: Lower bound on the read noise (fraction of the window) while searching, for a finite log.
_R_FLOOR = 1e-6


@dataclass(frozen=True)
class NoiseEstimate:
    """Read noise (fraction of the window) and cycle-to-cycle spread per kind, ±1 sigma."""

    read_noise: float
    read_noise_stderr: float | None
    c2c: dict[str, float]
    c2c_stderr: dict[str, float | None]
    wander: float  # state wander per pulse, fraction of the window
    wander_stderr: float | None
    n_reads: int
    neg_log_likelihood: float
    converged: bool


def _stack(segments: list[Segment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads ``(m, n+1)`` padded with NaN, a mask of real reads, and each segment's sign."""
    m = len(segments)
    n = max(len(s.w) for s in segments)
    y = np.full((m, n), np.nan)
    for i, s in enumerate(segments):
        y[i, : len(s.w)] = s.w
    return y, np.isfinite(y), np.array([s.direction for s in segments], dtype=float)


Kernel = tuple[float, float, float] | dict[str, float]


def _amplitudes(segments: list[Segment], kernels: dict[str, Kernel], n: int) -> np.ndarray:
    """Kernel amplitude of each pulse ``(m, n)``: ``a``, or ``pulse_amplitude(v, ...)`` for an
    amplitude-aware kernel (a dict with ``a, alpha, beta, v_th, p``)."""
    out = np.zeros((len(segments), n))
    for i, s in enumerate(segments):
        k = kernels[s.kind]
        if isinstance(k, dict):
            out[i, : len(s.v)] = pulse_amplitude(s.v, k["a"], k["v_th"], k["p"])
        else:
            out[i, : len(s.v)] = k[0]
    return out


def _shape(k: Kernel) -> tuple[float, float]:
    return (k["alpha"], k["beta"]) if isinstance(k, dict) else (k[1], k[2])


def kalman_nll(
    segments: list[Segment],
    kernels: dict[str, Kernel],
    read_noise: float,
    c2c: dict[str, float],
    wander: float = 0.0,
) -> float:
    """Negative log-likelihood of the reads under the state-space model (module docstring).

    ``kernels`` maps 'ltp'/'ltd' to (a, alpha, beta) or to an amplitude-aware kernel's
    parameters (dict with ``a, alpha, beta, v_th, p``; the step then follows each pulse's V).
    """
    y, ok, d = _stack(segments)
    kind = np.array([s.kind for s in segments])
    amp = _amplitudes(segments, kernels, y.shape[1] - 1)
    al = np.array([_shape(kernels[k])[0] for k in kind])
    be = np.array([_shape(kernels[k])[1] for k in kind])
    c = np.array([c2c[k] for k in kind])
    r2 = read_noise**2
    x = np.clip(y[:, 0], STATE_LOW, STATE_HIGH)
    p = np.full(len(segments), r2)
    nll = 0.0
    for k in range(1, y.shape[1]):
        xk = kernel_input(x)
        f = beta_step(xk, amp[:, k - 1], al, be)
        df = f * ((al - 1.0) / xk - (be - 1.0) / (1.0 - xk))
        xp = np.clip(x + d * f, STATE_LOW, STATE_HIGH)
        pp = (1.0 + d * df) ** 2 * p + (c * f) ** 2 + wander**2
        s = pp + r2
        v = y[:, k] - xp
        g = ok[:, k]
        nll += 0.5 * float(np.sum((np.log(2 * math.pi * s) + v**2 / s)[g]))
        gain = pp / s
        x = np.where(g, np.clip(xp + gain * v, STATE_LOW, STATE_HIGH), x)
        p = np.where(g, (1.0 - gain) * pp, p)
    return nll


def _hessian(fun, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``fun`` at ``x`` with steps ``h``."""
    n = len(x)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            v = (
                fun(x + e_i + e_j) - fun(x + e_i - e_j) - fun(x - e_i + e_j) + fun(x - e_i - e_j)
            ) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = v
    return out


def smooth_normalised(
    segments: list[Segment], *, per_sweep: bool, window: int = 5
) -> list[Segment]:
    """The segments renormalised to the extremes of their moving average (``window`` reads).

    Min/max normalisation puts the noisiest reads, not the device's bounds, at W = 0 and 1;
    a saturating device then never reaches the kernel's zeros, and the kernel's misfit near
    the bounds would accumulate like cycle-to-cycle noise. The moving average's extremes
    are close to the bounds. Grouped per sweep (``per_sweep``) or over all segments.
    """
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(segments):
        groups.setdefault(s.sweep if per_sweep else 0, []).append(i)
    out = list(segments)
    for idx in groups.values():
        g = [
            segments[i].g_min_s + segments[i].w * (segments[i].g_max_s - segments[i].g_min_s)
            for i in idx
        ]
        sm = np.concatenate([uniform_filter1d(x, min(window, len(x)), mode="nearest") for x in g])
        lo, hi = float(sm.min()), float(sm.max())
        if not hi > lo:
            continue
        for i, x in zip(idx, g, strict=True):
            out[i] = dataclasses.replace(
                segments[i], w=(x - lo) / (hi - lo), g_min_s=lo, g_max_s=hi
            )
    return out


def estimate_noise(
    segments: list[Segment],
    kernels: dict[str, Kernel],
    *,
    shared_c2c: bool = False,
) -> NoiseEstimate:
    """Maximum-likelihood read noise and cycle-to-cycle spreads (module docstring).

    ``segments`` hold both kinds; ``kernels`` maps 'ltp'/'ltd' to the kernels fitted on these
    segments (see :func:`kalman_nll`). ``shared_c2c``: one spread for both kinds (reported
    under each kind).
    """
    kinds = [k for k in KINDS if any(s.kind == k for s in segments)]
    nc = 1 if shared_c2c else len(kinds)

    def unpack(theta: np.ndarray) -> tuple[float, dict[str, float]]:
        c = {k: abs(float(theta[1 + (0 if shared_c2c else i)])) for i, k in enumerate(kinds)}
        return max(abs(float(theta[0])), _R_FLOOR), c

    def fun(theta: np.ndarray) -> float:
        r, c = unpack(theta)
        return kalman_nll(segments, kernels, r, c, abs(float(theta[-1])))

    # start: read noise from the second differences of the reads (var 6 r^2 when white)
    dif = np.concatenate([np.diff(np.diff(s.w)) for s in segments if len(s.w) > 2])
    r0 = float(np.clip(np.std(dif) / math.sqrt(6.0), 1e-3, 0.2)) if dif.size else 0.01
    best = None
    for c0 in (0.05, 0.3):
        x0 = np.array([r0] + [c0] * nc + [r0 / 2])
        res = minimize(fun, x0, method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-4})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    theta = np.abs(best.x)
    theta[0] = max(theta[0], _R_FLOOR)
    r, c = unpack(theta)
    h = np.maximum(1e-3 * np.abs(theta), 1e-4)
    h[0] = min(h[0], 0.5 * theta[0])
    err: list[float | None] = [None] * len(theta)
    try:
        cov = np.linalg.inv(_hessian(fun, theta, h))
        err = [math.sqrt(v) if v > 0 and math.isfinite(v) else None for v in np.diag(cov)]
    except np.linalg.LinAlgError:
        pass
    return NoiseEstimate(
        read_noise=r,
        read_noise_stderr=err[0],
        c2c=c,
        c2c_stderr={k: err[1 + (0 if shared_c2c else i)] for i, k in enumerate(kinds)},
        wander=float(theta[-1]),
        wander_stderr=err[-1],
        n_reads=int(sum(len(s.w) for s in segments)),
        neg_log_likelihood=float(best.fun),
        converged=bool(best.success),
    )
