"""Pure tensor functions of the crossbar: mapping, pulse rules, kernel steps, transfer.

Notation: ``W`` normalised conductance of an active device in [0, 1];
``W_ref`` its reference device; ``w_max`` the layer bound (``A = 1/sqrt(fan_in)`` in the
paper; not to be confused with the kernel amplitudes ``a_ltp``/``a_ltd``). The weight read
from a pair is ``w = (g_offset + g_gain * W - W_ref) * 2 * w_max * scale`` clamped to
``±w_max`` (``g_offset = 0``, ``g_gain = 1`` for a nominal device, ``scale = 1`` by default),
so with a mid reference ``w = (W - 0.5) * 2 * w_max`` and ``W = (w + w_max) / (2 w_max)``.

As published, a device state may use all of [0, 1] (the weight all of ``±w_max``) and only
the kernel is evaluated at ``W`` clamped to [0.01, 0.99]. ``state_clamp=True`` is
ferrocim's option that also keeps the state inside [0.01, 0.99] (weights ``±0.98 w_max``).

Every function is device-agnostic; random draws come from an explicit generator and are
taken on the generator's device, then moved to the data's device.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ferrocim.calibration.kernel import W_HIGH, W_LOW, beta_step
from ferrocim.checks import InputError

Tensor = torch.Tensor


def randn_like_on(
    ref: Tensor, generator: torch.Generator | None, shape: tuple[int, ...] | None = None
) -> Tensor:
    """Standard normal draws shaped like ``ref`` (or ``shape``), from ``generator``.

    Drawn on the generator's device (CPU when ``generator`` is None) and moved to ``ref``'s
    device, so a CPU generator gives the same numbers for CPU and CUDA tensors.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    out = torch.randn(
        ref.shape if shape is None else shape, generator=generator, device=gdev, dtype=ref.dtype
    )
    return out if out.device == ref.device else out.to(ref.device)


# ---- mapping ----
def conductance_to_weight(
    w_state: Tensor,
    w_ref: Tensor | float,
    w_max: float,
    *,
    g_offset: Tensor | float = 0.0,
    g_gain: Tensor | float = 1.0,
    scale: float = 1.0,
    clip: bool = True,
) -> Tensor:
    """Weight read from active/reference pairs, clamped to ``±w_max`` (unless ``clip`` is
    false: the per-device symmetry reference keeps the whole window)."""
    g = w_state if isinstance(g_gain, float) and g_gain == 1.0 else w_state * g_gain
    if not (isinstance(g_offset, float) and g_offset == 0.0):
        g = g + g_offset
    w = (g - w_ref) * (2.0 * w_max * scale)
    return w.clamp_(-w_max, w_max) if clip else w


def weight_to_conductance(
    w: Tensor,
    w_ref: Tensor | float,
    w_max: float,
    *,
    g_offset: Tensor | float = 0.0,
    g_gain: Tensor | float = 1.0,
    scale: float = 1.0,
    state_clamp: bool = False,
) -> Tensor:
    """Normalised conductance that stores ``w`` (inverse mapping), clipped to [0, 1]
    (to [0.01, 0.99] with ``state_clamp``).

    With a mid reference this is ``W = (w + w_max) / (2 w_max)``.
    """
    target = w.clamp(-w_max, w_max) / (2.0 * w_max * scale) + w_ref
    low, high = (W_LOW, W_HIGH) if state_clamp else (0.0, 1.0)
    return ((target - g_offset) / g_gain).clamp_(low, high)


