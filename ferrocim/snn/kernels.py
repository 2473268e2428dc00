"""Fused CPU kernels of the CUBA-LIF scan (numba): one pass over memory per direction.

:func:`ferrocim.snn.functional.cuba_lif_scan` runs the neuron recursion step by step; in
eager PyTorch every step costs four tensor operations forward and about ten backward,
each a pass over the layer's neurons (the conv layers) or a few microseconds of Python
and dispatch overhead (small layers: fc1 alone in an online SSTL update at batch 1).
These kernels run the same recursion with each neuron's state in registers: forward
reads the currents once and writes ``c``, ``v`` and the spikes once; backward reads them
once and writes ``dL/dI`` once. Neurons are split into blocks run in parallel
(``numba.prange``); within a block the time loop is outside the neuron loop, so every
step reads and writes contiguous memory.

Arithmetic is that of the eager path in the array's own dtype (float32 or float64, no
fast-math): products and sums in the same order, the threshold, window and height cast
to the array dtype as torch casts a Python scalar. Forward results (currents, voltages,
spikes) are bit-identical to the eager scan (tested); gradients agree to rounding.

Arrays are flat over neurons: ``(n, M)`` for ``n`` time steps of ``M = batch × neurons``
values, per-neuron vectors ``(M,)``.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

__all__ = ["PARALLEL_MIN", "lif_backward", "lif_forward", "set_kernel_threads"]

BLOCK = 512
"""Neurons per parallel block (a few KiB of state per array, in L1)."""
PARALLEL_MIN = 1 << 14
"""Neurons per step from which the kernels run on several threads; below, one thread
(an SSTL update at batch 1 has 256: thread start-up would cost more than the work)."""


def set_kernel_threads(n: int) -> None:
    """Threads of the parallel kernels (:func:`ferrocim.threads.configure_threads` calls it)."""
    n = max(1, int(n))
    if get_num_threads() != n:
        set_num_threads(n)


def _forward_block(cur, beta, gamma, c0, vr0, thr, cs, vs, fired, lo, hi):
    n = cur.shape[0]
    c = c0[lo:hi].copy()
    vr = vr0[lo:hi].copy()
    be = beta[lo:hi]
    ga = gamma[lo:hi]
    zero = vr.dtype.type(0)
    for t in range(n):
        i_t = cur[t, lo:hi]
        c_t = cs[t, lo:hi]
        v_t = vs[t, lo:hi]
        f_t = fired[t, lo:hi]
        for k in range(hi - lo):
            ck = be[k] * c[k] + i_t[k]  # c = beta c + I
            v = ga[k] * vr[k] + ck  # v = gamma v (1 - s) + c
            s = v > thr
            c[k] = ck
            c_t[k] = ck
            v_t[k] = v
            f_t[k] = s
            vr[k] = zero if s else v


def _backward_block(
    g_spikes,
    g_c_last,
    g_v_last,
    beta,
    gamma,
    c0,
    vr0,
    cs,
    vs,
    fired,
    keep,
    thr,
    window,
    height,
    g_cur,
    g_v0,
    g_beta,
    g_gamma,
    lo,
    hi,
):
    n = cs.shape[0]
    m = hi - lo
    dt = cs.dtype.type
    gv_next = np.zeros(m, cs.dtype)
    gc_next = np.zeros(m, cs.dtype)
    gb = np.zeros(m, cs.dtype)
    gg = np.zeros(m, cs.dtype)
    zeros = np.zeros(m, cs.dtype)
    no_spike = np.zeros(m, np.bool_)
    be = beta[lo:hi]
    ga = gamma[lo:hi]
    kp = keep[lo:hi]
    for t in range(n - 1, -1, -1):
        gs_t = g_spikes[t, lo:hi]
        v_t = vs[t, lo:hi]
        f_t = fired[t, lo:hi]
        gc_t = g_cur[t, lo:hi]
        # the last step also receives the gradients of the returned state (+ 0 elsewhere)
        ev = g_v_last[lo:hi] if t == n - 1 else zeros
        ec = g_c_last[lo:hi] if t == n - 1 else zeros
        if t > 0:
            c_p = cs[t - 1, lo:hi]
            v_p = vs[t - 1, lo:hi]
            f_p = fired[t - 1, lo:hi]
        else:
            c_p = c0[lo:hi]
            v_p = vr0[lo:hi]
            f_p = no_spike
        for k in range(m):
            v = v_t[k]
            h = height * dt((abs(v - thr) < window) & kp[k])
            a = ga[k] * gv_next[k]
            gs = gs_t[k] - ga[k] * v * gv_next[k]  # dL/ds_t
            gv = h * gs + (dt(0) if f_t[k] else a) + ev[k]  # + gamma (1 - s_t) dL/dv'
            gc = gv + be[k] * gc_next[k] + ec[k]
            gc_t[k] = gc
            gb[k] += gc * c_p[k]  # dL/dbeta = sum_t gc_t c_{t-1}
            gg[k] += gv * (dt(0) if f_p[k] else v_p[k])  # dL/dgamma: v_{t-1} (1 - s_{t-1})
            gv_next[k] = gv
            gc_next[k] = gc
    g_v0[lo:hi] = gv_next
    g_beta[lo:hi] = gb
    g_gamma[lo:hi] = gg


_fwd_block = njit(cache=True, nogil=True)(_forward_block)
_bwd_block = njit(cache=True, nogil=True)(_backward_block)


@njit(parallel=True, cache=True, nogil=True)
def _forward_parallel(cur, beta, gamma, c0, vr0, thr, cs, vs, fired):
    M = cur.shape[1]
    for b in prange((M + BLOCK - 1) // BLOCK):
        _fwd_block(
            cur, beta, gamma, c0, vr0, thr, cs, vs, fired, b * BLOCK, min(M, b * BLOCK + BLOCK)
        )


@njit(cache=True, nogil=True)
def _forward_serial(cur, beta, gamma, c0, vr0, thr, cs, vs, fired):
    _fwd_block(cur, beta, gamma, c0, vr0, thr, cs, vs, fired, 0, cur.shape[1])


@njit(parallel=True, cache=True, nogil=True)
def _backward_parallel(
    g_spikes,
    g_c_last,
    g_v_last,
    beta,
    gamma,
    c0,
    vr0,
    cs,
    vs,
    fired,
    keep,
    thr,
    window,
    height,
    g_cur,
    g_v0,
    g_beta,
    g_gamma,
):
    M = cs.shape[1]
    for b in prange((M + BLOCK - 1) // BLOCK):
        _bwd_block(
            g_spikes,
            g_c_last,
            g_v_last,
            beta,
            gamma,
            c0,
            vr0,
            cs,
            vs,
            fired,
            keep,
            thr,
            window,
            height,
            g_cur,
            g_v0,
            g_beta,
            g_gamma,
            b * BLOCK,
            min(M, b * BLOCK + BLOCK),
        )


@njit(cache=True, nogil=True)
def _backward_serial(
    g_spikes,
    g_c_last,
    g_v_last,
    beta,
    gamma,
    c0,
    vr0,
    cs,
    vs,
    fired,
    keep,
    thr,
    window,
    height,
    g_cur,
    g_v0,
    g_beta,
    g_gamma,
):
    _bwd_block(
        g_spikes,
        g_c_last,
        g_v_last,
        beta,
        gamma,
        c0,
        vr0,
        cs,
        vs,
        fired,
        keep,
        thr,
        window,
        height,
        g_cur,
        g_v0,
        g_beta,
        g_gamma,
        0,
        cs.shape[1],
    )


def lif_forward(
    cur: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    c0: np.ndarray,
    vr0: np.ndarray,
    threshold: float,
    cs: np.ndarray,
    vs: np.ndarray,
    fired: np.ndarray,
) -> None:
    """Scan ``n`` steps: fills ``cs``, ``vs`` ``(n, M)`` and ``fired`` (bool) in place.

    ``cur``: currents ``(n, M)``; ``beta``, ``gamma``: decays ``(M,)``; ``c0``: current
    before the first step; ``vr0``: voltage after the reset before the first step,
    ``v0 (1 - s0)``. All float arrays share one dtype; ``threshold`` in model units.
    """
    thr = cur.dtype.type(threshold)
    kernel = _forward_parallel if cur.shape[1] >= PARALLEL_MIN else _forward_serial
    kernel(cur, beta, gamma, c0, vr0, thr, cs, vs, fired)


def lif_backward(
    g_spikes: np.ndarray,
    g_c_last: np.ndarray,
    g_v_last: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    c0: np.ndarray,
    vr0: np.ndarray,
    cs: np.ndarray,
    vs: np.ndarray,
    fired: np.ndarray,
    keep: np.ndarray,
    threshold: float,
    window: float,
    height: float,
    g_cur: np.ndarray,
    g_v0: np.ndarray,
    g_beta: np.ndarray,
    g_gamma: np.ndarray,
) -> None:
    """Backpropagation through the scan of :func:`lif_forward` (see ``_LIFScan``).

    Inputs: ``dL/ds`` ``(n, M)``, ``dL/dc`` and ``dL/dv`` of the last step ``(M,)``, the
    forward's inputs and outputs, ``keep`` (bool ``(M,)``: False where dropout zeroes the
    surrogate). Fills ``g_cur`` = dL/dI ``(n, M)``, ``g_v0`` = dL/dv at the first step,
    and the per-value (unreduced) ``g_beta``, ``g_gamma`` ``(M,)``.
    """
    dt = cs.dtype.type
    kernel = _backward_parallel if cs.shape[1] >= PARALLEL_MIN else _backward_serial
    kernel(
        g_spikes,
        g_c_last,
        g_v_last,
        beta,
        gamma,
        c0,
        vr0,
        cs,
        vs,
        fired,
        keep,
        dt(threshold),
        dt(window),
        dt(height),
        g_cur,
        g_v0,
        g_beta,
        g_gamma,
    )
