"""The conductance window, fitted with the kernels instead of set by min-max.

Min-max normalisation puts each sweep's lowest and highest read at W = 0 and 1. That is
right only when the sweep saturates: a sweep that swings between W 0.1 and 0.9 of the
device's window is stretched onto [0, 1], the stretched kernel is no longer a Beta kernel,
and its forced zeros at the ends become a systematic misfit.

:func:`fit_joint` fits one model to all half-cycles of a device at once, in conductance:

    G_k = Gmin_s + (Gmax_s - Gmin_s) · W_k,   W_{k+1} = clip(W_k ± f_kind(W_k), 0, 1)

with the LTP and LTD Beta kernels ``f``, each half-cycle's start state ``W_0`` and either

- ``window="fitted"``: one window shared by LTP and LTD, ``Gmin_s = Gmin + dGmin·t_s``,
  ``Gmax_s = Gmax + dGmax·t_s`` (``t_s`` the sweep index relative to the middle sweep; the
  drift terms only when asked for), or
- ``window="fixed"``: each sweep's window given (min-max per sweep, or the user's).

Residuals are in units of the device's measured conductance range (``(G - g_lo) /
(g_hi - g_lo)``, the same for both), so the two are compared on the same reads: every read,
the first of each half-cycle included. :func:`choose_window` decides between them.

A window edge is *measured* when the device saturates there (:func:`saturation_seen`: the
half-cycles moving toward it end with steps much smaller than their largest) and
*extrapolated* otherwise (the kernel's shape put it there).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit
from scipy.optimize import least_squares

from ferrocim.calibration.fitting import KINDS, Segment
from ferrocim.calibration.kernel import KERNEL_EPS
from ferrocim.calibration.models import A_MAX, EXP_MAX, EXP_MIN

#: A half-cycle saturates when its last steps are below this fraction of its largest.
SATURATION_RATIO = 0.2
#: Pulses averaged for the last and the largest step of a half-cycle.
SATURATION_PULSES = 3
#: The fitted window may extend this many measured ranges beyond the measured range.
MAX_EXTENSION = 3.0
#: A fitted window whose width has a relative 1-sigma error above this is not identified.
MAX_WIDTH_RSE = 0.25
#: Most residual evaluations of one joint fit (each with an exact Jacobian).
MAX_NFEV = 200


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run small dense linear algebra on one BLAS thread.

    The joint fit's SVDs are of a few hundred × a few dozen matrices: threads only add
    overhead, and on a loaded machine they made one fit 20-100 times slower (measured).
    ``threadpoolctl`` comes with scikit-learn; without it nothing changes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class JointFit:
    """A joint fit of both kernels and the window (module docstring); conductances in S.

    ``rss`` is the sum of squared residuals in units of the measured conductance range.
    """

    window: str  # 'fitted' or 'fixed'
    drift: bool
    kernels: dict[str, dict[str, float]]
    windows: dict[int, tuple[float, float]]  # sweep → (Gmin, Gmax) in S
    g_min_s: float  # window of the middle sweep
    g_max_s: float
    g_min_stderr: float | None
    g_max_stderr: float | None
    drift_s: tuple[float, float]  # (dGmin, dGmax) per sweep, S
    starts: list[float]
    rss: float
    n_points: int
    n_params: int
    success: bool
    message: str
    measured_range_s: tuple[float, float]
    visited_w: tuple[float, float]  # lowest and highest fitted state
    at_bound: list[str] = field(default_factory=list)
    rss_kind: dict[str, float] = field(default_factory=dict)  # the rss of each kind's reads

    @property
    def bic(self) -> float:
        """Bayesian information criterion of the Gaussian fit (``n ln(RSS/n) + k ln n``)."""
        n = self.n_points
        return n * math.log(max(self.rss, 1e-300) / n) + self.n_params * math.log(n)

    @property
    def identified(self) -> bool:
        """A fitted window is identified when its width has a finite, small relative error
        and no window parameter sits on its bound; a fixed window always is."""
        if self.window == "fixed":
            return True
        if self.at_bound:
            return False
        width = self.g_max_s - self.g_min_s
        if self.g_min_stderr is None or self.g_max_stderr is None or width <= 0:
            return False
        return math.hypot(self.g_min_stderr, self.g_max_stderr) / width <= MAX_WIDTH_RSE

    def summary(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "window": self.window,
            "drift": self.drift,
            "g_min_s": self.g_min_s,
            "g_max_s": self.g_max_s,
            "g_min_stderr": self.g_min_stderr,
            "g_max_stderr": self.g_max_stderr,
            "drift_per_sweep_s": list(self.drift_s),
            "rss_range_units": self.rss,
            "rss_range_units_by_kind": self.rss_kind,
            "n_points": self.n_points,
            "n_params": self.n_params,
            "bic": self.bic,
            "success": self.success,
            "identified": self.identified,
            "at_bound": self.at_bound,
            "visited_w": list(self.visited_w),
            "kernels": self.kernels,
        }


def saturation_seen(segments: list[Segment]) -> dict[str, dict[str, float | bool | None]]:
    """Per window edge: does the device saturate there? Judged from the reads alone.

    For the half-cycles moving toward an edge (LTP toward Gmax, LTD toward Gmin): the mean
    step of their last :data:`SATURATION_PULSES` pulses and their largest such mean, in S,
    each pooled as a median over the half-cycles. The edge is saturated when the ratio is
    below :data:`SATURATION_RATIO` (a step that has faded out), not when the sweep merely
    turns while the device still moves.
    """
    k = SATURATION_PULSES
    out: dict[str, dict[str, float | bool | None]] = {}
    for edge, kind in (("g_max", "ltp"), ("g_min", "ltd")):
        last, peak = [], []
        for s in segments:
            if s.kind != kind or len(s.w) < 2 * k + 1:
                continue
            g = s.g_min_s + s.w * (s.g_max_s - s.g_min_s)
            step = s.direction * np.diff(g)
            avg = np.convolve(step, np.ones(k) / k, mode="valid")
            last.append(float(avg[-1]))
            peak.append(float(avg.max()))
        if not last or np.median(peak) <= 0:
            out[edge] = {"seen": None, "ratio": None}
            continue
        ratio = float(np.median(last) / np.median(peak))
        out[edge] = {"seen": ratio < SATURATION_RATIO, "ratio": ratio}
    return out


@dataclass
class _Data:
    """Reads of all half-cycles in range units, padded into (m, n+1) arrays."""

    u: np.ndarray
    ok: np.ndarray
    direction: np.ndarray
    is_ltp: np.ndarray
    sweep: np.ndarray
    t: np.ndarray  # sweep index relative to the middle sweep
    g_lo: float
    g_hi: float


def _data(segments: list[Segment]) -> _Data:
    g = [s.g_min_s + s.w * (s.g_max_s - s.g_min_s) for s in segments]
    g_lo = float(min(x.min() for x in g))
    g_hi = float(max(x.max() for x in g))
    m, n = len(segments), max(len(x) for x in g)
    u = np.zeros((m, n))
    ok = np.zeros((m, n), dtype=bool)
    for i, x in enumerate(g):
        u[i, : len(x)] = (x - g_lo) / (g_hi - g_lo)
        ok[i, : len(x)] = True
    sweeps = np.array([s.sweep for s in segments])
    mid = 0.5 * (sweeps.min() + sweeps.max())
    return _Data(
        u=u,
        ok=ok,
        direction=np.array([s.direction for s in segments], dtype=float),
        is_ltp=np.array([s.kind == "ltp" for s in segments]),
        sweep=sweeps,
        t=(sweeps - mid).astype(float),
        g_lo=g_lo,
        g_hi=g_hi,
    )


def _states(
    d: _Data, kern: np.ndarray, w0: np.ndarray, *, sensitivities: bool = False
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Integrated states (m, n+1) from starts ``w0`` with kernels ``kern`` (6 values).

    With ``sensitivities``: also d state / d (a, alpha, beta) of each segment's own kernel
    (m, n+1, 3) and d state / d start (m, n+1), propagated pulse by pulse (exact, so the
    fit needs no finite-difference Jacobian).
    """
    m, n = d.u.shape
    out = np.empty((m, n))
    s_k = np.zeros((m, n, 3))
    s_0 = np.zeros((m, n))
    _integrate(
        d.direction, d.is_ltp, np.asarray(kern, float), np.asarray(w0, float), KERNEL_EPS,
        sensitivities, out, s_k, s_0,
    )  # fmt: skip
    return (out, s_k, s_0) if sensitivities else (out, None, None)