def state_bounds(
    w_ref: Tensor | float,
    *,
    g_offset: Tensor | float = 0.0,
    g_gain: Tensor | float = 1.0,
    scale: float = 1.0,
    window: Tensor | float = 1.0,
    state_clamp: bool = False,
    weight_clip: bool = True,
) -> tuple[Tensor | float, Tensor | float]:
    """Interval of ``W`` a pulse may reach: [0, 1] ([0.01, 0.99] with ``state_clamp``)
    shrunk by ``window`` around 0.5, intersected with the states whose weight stays inside
    ``±w_max`` (not intersected when ``weight_clip`` is false)."""
    half = (W_HIGH - W_LOW) / 2.0 if state_clamp else 0.5
    low = 0.5 - half * window
    high = 0.5 + half * window
    if not weight_clip:
        return low, high
    lo_w = (w_ref - 0.5 / scale - g_offset) / g_gain
    hi_w = (w_ref + 0.5 / scale - g_offset) / g_gain
    if isinstance(low, float) and isinstance(lo_w, float):
        return max(low, lo_w), min(high, hi_w)
    return torch.maximum(torch.as_tensor(low), torch.as_tensor(lo_w)), torch.minimum(
        torch.as_tensor(high), torch.as_tensor(hi_w)
    )


def device_symmetry_points(
    params: Tensor, fallback: float, *, grid: int = 1001, chunk: int = 8192
) -> Tensor:
    """Symmetry point W* of every device: where its LTP and LTD kernel steps are equal.

    ``params`` holds the rows ``a_ltp, alpha_ltp, beta_ltp, a_ltd, alpha_ltd, beta_ltd``
    (amplitudes effective) of ``n`` devices, shape ``(>=6, n)``. The residual
    ``ln(a_p/a_d) + (alpha_p - alpha_d) ln W + (beta_p - beta_d) ln(1 - W)`` is bracketed on
    a grid of (0, 1) (the sign change closest to 0.5, as
    :func:`ferrocim.calibration.kernel.symmetry_point`) and refined by 60 bisections;
    a device whose steps are never equal gets ``fallback``. Float64, shape ``(n,)``.
    """
    p = params[:6].to(torch.float64)
    n = p.shape[1]
    ws = torch.linspace(1e-6, 1.0 - 1e-6, grid, dtype=torch.float64, device=p.device)
    lw, l1w = torch.log(ws).unsqueeze(1), torch.log1p(-ws).unsqueeze(1)
    mid = 0.5 * (ws[:-1] + ws[1:])
    out = torch.full((n,), float(fallback), dtype=torch.float64, device=p.device)
    for start in range(0, n, chunk):
        q = p[:, start : start + chunk]
        c0 = torch.log(q[0] / q[3])
        c1, c2 = q[1] - q[4], q[2] - q[5]
        r = c0 + c1 * lw + c2 * l1w  # (grid, k)
        change = torch.sign(r[:-1]) * torch.sign(r[1:]) <= 0
        dist = torch.where(change, (mid - 0.5).abs().unsqueeze(1), torch.inf)
        has = change.any(0)
        i = dist.argmin(0)
        lo, hi = ws[i], ws[i + 1]
        r_lo = r.gather(0, i.unsqueeze(0)).squeeze(0)
        for _ in range(60):
            m = 0.5 * (lo + hi)
            r_m = c0 + c1 * torch.log(m) + c2 * torch.log1p(-m)
            left = torch.sign(r_m) * torch.sign(r_lo) <= 0
            hi = torch.where(left, m, hi)
            lo, r_lo = torch.where(left, lo, m), torch.where(left, r_lo, r_m)
        out[start : start + chunk] = torch.where(has, 0.5 * (lo + hi), out[start : start + chunk])
    return out


# ---- pulse rule ----
def thresholds(w_max: float, eps: float, thr_asym: float = 1.0) -> tuple[float, float]:
    """``(thr_ltp, thr_ltd) = (eps * 2 w_max, eps * thr_asym * 2 w_max)`` in weight units."""
    return eps * 2.0 * w_max, eps * thr_asym * 2.0 * w_max


