"""Read noise and cycle-to-cycle noise, told apart by a state-space model of the kernel.

The measured half-cycles are modelled as a hidden state that the kernel drives and a noisy
read of it (all in normalised conductance W, dimensionless):

    x_{k+1} = x_k + d · f(x_k) · (1 + c · η_k) + q · ζ_k   (one pulse, d = +1 LTP / −1 LTD)
    y_k     = x_k + sqrt(r² + (ρ · G_k / (Gmax − Gmin))²) · ε_k            (read)

with ``f`` the fitted Beta kernel, ``η, ζ, ε ~ N(0, 1)`` independent, ``c`` the cycle-to-cycle
relative s.d. of one step (what the crossbar draws per pulse: ``A ~ N(A, (c·A)²)``), ``q`` a
state wander per pulse that does not scale with the step (drift, relaxation, kernel misfit
near the bounds where ``f`` vanishes; the crossbar does not simulate it) and ``r`` the read
noise as a fraction of the conductance window (one read's s.d. is ``r·(Gmax−Gmin)``) and
``ρ`` the read noise proportional to the conductance read (s.d. ``ρ·G``, common for
resistance reads; ``G/(Gmax−Gmin) = x + Gmin/(Gmax−Gmin)``).

Read-noise form and wander are chosen by BIC among additive (``ρ = 0``), proportional
(``r = 0``) and both, each with and without ``q``: ``q`` trades against ``c`` when the step
size varies little along the half-cycles, so it is kept only where the data ask for it, and
the record says how strongly the two estimates are correlated.

The two noises leave different marks. Read noise is white on the measured levels: it does
not propagate, and consecutive step residuals are negatively correlated. Cycle-to-cycle
noise enters the state and accumulates along the trajectory like a random walk, damped only
by the kernel's restoring drift. Residual moments of single steps cannot separate them when
the read noise is a few per cent of the window; the multi-step structure can.

:func:`estimate_noise` takes both from an extended Kalman filter: per pulse it predicts the
state (``x⁻ = x + d f(x)``; variance ``P⁻ = F² P + c² f(x)² + q²``, ``F = 1 + d f'(x)``),
updates with the read (innovation variance ``S = P⁻ + R(x⁻)``, ``R`` the read variance at
the predicted state), and sums the Gaussian log-likelihood of the innovations. Each
half-cycle starts from its first read (``P₀ = R``).
``r``, ``ρ``, ``c`` (one for both kinds, or ``c_LTP`` and ``c_LTD``) and ``q`` maximise the
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
from numba import njit
from scipy.ndimage import uniform_filter1d
from scipy.optimize import minimize

from ferrocim.calibration.fitting import KINDS, Segment
from ferrocim.calibration.kernel import KERNEL_EPS, pulse_amplitude

#: Lower bound on the read noise (fraction of the window) while searching, for a finite log.
_R_FLOOR = 1e-6


#: Read-noise forms :func:`estimate_noise` chooses from.
READ_FORMS = ("additive", "proportional", "both")


@dataclass(frozen=True)
class NoiseEstimate:
    """Read noise (fraction of the window, and fraction of G) and cycle-to-cycle spread per
    kind, ±1 sigma; the chosen read-noise form and whether the wander term was kept."""

    read_noise: float
    read_noise_stderr: float | None
    c2c: dict[str, float]
    c2c_stderr: dict[str, float | None]
    wander: float  # state wander per pulse, fraction of the window
    wander_stderr: float | None
    n_reads: int
    neg_log_likelihood: float
    converged: bool
    read_noise_g: float = 0.0  # s.d. of one read as a fraction of the conductance read
    read_noise_g_stderr: float | None = None
    read_form: str = "additive"
    wander_kept: bool = True
    c2c_wander_correlation: float | None = None
    candidates: tuple[dict[str, float | str | bool], ...] = ()


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
    read_noise_g: float = 0.0,
) -> float:
    """Negative log-likelihood of the reads under the state-space model (module docstring).

    ``kernels`` maps 'ltp'/'ltd' to (a, alpha, beta) or to an amplitude-aware kernel's
    parameters (dict with ``a, alpha, beta, v_th, p``; the step then follows each pulse's V).
    ``read_noise`` is in window units, ``read_noise_g`` a fraction of the conductance read.
    """
    y, ok, d = _stack(segments)
    kind = np.array([s.kind for s in segments])
    amp = _amplitudes(segments, kernels, y.shape[1] - 1)
    al = np.array([_shape(kernels[k])[0] for k in kind])
    be = np.array([_shape(kernels[k])[1] for k in kind])
    c = np.array([c2c[k] for k in kind])
    # G / (Gmax - Gmin) = x + g0 for each segment's window
    g0 = np.array([s.g_min_s / (s.g_max_s - s.g_min_s) for s in segments])
    return float(
        _kalman_loop(
            np.nan_to_num(y), ok, d, amp, al, be, c, g0,
            float(wander), float(read_noise) ** 2, float(read_noise_g) ** 2, KERNEL_EPS,
        )
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _kalman_loop(
    y: np.ndarray,
    ok: np.ndarray,
    d: np.ndarray,
    amp: np.ndarray,
    al: np.ndarray,
    be: np.ndarray,
    c: np.ndarray,
    g0: np.ndarray,
    wander: float,
    r2: float,
    rho2: float,
    eps: float,
) -> float:  # pragma: no cover - compiled
    """The extended Kalman filter of :func:`kalman_nll`, one half-cycle after the other.

    The state saturates at [0, 1]; the kernel is evaluated ``eps`` inside (0, 1) and its
    derivative's poles are kept finite 1e-6 inside (the state may sit at a bound).
    """
    nll = 0.0
    m, n = y.shape
    for i in range(m):
        x = min(max(y[i, 0], 0.0), 1.0)
        p = r2 + rho2 * (max(y[i, 0], 0.0) + g0[i]) ** 2
        for k in range(1, n):
            if not ok[i, k]:
                break
            xk = min(max(x, eps), 1.0 - eps)
            f = amp[i, k - 1] * xk ** (al[i] - 1.0) * (1.0 - xk) ** (be[i] - 1.0)
            xd = min(max(x, 1e-6), 1.0 - 1e-6)
            df = f * ((al[i] - 1.0) / xd - (be[i] - 1.0) / (1.0 - xd))
            xp = min(max(x + d[i] * f, 0.0), 1.0)
            pp = (1.0 + d[i] * df) ** 2 * p + (c[i] * f) ** 2 + wander**2
            sv = pp + r2 + rho2 * (xp + g0[i]) ** 2
            v = y[i, k] - xp
            nll += 0.5 * (math.log(2.0 * math.pi * sv) + v * v / sv)
            gain = pp / sv
            x = min(max(xp + gain * v, 0.0), 1.0)
            p = (1.0 - gain) * pp
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


def _fit_model(
    segments: list[Segment],
    kernels: dict[str, Kernel],
    kinds: list[str],
    *,
    shared_c2c: bool,
    form: str,
    wander: bool,
    starts: list[np.ndarray],
) -> tuple[np.ndarray, float, bool, list[str]]:
    """Maximum-likelihood (r, rho, c..., q) of one model; returns the full parameter vector
    (fixed entries 0, r floored), its NLL, convergence and the names of the free entries."""
    nc = 1 if shared_c2c else len(kinds)
    names = ["r", "rho"] + [f"c_{k}" for k in (["all"] if shared_c2c else kinds)] + ["q"]
    free = [
        i
        for i, nm in enumerate(names)
        if not (
            (nm == "r" and form == "proportional")
            or (nm == "rho" and form == "additive")
            or (nm == "q" and not wander)
        )
    ]

    def full(theta_free: np.ndarray) -> np.ndarray:
        th = np.zeros(len(names))
        th[free] = np.abs(theta_free)
        th[0] = max(th[0], _R_FLOOR)
        return th

    def nll(th: np.ndarray) -> float:
        c = {k: float(th[2 + (0 if shared_c2c else i)]) for i, k in enumerate(kinds)}
        return kalman_nll(segments, kernels, float(th[0]), c, float(th[2 + nc]), float(th[1]))

    best = None
    for x0 in starts:
        res = minimize(
            lambda t: nll(full(t)),
            np.asarray(x0, float)[free],
            method="Nelder-Mead",
            options={"xatol": 1e-5, "fatol": 1e-4, "maxfev": 400 * len(free)},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return full(best.x), float(best.fun), bool(best.success), [names[i] for i in free]


def estimate_noise(
    segments: list[Segment],
    kernels: dict[str, Kernel],
    *,
    shared_c2c: bool = False,
    forms: tuple[str, ...] = READ_FORMS,
    wander: tuple[bool, ...] = (False, True),
) -> NoiseEstimate:
    """Maximum-likelihood read noise and cycle-to-cycle spreads (module docstring).

    ``segments`` hold both kinds; ``kernels`` maps 'ltp'/'ltd' to the kernels fitted on these
    segments (see :func:`kalman_nll`). ``shared_c2c``: one spread for both kinds (reported
    under each kind). Every read-noise form in ``forms`` is fitted with and without the
    wander term (as ``wander`` lists) and the lowest BIC wins; all are kept in
    ``candidates``.
    """
    kinds = [k for k in KINDS if any(s.kind == k for s in segments)]
    nc = 1 if shared_c2c else len(kinds)
    n_reads = int(sum(len(s.w) for s in segments))
    # start: read noise from the second differences of the reads (var 6 r^2 when white)
    dif = np.concatenate([np.diff(np.diff(s.w)) for s in segments if len(s.w) > 2])
    r0 = float(np.clip(np.std(dif) / math.sqrt(6.0), 1e-3, 0.2)) if dif.size else 0.01
    g0 = float(np.median([s.g_min_s / (s.g_max_s - s.g_min_s) for s in segments]))
    rho0 = r0 / (0.5 + max(g0, 0.0))  # the same s.d. at mid-window
    fits: list[dict] = []
    for use_wander in wander:
        for form in forms:
            r_start = 0.0 if form == "proportional" else (r0 if form == "additive" else r0 / 2)
            rho_start = (
                0.0 if form == "additive" else (rho0 if form == "proportional" else rho0 / 2)
            )
            starts = [
                np.array([r_start, rho_start] + [c0] * nc + [r0 / 2 if use_wander else 0.0])
                for c0 in (0.05, 0.3)
            ]
            theta, nll, ok, free = _fit_model(
                segments,
                kernels,
                kinds,
                shared_c2c=shared_c2c,
                form=form,
                wander=use_wander,
                starts=starts,
            )
            bic = 2.0 * nll + len(free) * math.log(max(n_reads, 2))
            fits.append(
                {"form": form, "wander": use_wander, "theta": theta, "nll": nll, "bic": bic,
                 "converged": ok, "free": free}
            )  # fmt: skip
    best = min(fits, key=lambda f: f["bic"])
    theta, free = best["theta"], best["free"]
    names = ["r", "rho"] + [f"c_{k}" for k in (["all"] if shared_c2c else kinds)] + ["q"]
    idx = [names.index(nm) for nm in free]

    def fun_free(t: np.ndarray) -> float:
        th = theta.copy()
        th[idx] = np.abs(t)
        th[0] = max(th[0], _R_FLOOR)
        c = {k: float(th[2 + (0 if shared_c2c else i)]) for i, k in enumerate(kinds)}
        return kalman_nll(segments, kernels, float(th[0]), c, float(th[2 + nc]), float(th[1]))

    x = theta[idx]
    h = np.maximum(1e-3 * np.abs(x), 1e-4)
    for j, nm in enumerate(free):
        if nm == "r":
            h[j] = min(h[j], 0.5 * x[j])
    err_free: list[float | None] = [None] * len(idx)
    corr_cq: float | None = None
    try:
        cov = np.linalg.inv(_hessian(fun_free, x, h))
        err_free = [math.sqrt(v) if v > 0 and math.isfinite(v) else None for v in np.diag(cov)]
        if "q" in free:
            iq = free.index("q")
            ic = next(j for j, nm in enumerate(free) if nm.startswith("c_"))
            den = math.sqrt(abs(cov[iq, iq] * cov[ic, ic]))
            corr_cq = float(cov[iq, ic] / den) if den > 0 else None
            if corr_cq is not None and not abs(corr_cq) <= 1.0:
                corr_cq = None  # the Hessian is not positive definite there
    except np.linalg.LinAlgError:
        pass
    err = dict.fromkeys(names)
    for j, nm in enumerate(free):
        err[nm] = err_free[j]
    c_names = names[2 : 2 + nc]
    c = {k: float(theta[2 + (0 if shared_c2c else i)]) for i, k in enumerate(kinds)}
    return NoiseEstimate(
        read_noise=float(theta[0]),
        read_noise_stderr=err["r"],
        c2c=c,
        c2c_stderr={k: err[c_names[0 if shared_c2c else i]] for i, k in enumerate(kinds)},
        wander=float(theta[2 + nc]),
        wander_stderr=err["q"],
        n_reads=n_reads,
        neg_log_likelihood=float(best["nll"]),
        converged=bool(best["converged"]),
        read_noise_g=float(theta[1]),
        read_noise_g_stderr=err["rho"],
        read_form=str(best["form"]),
        wander_kept=bool(best["wander"]),
        c2c_wander_correlation=corr_cq,
        candidates=tuple(
            {
                "read_form": f["form"],
                "wander": f["wander"],
                "neg_log_likelihood": f["nll"],
                "bic": f["bic"],
                "delta_bic": f["bic"] - best["bic"],
                "read_noise": float(f["theta"][0]),
                "read_noise_g": float(f["theta"][1]),
                "c2c": float(f["theta"][2]),
                "state_wander": float(f["theta"][2 + nc]),
            }
            for f in fits
        ),
    )
