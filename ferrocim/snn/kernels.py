"""Fused CPU kernels of the CUBA-LIF scan (numba): one pass over memory per direction.

:func:`ferrocim.snn.functional.cuba_lif_scan` runs the neuron recursion step by step; in
eager PyTorch every step costs four tensor operations forward and about ten backward,
each a pass over the layer's neurons (the conv layers) or a few microseconds of Python
and dispatch overhead (small layers: fc1 alone in an online SSTL update at batch 1).
These kernels run the same recursion with each neuron's state in registers: forward
reads the currents once and writes ``c``, ``v`` and the spikes once; backward reads them
once and writes ``dL/dI`` once. Neurons are split into blocks; within a block the time
loop is outside the neuron loop, so every step reads and writes contiguous memory.
Large layers are split among torch's threads (see :func:`_run`).

Arithmetic is that of the eager path in the array's own dtype (float32 or float64): the
same products and sums in the same order, ``a * b + c`` contracted to a fused
multiply-add as torch's ``addcmul`` computes it (the only fast-math flag), the
threshold, window and height cast to the array dtype as torch casts a Python scalar.
Forward results (currents, voltages, spikes) are bit-identical to the eager scan
(tested); gradients agree to rounding, except that the backward gives 0 where the
eager scan's gradient is subnormal (below 1.2e-38 in float32; see :func:`lif_backward`).

Arrays are flat over neurons: ``(n, M)`` for ``n`` time steps of ``M = batch × neurons``
values, per-neuron vectors ``(M,)``.

r1 (recurrent, adaptive threshold) cannot be scanned without its matrix product between
steps; at inference :func:`adaptive_step` replaces its ~20 tensor operations per step
after the product by one call, operation for operation (bit-identical).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numba import njit

__all__ = ["PARALLEL_MIN", "adaptive_step", "lif_backward", "lif_forward", "lif_spikes"]

BLOCK = 512
"""Neurons per parallel block (a few KiB of state per array, in L1)."""
PARALLEL_MIN = 1 << 14
"""Neurons (times batch) from which the kernels run on several threads; below, one thread
(an SSTL update at batch 1 has 256: thread start-up would cost more than the work)."""


def _lif_update(c, vr, beta, gamma, current, thr):
    """One neuron, one step: ``c = beta c + I``, ``v = gamma v (1 - s) + c``, ``s = v > thr``;
    returns ``(c, v, s)`` (``vr`` is the previous ``v (1 - s)``)."""
    c = beta * c + current
    v = gamma * vr + c
    return c, v, v > thr


def _forward_block(cur, beta, gamma, c0, vr0, thr, cs, vs, spikes, lo, hi):
    n = cur.shape[0]
    c = c0[lo:hi].copy()
    vr = vr0[lo:hi].copy()
    be = beta[lo:hi]
    ga = gamma[lo:hi]
    zero = vr.dtype.type(0)
    one = vr.dtype.type(1)
    for t in range(n):
        i_t = cur[t, lo:hi]
        c_t = cs[t, lo:hi]
        v_t = vs[t, lo:hi]
        s_t = spikes[t, lo:hi]
        for k in range(hi - lo):
            ck, v, s = _update(c[k], vr[k], be[k], ga[k], i_t[k], thr)
            c[k] = ck
            c_t[k] = ck
            v_t[k] = v
            s_t[k] = one if s else zero
            vr[k] = zero if s else v


def _backward_block(
    g_spikes,
    g_c_last,
    g_v_last,
    g_s_last,
    beta,
    gamma,
    c0,
    vr0,
    cs,
    vs,
    keep,
    thr,
    window,
    height,
    tiny,
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
    be = beta[lo:hi]
    ga = gamma[lo:hi]
    kp = keep[lo:hi]
    for t in range(n - 1, -1, -1):
        gs_t = g_spikes[t, lo:hi]
        v_t = vs[t, lo:hi]
        gc_t = g_cur[t, lo:hi]
        # the last step also receives the gradients of the returned state (+ 0 elsewhere)
        ev = g_v_last[lo:hi] if t == n - 1 else zeros
        ec = g_c_last[lo:hi] if t == n - 1 else zeros
        es = g_s_last[lo:hi] if t == n - 1 else zeros
        # spikes are recomputed, s = v > thr (the forward's test, exactly); before the
        # first step vr0 = v0 (1 - s0) already holds the reset
        first = t == 0
        if t > 0:
            c_p = cs[t - 1, lo:hi]
            v_p = vs[t - 1, lo:hi]
        else:
            c_p = c0[lo:hi]
            v_p = vr0[lo:hi]
        for k in range(m):
            v = v_t[k]
            h = height * dt((abs(v - thr) < window) & kp[k])
            a = ga[k] * gv_next[k]
            gs = (gs_t[k] + es[k]) - ga[k] * v * gv_next[k]  # dL/ds_t
            gv = h * gs + (dt(0) if v > thr else a) + ev[k]  # + gamma (1 - s_t) dL/dv'
            gc = gv + be[k] * gc_next[k] + ec[k]
            # a gradient that has decayed below the smallest normal float becomes 0, not
            # a subnormal (see lif_backward)
            if abs(gv) < tiny:
                gv = dt(0)
            if abs(gc) < tiny:
                gc = dt(0)
            gc_t[k] = gc
            gb[k] += gc * c_p[k]  # dL/dbeta = sum_t gc_t c_{t-1}
            vp = v_p[k]
            gg[k] += gv * (vp if first or not vp > thr else dt(0))  # v_{t-1} (1 - s_{t-1})
            gv_next[k] = gv
            gc_next[k] = gc
    g_v0[lo:hi] = gv_next
    g_beta[lo:hi] = gb
    g_gamma[lo:hi] = gg


def _spikes_block(cur, beta, gamma, c0, vr0, thr, spikes, c_last, v_last, lo, hi):
    """:func:`_forward_block` keeping only the spikes (as floats) and the last state."""
    n = cur.shape[0]
    c = c0[lo:hi].copy()
    vr = vr0[lo:hi].copy()
    v = vr0[lo:hi].copy()
    be = beta[lo:hi]
    ga = gamma[lo:hi]
    zero = vr.dtype.type(0)
    one = vr.dtype.type(1)
    for t in range(n):
        i_t = cur[t, lo:hi]
        s_t = spikes[t, lo:hi]
        for k in range(hi - lo):
            ck, vk, s = _update(c[k], vr[k], be[k], ga[k], i_t[k], thr)
            c[k] = ck
            v[k] = vk
            s_t[k] = one if s else zero
            vr[k] = zero if s else vk
    c_last[lo:hi] = c
    v_last[lo:hi] = v


def _adaptive_step(inp, cur, beta, gamma, mask, state, inc, decay, base, spikes):
    """One step of :func:`adaptive_step` (the state ``(4, B, H)`` advanced in place)."""
    dt = inp.dtype.type
    c, v, s, th = state[0], state[1], state[2], state[3]
    for b in range(inp.shape[0]):
        cb, vb, sb, tb, mb, out = c[b], v[b], s[b], th[b], mask[b], spikes[b]
        for k in range(inp.shape[1]):
            i = inp[b, k] + cur[b, k]
            ck = (beta[k] * cb[k] + i) * mb[k]
            vk = gamma[k] * vb[k] * (dt(1) - sb[k]) + ck
            fired = vk - tb[k] > 0
            cb[k] = ck
            vb[k] = vk
            sb[k] = dt(1) if fired else dt(0)
            out[k] = sb[k]
            tb[k] = tb[k] + inc if fired else max(decay * tb[k], base)


_update = njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")(_lif_update)
_fwd_block = njit(cache=True, nogil=True, fastmath={"contract"})(_forward_block)
_spk_block = njit(cache=True, nogil=True, fastmath={"contract"})(_spikes_block)
_bwd_block = njit(cache=True, nogil=True, fastmath={"contract"})(_backward_block)
# no fast-math: the products and sums of the eager step, one rounding each
_adaptive_step_nb = njit(cache=True, nogil=True)(_adaptive_step)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _forward_range(lo, hi, cur, beta, gamma, c0, vr0, thr, cs, vs, spikes):
    for b in range(lo, hi, BLOCK):
        _fwd_block(cur, beta, gamma, c0, vr0, thr, cs, vs, spikes, b, min(hi, b + BLOCK))


@njit(cache=True, nogil=True, fastmath={"contract"})
def _spikes_range(lo, hi, cur, beta, gamma, c0, vr0, thr, spikes, c_last, v_last):
    for b in range(lo, hi, BLOCK):
        _spk_block(cur, beta, gamma, c0, vr0, thr, spikes, c_last, v_last, b, min(hi, b + BLOCK))


@njit(cache=True, nogil=True, fastmath={"contract"})
def _backward_range(lo, hi, g_s, g_cl, g_vl, g_sl, be, ga, c0, vr0, cs, vs, keep, thr, win,
                    height, tiny, g_cur, g_v0, g_beta, g_gamma):  # fmt: skip
    for b in range(lo, hi, BLOCK):
        _bwd_block(g_s, g_cl, g_vl, g_sl, be, ga, c0, vr0, cs, vs, keep, thr, win, height,
                   tiny, g_cur, g_v0, g_beta, g_gamma, b, min(hi, b + BLOCK))  # fmt: skip


_pool: list[tuple[int, ThreadPoolExecutor]] = []  # (threads, pool) once one is needed


def _run(kernel: Any, m: int, *args: Any) -> None:
    """``kernel(lo, hi, *args)`` over the neuron range ``[0, m)``: in the calling thread
    when ``m < PARALLEL_MIN`` or torch uses one thread, else split into as many contiguous
    ranges as torch has threads (``configure_threads``), run by a thread pool (the
    kernels release the GIL). Plain threads, not numba's parallel layer: that one resets
    the OpenMP thread count torch shares (measured: two trainings at once 5× slower)."""
    n = torch.get_num_threads()
    if m < PARALLEL_MIN or n == 1:
        kernel(0, m, *args)
        return
    if not _pool or _pool[0][0] != n:
        if _pool:
            _pool[0][1].shutdown(wait=False)
        _pool[:] = [(n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="ferrocim-lif"))]
    pool = _pool[0][1]
    step = -(-m // n // BLOCK) * BLOCK  # ceil(m / n), rounded up to whole blocks
    futures = [pool.submit(kernel, lo, min(m, lo + step), *args) for lo in range(0, m, step)]
    for f in futures:
        f.result()


def lif_forward(
    cur: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    c0: np.ndarray,
    vr0: np.ndarray,
    threshold: float,
    cs: np.ndarray,
    vs: np.ndarray,
    spikes: np.ndarray,
) -> None:
    """Scan ``n`` steps: fills ``cs``, ``vs`` and ``spikes`` (0/1) ``(n, M)`` in place.

    ``cur``: currents ``(n, M)``; ``beta``, ``gamma``: decays ``(M,)``; ``c0``: current
    before the first step; ``vr0``: voltage after the reset before the first step,
    ``v0 (1 - s0)``. All float arrays share one dtype; ``threshold`` in model units.
    """
    thr = cur.dtype.type(threshold)
    _run(_forward_range, cur.shape[1], cur, beta, gamma, c0, vr0, thr, cs, vs, spikes)


def lif_spikes(
    cur: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    c0: np.ndarray,
    vr0: np.ndarray,
    threshold: float,
    spikes: np.ndarray,
    c_last: np.ndarray,
    v_last: np.ndarray,
) -> None:
    """:func:`lif_forward` without a backward pass to come (inference): fills ``spikes``
    ``(n, M)`` with 0/1 in the currents' dtype and the state after the last step,
    ``c_last`` and ``v_last`` ``(M,)``; no per-step currents or voltages are stored."""
    thr = cur.dtype.type(threshold)
    _run(_spikes_range, cur.shape[1], cur, beta, gamma, c0, vr0, thr, spikes, c_last, v_last)


def lif_backward(
    g_spikes: np.ndarray,
    g_c_last: np.ndarray,
    g_v_last: np.ndarray,
    g_s_last: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    c0: np.ndarray,
    vr0: np.ndarray,
    cs: np.ndarray,
    vs: np.ndarray,
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

    Inputs: ``dL/ds`` ``(n, M)``, ``dL/dc``, ``dL/dv`` and ``dL/ds`` of the returned last
    state ``(M,)`` (the latter added to the last step's ``dL/ds``), the
    forward's inputs and outputs, ``keep`` (bool ``(M,)``: False where dropout zeroes the
    surrogate). Fills ``g_cur`` = dL/dI ``(n, M)``, ``g_v0`` = dL/dv at the first step,
    and the per-value (unreduced) ``g_beta``, ``g_gamma`` ``(M,)``.

    Gradients that decay below the dtype's smallest normal number (``finfo.tiny``,
    1.2e-38 in float32) are set to 0 instead of becoming subnormal. Between surrogate
    windows ``dL/dv`` and ``dL/dc`` shrink geometrically (``gamma``, ``beta`` per step),
    and a few per cent of a conv layer's ``dL/dI`` ended subnormal: every later product
    with them (the conv's weight and input gradients) ran on the CPU's slow subnormal
    path (measured: a full-width training step at batch 64, one thread, 4.7 → 3.7 s).
    Flushing changes each such value by less than 1.2e-38 in absolute terms (the eager
    scan keeps them).
    ``torch.set_flush_denormal`` is no substitute: it sets only the calling thread.
    """
    dt = cs.dtype.type
    tiny = dt(np.finfo(cs.dtype).tiny)
    _run(
        _backward_range, cs.shape[1], g_spikes, g_c_last, g_v_last, g_s_last, beta, gamma, c0, vr0,
        cs, vs, keep, dt(threshold), dt(window), dt(height), tiny, g_cur, g_v0, g_beta,
        g_gamma,
    )  # fmt: skip


def adaptive_step(
    inputs: np.ndarray,
    recurrent: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    mask: np.ndarray,
    state: np.ndarray,
    increment: float,
    decay: float,
    base: float,
    spikes: np.ndarray,
) -> None:
    """One step of r1 without a backward pass to come (its Python loop calls this once
    per step after the recurrent matrix product).

    ``inputs`` and ``recurrent`` ``(B, H)``: the input and ``F.linear(s_{t-1}, W, b)``;
    ``beta``, ``gamma`` ``(H,)``; ``mask`` ``(B, H)`` (ones without dropout); ``state``
    ``(4, B, H)``: ``c``, ``v``, ``s``, ``th``, advanced in place; ``spikes`` ``(B, H)``
    gets the 0/1 spikes. As :func:`ferrocim.snn.functional.adaptive_lif_step`, operation
    for operation (no fused multiply-add): ``c = (beta c + I) m``,
    ``v = gamma v (1 - s) + c``, ``s = v - th > 0``, ``th = th + increment`` where it
    fired else ``max(decay th, base)``.
    """
    dt = inputs.dtype.type
    _adaptive_step_nb(
        inputs, recurrent, beta, gamma, mask, state, dt(increment), dt(decay), dt(base), spikes
    )