def pulse_decision(
    acc: Tensor, thr_ltp: float, thr_ltd: float, max_pulses: int | None = 1
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The paper's threshold rule on an accumulated float update ``acc`` (weight units).

    Returns ``(n_ltp, n_ltd, fire_ltp, fire_ltd, new_acc)``: crossings
    ``n = floor(acc / thr)`` on each side (``floor(-acc / thr_ltd)`` for LTD), pulses to fire
    ``min(n, max_pulses)`` (all crossings when ``max_pulses`` is None), and the accumulator
    debited by *all* crossings. Counts are returned in ``acc``'s dtype (exact integers).
    """
    n_ltp = torch.div(acc, thr_ltp).floor_().clamp_(min=0.0)
    n_ltd = torch.div(acc, -thr_ltd).floor_().clamp_(min=0.0)
    new_acc = acc - n_ltp * thr_ltp + n_ltd * thr_ltd
    if max_pulses is None:
        return n_ltp, n_ltd, n_ltp.clone(), n_ltd.clone(), new_acc
    return n_ltp, n_ltd, n_ltp.clamp(max=max_pulses), n_ltd.clamp(max=max_pulses), new_acc


def scale_amplitudes(
    params: Tensor | tuple[Any, ...], a_scale: float, a_asym: float
) -> Tensor | tuple[Any, ...]:
    """``params`` with the effective kernel amplitudes: ``a_ltp * a_scale`` and
    ``a_ltd * (a_scale * a_asym)`` (rows 0 and 3; the one place this product is formed).

    ``params`` is a sequence of floats or 0-dim tensors, or a tensor with the parameter
    rows first; returned unchanged when both factors are 1.
    """
    if a_scale == 1.0 and a_asym == 1.0:
        return params
    rows = list(params)
    rows[0] = rows[0] * a_scale
    rows[3] = rows[3] * (a_scale * a_asym)
    return tuple(rows)


def kernel_step(
    w_state: Tensor,
    is_ltp: Tensor,
    params: Tensor | tuple[float, ...],
    *,
    a_noise: Tensor | None = None,
) -> Tensor:
    """Signed change of ``W`` for one pulse: ``+beta_step`` (LTP) or ``-beta_step`` (LTD).

    ``is_ltp`` is a bool tensor or a 0/1 float tensor (1 = LTP). ``params`` holds the
    per-device rows ``a_ltp, alpha_ltp, beta_ltp, a_ltd, alpha_ltd, beta_ltd`` first (a
    tensor of shape ``(>=6, *w_state.shape)``, or a sequence of floats shared by all
    devices), amplitudes already effective (:func:`scale_amplitudes`). The amplitude is
    times ``1 + a_noise`` when given (cycle-to-cycle noise, already times its relative s.d.).
    The polarity's parameters are picked by exact 0/1 blending, so the step is
    :func:`beta_step` of that polarity to the last bit. The kernel is evaluated at ``W``
    clamped to [0.01, 0.99] (the published rule; the state itself may be anywhere in [0, 1]).
    """
    s = is_ltp.to(w_state.dtype)
    ns = 1.0 - s
    a = s * params[0] + ns * params[3]
    if a_noise is not None:
        a = a * (1.0 + a_noise)
    alpha = s * params[1] + ns * params[4]
    beta = s * params[2] + ns * params[5]
    wc = w_state.clamp(W_LOW, W_HIGH)
    return beta_step(wc, a, alpha, beta) * (s - ns)


def apply_pulses(
    w_state: Tensor,
    fire_ltp: Tensor,
    fire_ltd: Tensor,
    params: Tensor | tuple[float, ...],
    *,
    rsd_ltp: float = 0.0,
    rsd_ltd: float = 0.0,
    low: Tensor | float = 0.0,
    high: Tensor | float = 1.0,
    stuck: Tensor | None = None,
    generator: torch.Generator | None = None,
    max_rounds: int | None = None,
    all_fire: bool = False,
) -> Tensor:
    """Normalised conductance after firing ``fire_ltp``/``fire_ltd`` pulses per device.

    Pulses are applied one after the other, each with the kernel at the device's current
    ``W`` and its own cycle-to-cycle amplitude draw ``a ~ N(a, (rsd a)^2)``; the state is
    clipped to ``[low, high]`` after every pulse. ``stuck`` devices do not move. At most one
    of ``fire_ltp``/``fire_ltd`` (integer-valued float tensors) is non-zero per device.
    When any rsd is non-zero, one normal draw of ``w_state``'s shape is taken per pulse
    round from ``generator``.

    ``max_rounds`` (an upper bound on pulses per device) and ``all_fire`` (a promise that
    every device fires at least once) only save work.
    """
    if w_state.numel() == 0:
        return w_state.clone()
    fire = fire_ltp + fire_ltd
    if max_rounds is None:
        max_rounds = int(fire.max().item())
    is_ltp = fire_ltp.clamp(max=1.0)
    noisy = rsd_ltp > 0.0 or rsd_ltd > 0.0
    w = w_state
    for k in range(max_rounds):
        noise = None
        if noisy:
            xi = randn_like_on(w, generator)
            if rsd_ltp == rsd_ltd:
                noise = xi * rsd_ltp
            else:
                noise = xi * (is_ltp * rsd_ltp + (1.0 - is_ltp) * rsd_ltd)
        dw = kernel_step(w, is_ltp, params, a_noise=noise)
        w_new = torch.clamp(w + dw, low, high)
        w = w_new if (k == 0 and all_fire) else torch.where(fire > k, w_new, w)
    if stuck is not None:
        w = torch.where(stuck, w_state, w)
    return w if w is not w_state else w_state.clone()


# ---- transfer of float weights ----
def quantize_symmetric(w: Tensor, w_max: float, q: int) -> Tensor:
    """Symmetric uniform quantisation to ``q + 1`` levels including 0.

    Levels are ``k * step`` with ``step = w_max / (q / 2)`` and ``k = -q/2 … q/2``; values are
    clipped to ``±w_max`` and rounded half away from zero. ``q`` is a positive even integer
    (the paper uses 2, 4, 8, 16, 32 → 3, 5, 9, 17, 33 levels).

    The published quantiser rounds without clipping, so a float weight beyond ``±w_max``
    could land on an extra level (``±1.5 w_max``, ``±2 w_max`` …). On the array no weight
    can leave ``±w_max`` (the devices hold it), so here the clip comes first; for weights
    already inside ``±w_max`` — every device weight, hence every re-quantisation during
    training — both give the same levels.
    """
    if isinstance(q, bool) or not isinstance(q, int) or q < 2 or q % 2:
        raise InputError(f"'q' must be a positive even integer (2, 4, 8, 16, 32), got {q!r}")
    half = q // 2
    step = w_max / half
    x = w.clamp(-w_max, w_max) / step
    k = torch.sign(x) * torch.floor(x.abs() + 0.5)
    return k.clamp_(-half, half) * step


def programming_noise(
    w: Tensor, w_max: float, x: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Add Gaussian programming noise of s.d. ``mean(|w| over non-zero w) / x``, clamp ±w_max.

    A layer whose weights are all zero gets no noise.
    """
    if not (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0):
        raise InputError(f"'x' (programming-noise divisor) must be a number > 0, got {x!r}")
    nz = w != 0
    count = int(nz.sum().item())
    if count == 0:
        return w.clone()
    sd = w.abs().sum() / count / x
    return (w + sd * randn_like_on(w, generator)).clamp_(-w_max, w_max)


# ---- endurance ----
def window_factor(cycles: Tensor, loss_per_decade: float, lifetime_scale: float = 1.0) -> Tensor:
    """Remaining fraction of the memory window after ``cycles`` pulses:
    ``clamp(1 - loss * log10(max(cycles / lifetime_scale, 1)), 0, 1)``."""
    c = (cycles.to(torch.float64) / lifetime_scale).clamp_(min=1.0)
    return (1.0 - loss_per_decade * torch.log10(c)).clamp_(0.0, 1.0)


def draw_lifetimes(
    shape: tuple[int, ...],
    cycles_median: float,
    log10_sd: float,
    *,
    lifetime_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-device lifetimes (pulses), lognormal: ``log10 L ~ N(log10 median, log10_sd^2)``,
    times ``lifetime_scale``; float64."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    xi = torch.randn(shape, generator=generator, device=gdev, dtype=torch.float64)
    return (10.0 ** (math.log10(cycles_median) + log10_sd * xi)) * lifetime_scale
