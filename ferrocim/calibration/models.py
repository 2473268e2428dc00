"""lmfit models of one pulse's conductance step, all built on :func:`kernel.beta_step`.

- :class:`BetaKernelModel` — ``dW = a W^(alpha-1) (1-W)^(beta-1)`` (identical pulses).
  Its nested special cases share the same function with exponents fixed:
  ``linear`` (constant step, alpha = beta = 1) and ``soft_bounds`` (step proportional to the
  distance to the bound being approached: LTP alpha=1, beta=2; LTD alpha=2, beta=1).
- :class:`AmplitudeBetaModel` — the kernel with an amplitude that grows with the write
  voltage above a switching threshold, for amplitude-ramp measurements:
  ``a_eff(V) = a * max(|V| - v_th, 0) ** p`` (``v_th`` in V, ``|V| - v_th`` taken in volts).

Bounds are declared once per model; ``guess()`` starts from a log-linear regression.
"""

from __future__ import annotations

from typing import Any

import lmfit
import numpy as np

from ferrocim.calibration.kernel import beta_step, pulse_amplitude

#: Exponent bounds shared by every kernel fit (the paper's, too).
EXP_MIN, EXP_MAX = 0.1, 10.0
#: Upper bound on the kernel amplitude (fraction of the window per pulse).
A_MAX = 10.0
#: The paper's start values of a Beta-kernel fit: (a, alpha, beta).
PAPER_START = (0.05, 2.0, 2.0)


def _log_guess(w: np.ndarray, dw: np.ndarray) -> tuple[float, float, float]:
    """(a, alpha, beta) from least squares on ln dW = ln a + (alpha-1) ln W + (beta-1) ln(1-W)."""
    w = np.clip(np.asarray(w, float), 1e-3, 1 - 1e-3)
    dw = np.asarray(dw, float)
    ok = dw > 0
    if ok.sum() < 4:
        return PAPER_START
    x = np.column_stack([np.ones(ok.sum()), np.log(w[ok]), np.log1p(-w[ok])])
    coef, *_ = np.linalg.lstsq(x, np.log(dw[ok]), rcond=None)
    a = float(np.clip(np.exp(coef[0]), 1e-6, A_MAX))
    alpha = float(np.clip(coef[1] + 1.0, EXP_MIN, EXP_MAX))
    beta = float(np.clip(coef[2] + 1.0, EXP_MIN, EXP_MAX))
    return a, alpha, beta


class BetaKernelModel(lmfit.Model):
    """The Beta kernel as an lmfit Model of the state ``w`` (before the pulse) → step size."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(beta_step, independent_vars=["w"], **kwargs)
        self.set_param_hint("a", min=0.0, max=A_MAX)
        self.set_param_hint("alpha", min=EXP_MIN, max=EXP_MAX)
        self.set_param_hint("beta", min=EXP_MIN, max=EXP_MAX)

    def guess(self, data: np.ndarray, w: np.ndarray, **kwargs: Any) -> lmfit.Parameters:
        """Start values from a log-linear regression of the positive steps."""
        a, alpha, beta = _log_guess(w, data)
        return self.make_params(a=a, alpha=alpha, beta=beta)


def amplitude_beta_step(
    w: np.ndarray,
    v: np.ndarray,
    a: float,
    alpha: float,
    beta: float,
    v_th: float,
    p: float,
) -> np.ndarray:
    """``beta_step(w, pulse_amplitude(v, a, v_th, p), alpha, beta)``; ``v`` in V."""
    return beta_step(w, pulse_amplitude(v, a, v_th, p), alpha, beta)


class AmplitudeBetaModel(lmfit.Model):
    """Beta kernel whose amplitude grows with the write voltage above ``v_th`` (V)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(amplitude_beta_step, independent_vars=["w", "v"], **kwargs)
        self.set_param_hint("a", min=0.0, max=1e3)
        self.set_param_hint("alpha", min=EXP_MIN, max=EXP_MAX)
        self.set_param_hint("beta", min=EXP_MIN, max=EXP_MAX)
        self.set_param_hint("v_th", min=0.0, max=10.0)
        self.set_param_hint("p", min=0.1, max=6.0)

    def guess(
        self, data: np.ndarray, w: np.ndarray, v: np.ndarray, **kwargs: Any
    ) -> lmfit.Parameters:
        """Threshold at the lowest |V| with a clearly positive step; exponents as the kernel."""
        a, alpha, beta = _log_guess(w, data)
        av = np.abs(np.asarray(v, float))
        d = np.asarray(data, float)
        big = d > 0.1 * np.max(d) if d.size and np.max(d) > 0 else np.ones_like(d, bool)
        v_th = float(0.9 * av[big].min()) if big.any() else float(av.min())
        drive = np.maximum(av - v_th, 0.0)
        mean_drive = float(np.mean(drive[big])) if big.any() else 1.0
        return self.make_params(
            a=a / max(mean_drive, 1e-3), alpha=alpha, beta=beta, v_th=v_th, p=1.0
        )


def make_model(name: str, kind: str) -> tuple[lmfit.Model, dict[str, float]]:
    """The model called ``name`` for ``kind`` ('ltp'/'ltd') and the exponents it fixes."""
    if name == "amplitude_beta":
        return AmplitudeBetaModel(), {}
    fixed: dict[str, float] = {}
    if name == "linear":
        fixed = {"alpha": 1.0, "beta": 1.0}
    elif name == "soft_bounds":
        fixed = {"alpha": 1.0, "beta": 2.0} if kind == "ltp" else {"alpha": 2.0, "beta": 1.0}
    elif name != "beta":
        raise ValueError(f"unknown model {name!r}")
    return BetaKernelModel(), fixed