@njit(cache=True, nogil=True)
def _integrate(
    direction: np.ndarray,
    is_ltp: np.ndarray,
    kern: np.ndarray,
    w0: np.ndarray,
    eps: float,
    sens: bool,
    out: np.ndarray,
    s_k: np.ndarray,
    s_0: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Pulse-by-pulse states (and sensitivities) of :func:`_states`, written in place.

    The state saturates at [0, 1] (no sensitivity through a saturated step); the kernel is
    evaluated ``eps`` inside (0, 1), where its derivative in W is taken as 0.
    """
    m, n = out.shape
    for i in range(m):
        j = 0 if is_ltp[i] else 3
        a, al, be = kern[j], kern[j + 1], kern[j + 2]
        dd = direction[i]
        w = min(max(w0[i], 0.0), 1.0)
        out[i, 0] = w
        s_0[i, 0] = 1.0
        for k in range(1, n):
            x = min(max(w, eps), 1.0 - eps)
            f = a * x ** (al - 1.0) * (1.0 - x) ** (be - 1.0)
            new = w + dd * f
            if sens:
                if 0.0 < new < 1.0:
                    dfdx = 0.0
                    if eps < w < 1.0 - eps:
                        dfdx = f * ((al - 1.0) / x - (be - 1.0) / (1.0 - x))
                        dfdx = min(max(dfdx, -1e6), 1e6)
                    gain = 1.0 + dd * dfdx
                    s_k[i, k, 0] = gain * s_k[i, k - 1, 0] + dd * f / a
                    s_k[i, k, 1] = gain * s_k[i, k - 1, 1] + dd * f * math.log(x)
                    s_k[i, k, 2] = gain * s_k[i, k - 1, 2] + dd * f * math.log1p(-x)
                    s_0[i, k] = gain * s_0[i, k - 1]
                else:
                    s_k[i, k, 0] = 0.0
                    s_k[i, k, 1] = 0.0
                    s_k[i, k, 2] = 0.0
                    s_0[i, k] = 0.0
            w = min(max(new, 0.0), 1.0)
            out[i, k] = w


def fit_joint(
    segments: list[Segment],
    kernels: dict[str, dict[str, float]],
    *,
    window: str = "fitted",
    drift: bool = False,
    fixed: dict[int, tuple[float, float]] | None = None,
    init_window: tuple[float, float] | None = None,
    read_noise: tuple[float, float] | None = None,
) -> JointFit:
    """Fit both kernels, every start state and (``window='fitted'``) the window jointly.

    ``kernels`` ('ltp'/'ltd' → a, alpha, beta) are the start values. ``fixed`` (sweep →
    (Gmin, Gmax) in S) is the window of each sweep for ``window='fixed'``. ``init_window``
    (in range units, (low, high)) starts a fitted window; default: the measured range.
    ``read_noise`` ``(r, rho)`` weights each read by ``1 / sqrt(r**2 + (rho * G / span)**2)``
    (``r`` in units of the measured range ``span``, ``rho`` a fraction of G); ``rss`` is then
    the weighted sum (None: unweighted).
    """
    if window not in ("fitted", "fixed"):
        raise ValueError(f"window must be 'fitted' or 'fixed', got {window!r}")
    d = _data(segments)
    m = len(segments)
    span = d.g_hi - d.g_lo
    kern0 = np.array([kernels[k][p] for k in KINDS for p in ("a", "alpha", "beta")], float)
    k_lo = np.array([1e-6, EXP_MIN, EXP_MIN] * 2)
    k_hi = np.array([A_MAX, EXP_MAX, EXP_MAX] * 2)
    kern0 = np.clip(kern0, k_lo * 1.0001, k_hi * 0.9999)
    n_sweeps = len(set(d.sweep.tolist()))
    use_drift = window == "fitted" and drift and n_sweeps >= 2
    if window == "fixed":
        if fixed is None:
            raise ValueError("window='fixed' needs the windows of the sweeps")
        lo_i = np.array([(fixed[int(s)][0] - d.g_lo) / span for s in d.sweep])
        hi_i = np.array([(fixed[int(s)][1] - d.g_lo) / span for s in d.sweep])
        win0, win_lo, win_hi = np.zeros(0), np.zeros(0), np.zeros(0)
    else:
        low0, high0 = init_window or (0.0, 1.0)
        floor = -d.g_lo / span * (1.0 - 1e-6)  # Gmin > 0
        win0 = np.array([low0, high0] + ([0.0, 0.0] if use_drift else []))
        win_lo = np.array([max(-MAX_EXTENSION, floor), 0.5] + ([-0.5, -0.5] if use_drift else []))
        win_hi = np.array([0.5, 1.0 + MAX_EXTENSION] + ([0.5, 0.5] if use_drift else []))
        win0 = np.clip(win0, win_lo + 1e-9, win_hi - 1e-9)
    nk, nw = 6, len(win0)

    def windows_of(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if window == "fixed":
            return lo_i, hi_i
        wv = theta[nk : nk + nw]
        lo, hi = np.full(m, wv[0]), np.full(m, wv[1])
        if use_drift:
            lo, hi = lo + wv[2] * d.t, hi + wv[3] * d.t
        return lo, hi

    # start states from the first read in the starting window
    lo0, hi0 = windows_of(np.concatenate([kern0, win0]))
    w00 = np.clip((d.u[:, 0] - lo0) / np.maximum(hi0 - lo0, 1e-9), 1e-3, 1 - 1e-3)
    x0 = np.concatenate([kern0, win0, w00])
    lb = np.concatenate([k_lo, win_lo, np.zeros(m)])
    ub = np.concatenate([k_hi, win_hi, np.ones(m)])

    def residual(theta: np.ndarray) -> np.ndarray:
        lo, hi = windows_of(theta)
        w = _states(d, theta[:nk], theta[nk + nw :])[0]
        pred = lo[:, None] + (hi - lo)[:, None] * w
        return weight * (pred - d.u)[d.ok]

    rows = np.nonzero(d.ok)  # (segment, read) of each residual
    if read_noise is None:
        weight = np.ones(len(rows[0]))
    else:
        g_rel = d.g_lo / span + d.u[d.ok]  # G / span
        weight = 1.0 / np.sqrt(read_noise[0] ** 2 + (read_noise[1] * g_rel) ** 2)

    def jacobian(theta: np.ndarray) -> np.ndarray:
        lo, hi = windows_of(theta)
        w, s_k, s_0 = _states(d, theta[:nk], theta[nk + nw :], sensitivities=True)
        assert s_k is not None and s_0 is not None
        seg, read = rows
        scale = (hi - lo)[seg]
        jac = np.zeros((len(seg), len(theta)))
        own = np.where(d.is_ltp[seg], 0, 3)
        for j in range(3):
            jac[np.arange(len(seg)), own + j] = scale * s_k[seg, read, j]
        wk = w[seg, read]
        if window == "fitted":
            jac[:, nk] = 1.0 - wk
            jac[:, nk + 1] = wk
            if use_drift:
                jac[:, nk + 2] = (1.0 - wk) * d.t[seg]
                jac[:, nk + 3] = wk * d.t[seg]
        jac[np.arange(len(seg)), nk + nw + seg] = scale * s_0[seg, read]
        return np.nan_to_num(weight[:, None] * jac, nan=0.0, posinf=1e12, neginf=-1e12)

    with (
        np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"),
        _one_blas_thread(),
    ):
        res = least_squares(
            residual,
            x0,
            jac=jacobian,
            bounds=(lb, ub),
            method="trf",
            x_scale="jac",
            max_nfev=MAX_NFEV,
        )
    theta = res.x
    rss = float(np.sum(res.fun**2))
    seg_of = rows[0]
    rss_kind = {k: float(np.sum(res.fun[d.is_ltp[seg_of] == (k == "ltp")] ** 2)) for k in KINDS}
    n_pts = int(d.ok.sum())
    n_par = len(theta)
    lo, hi = windows_of(theta)
    states = _states(d, theta[:nk], theta[nk + nw :])[0]
    w_vis = states[d.ok]
    stderr: list[float | None] = [None] * n_par
    try:
        jac = res.jac
        cov = np.linalg.pinv(jac.T @ jac) * rss / max(n_pts - n_par, 1)
        stderr = [math.sqrt(v) if v >= 0 and math.isfinite(v) else None for v in np.diag(cov)]
    except (np.linalg.LinAlgError, ValueError):
        pass
    bound = []
    names = ["g_min", "g_max", "drift_g_min", "drift_g_max"][:nw]
    for j, name in enumerate(names):
        tol = 1e-6 * max(1.0, abs(win_hi[j] - win_lo[j]))
        if theta[nk + j] <= win_lo[j] + tol or theta[nk + j] >= win_hi[j] - tol:
            bound.append(name)
    to_s = lambda x: d.g_lo + x * span  # noqa: E731
    windows = {}
    for s in sorted(set(d.sweep.tolist())):
        i = int(np.argmax(d.sweep == s))
        windows[int(s)] = (float(to_s(lo[i])), float(to_s(hi[i])))
    if window == "fitted":
        g_min, g_max = float(to_s(theta[nk])), float(to_s(theta[nk + 1]))
        se_min = None if stderr[nk] is None else stderr[nk] * span
        se_max = None if stderr[nk + 1] is None else stderr[nk + 1] * span
        drift_s = (
            (float(theta[nk + 2] * span), float(theta[nk + 3] * span)) if use_drift else (0.0, 0.0)
        )
    else:
        mids = np.array(list(windows.values()))
        g_min, g_max = float(np.median(mids[:, 0])), float(np.median(mids[:, 1]))
        se_min = se_max = None
        drift_s = (0.0, 0.0)
    kern = {
        k: dict(zip(("a", "alpha", "beta"), map(float, theta[3 * i : 3 * i + 3]), strict=True))
        for i, k in enumerate(KINDS)
    }
    return JointFit(
        window=window,
        drift=use_drift,
        kernels=kern,
        windows=windows,
        g_min_s=g_min,
        g_max_s=g_max,
        g_min_stderr=se_min,
        g_max_stderr=se_max,
        drift_s=drift_s,
        starts=[float(x) for x in theta[nk + nw :]],
        rss=rss,
        n_points=n_pts,
        n_params=n_par,
        success=bool(res.success),
        message=str(res.message),
        measured_range_s=(d.g_lo, d.g_hi),
        visited_w=(float(w_vis.min()), float(w_vis.max())),
        at_bound=bound,
        rss_kind=rss_kind,
    )


@dataclass(frozen=True)
class WindowChoice:
    """Which window the card uses and why (``normalisation``: 'fitted', 'sweep', 'global'
    or 'given')."""

    normalisation: str
    reason: str
    fitted: JointFit | None
    minmax: JointFit | None

    def record(self, requested: str) -> dict[str, Any]:
        """The card's ``fit['window']`` record (without the card's own window)."""
        out: dict[str, Any] = {
            "normalisation": self.normalisation,
            "requested": requested,
            "reason": self.reason,
        }
        if self.fitted is not None:
            out["fitted"] = self.fitted.summary()
        if self.minmax is not None:
            out["minmax"] = self.minmax.summary()
        return out


def fit_window(
    segments: list[Segment], kernels: dict[str, dict[str, float]], *, drift: bool | None = None
) -> JointFit:
    """The best fitted window: from a narrow and a wide start; with a drift term when it
    lowers the BIC (``drift=None``) or as forced."""
    fits = [
        fit_joint(segments, kernels, window="fitted", init_window=init)
        for init in ((-0.01, 1.01), (-0.25, 1.25))
    ]
    best = min(fits, key=lambda f: f.rss)
    if drift is False or len({s.sweep for s in segments}) < 2:
        return best
    d = _data(segments)
    span = d.g_hi - d.g_lo
    init = ((best.g_min_s - d.g_lo) / span, (best.g_max_s - d.g_lo) / span)
    drifting = fit_joint(segments, best.kernels, window="fitted", drift=True, init_window=init)
    if drift or drifting.bic < best.bic:
        return drifting
    return best


def choose_window(fitted: JointFit, minmax: JointFit) -> tuple[str, str]:
    """'fitted' or 'minmax', and the reason, for ``--normalise auto``.

    The fitted window is used when it is identified and fits all reads (both kinds) at least
    as well as per-sweep min-max (sum of squared residuals in units of the measured range,
    same reads); otherwise min-max, saying why. Each kind's share is recorded in the fits'
    summaries (one kind may fit a little worse in exchange for the other: min-max has a
    window per sweep).
    """
    ratio = fitted.rss / minmax.rss if minmax.rss > 0 else (0.0 if fitted.rss == 0 else math.inf)
    fig = f"residual sum of squares {fitted.rss:.3g} vs {minmax.rss:.3g} for min-max"
    if not fitted.success:
        return "minmax", f"the fitted window did not converge ({fitted.message})"
    if not fitted.identified:
        why = (
            f"on its bound ({', '.join(fitted.at_bound)})"
            if fitted.at_bound
            else "its width is not determined by the data"
        )
        return "minmax", f"the fitted window is not identified ({why}); {fig}"
    if ratio > 1.0:
        return "minmax", f"the fitted window fits worse than min-max per sweep ({fig})"
    return "fitted", f"the fitted window fits at least as well as min-max per sweep ({fig})"
