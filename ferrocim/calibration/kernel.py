"""The Beta-kernel device model as plain array functions.

Normalised conductance ``W = (G - Gmin) / (Gmax - Gmin)`` lies in [0, 1]. One identical
pulse changes it by ``dW = a * W**(alpha - 1) * (1 - W)**(beta - 1)`` (dimensionless);
LTP adds the step, LTD subtracts its own-parameter step.

These functions use only arithmetic operators, so they accept numpy arrays *and* torch
tensors (including autograd and CUDA tensors). The calibration fits and the crossbar
simulation both call them, so the model that is fitted is the model that is simulated.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
from scipy.optimize import brentq

ArrayT = TypeVar("ArrayT")

#: The crossbar's programming rule: when a pulse is fired the kernel is evaluated at W
#: clamped to this interval. A rule of the simulated programming, not of the device: fits of
#: measured states do not use it (they use :data:`STATE_LOW`/:data:`STATE_HIGH`).
W_LOW: float = 0.01
W_HIGH: float = 0.99
#: A fitted device's state saturates at the edges of its conductance window.
STATE_LOW: float = 0.0
STATE_HIGH: float = 1.0
#: Distance from 0 and 1 at which fits evaluate the kernel's fractional powers (keeps
#: ``W**(alpha-1)`` finite at a saturated state); far below any read's resolution.
KERNEL_EPS: float = 1e-15


def kernel_input(w: ArrayT) -> ArrayT:
    """``w`` clipped to [KERNEL_EPS, 1 - KERNEL_EPS]: where fits evaluate the kernel.

    numpy arrays only (fits run in numpy); the crossbar clamps with its own rule.
    """
    return np.clip(w, KERNEL_EPS, 1.0 - KERNEL_EPS)  # type: ignore[return-value]


def beta_step(w: ArrayT, a: float | ArrayT, alpha: float | ArrayT, beta: float | ArrayT) -> ArrayT:
    """Magnitude of one pulse's step at normalised conductance ``w``.

    Parameters
    ----------
    w
        Normalised conductance in [0, 1] (dimensionless), numpy array or torch tensor.
    a
        Kernel amplitude (fraction of the conductance window per pulse).
    alpha, beta
        Shape exponents (dimensionless, > 0).

    Returns
    -------
    ``a * w**(alpha-1) * (1-w)**(beta-1)``, same type and shape as ``w`` (broadcast).
    """
    return a * w ** (alpha - 1.0) * (1.0 - w) ** (beta - 1.0)


def pulse_amplitude(v: ArrayT, a: float, v_th: float, p: float) -> ArrayT:
    """Kernel amplitude of a pulse of ``v`` volts: ``a * max(|v| - v_th, 0) ** p``.

    The amplitude-aware kernel's step is ``beta_step(w, pulse_amplitude(v, ...), alpha,
    beta)``; ``v_th`` in V. Accepts floats, numpy arrays and torch tensors.
    """
    drive = abs(v) - v_th
    drive = drive * (drive > 0)
    return a * drive**p


def trajectory(
    w0: float,
    n_pulses: int,
    a: float,
    alpha: float,
    beta: float,
    *,
    direction: int = +1,
    low: float = 0.0,
    high: float = 1.0,
) -> np.ndarray:
    """Integrate the kernel pulse by pulse from ``w0``; returns ``n_pulses + 1`` values.

    ``direction`` is +1 for LTP, -1 for LTD. Each state is clipped to [low, high]; the
    clip keeps a fractional exponent away from a negative base.
    """
    if direction not in (+1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    out = np.empty(n_pulses + 1, dtype=float)
    w = float(np.clip(w0, low, high))
    out[0] = w
    for i in range(n_pulses):
        # keep the base of fractional powers strictly inside (0, 1)
        wi = min(max(w, 1e-12), 1.0 - 1e-12)
        w = w + direction * float(beta_step(wi, a, alpha, beta))
        w = min(max(w, low), high)
        out[i + 1] = w
    return out


def symmetry_residual(
    w: float | np.ndarray,
    ltp: tuple[float, float, float],
    ltd: tuple[float, float, float],
) -> float | np.ndarray:
    """``ln(A_p/A_d) + (alpha_p-alpha_d) ln W + (beta_p-beta_d) ln(1-W)``; zero at W*."""
    a_p, al_p, be_p = ltp
    a_d, al_d, be_d = ltd
    return (
        math.log(a_p / a_d) + (al_p - al_d) * np.log(w) + (be_p - be_d) * np.log1p(-np.asarray(w))
    )


def symmetry_point(
    ltp: tuple[float, float, float],
    ltd: tuple[float, float, float],
    *,
    grid: int = 2001,
) -> float:
    """Normalised conductance W* in (0, 1) where LTP and LTD steps are equal.

    Brackets a sign change of :func:`symmetry_residual` on a grid and refines it with
    Brent's method; where several roots exist, the one closest to 0.5 is returned.
    Returns NaN when the steps are never equal on (0, 1).
    """
    ws = np.linspace(1e-6, 1.0 - 1e-6, grid)
    r = np.asarray(symmetry_residual(ws, ltp, ltd))
    sign_change = np.nonzero(np.sign(r[:-1]) * np.sign(r[1:]) <= 0)[0]
    if sign_change.size == 0:
        return float("nan")
    roots = [
        brentq(lambda x: float(symmetry_residual(x, ltp, ltd)), ws[i], ws[i + 1])
        if r[i] != 0
        else float(ws[i])
        for i in sign_change
    ]
    return float(min(roots, key=lambda x: abs(x - 0.5)))
