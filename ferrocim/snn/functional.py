"""Pure CUBA-LIF neuron maths: surrogate spike, one step, and a scan over time.

Everything here is a plain function of tensors (Norse style): ``(input, state, params) ->
(output, new_state)``. Modules in :mod:`ferrocim.snn.modules` only bind parameters.

Units. Time is counted in *time steps* (one step = one EEG sample = 1/160 s for the
network of the paper); the decays ``beta`` (synaptic current) and ``gamma`` (membrane
voltage) are dimensionless factors per step in (0, 1]. Currents, voltages and thresholds
are in the model's own dimensionless units (the threshold is 0.1 of them).

The neuron (one step, ``s`` the spike of the previous step, ``m`` an optional dropout
mask drawn once per sequence)::

    c = (beta * c + I) * m          # m = 1 without dropout; compounds over time
    v = gamma * v * (1 - s) + c
    s = H(v - threshold)            # spike when v > threshold (strictly)

Surrogate gradient (the published EEG-Ferro ``PseudoSpikeRect``): rectangular, height
``surrogate_height`` on a window of half-width ``surrogate_window`` around the threshold,
``ds/dv = height if |v - threshold| < window else 0`` (0.3 and 0.3: not unit area), and
zero where the dropout mask is zero. Gradients flow through the reset term ``(1 - s)``;
the adaptive threshold of r1 is treated as a constant by autograd (see
:func:`adaptive_lif_step`). The step-by-step loop and the time-parallel path are the same
maths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from ferrocim.checks import check_option

__all__ = [
    "AdaptiveLIFState",
    "LIFParameters",
    "LIFState",
    "ThresholdAdaptation",
    "adaptive_lif_step",
    "adaptive_recurrent_scan",
    "cuba_lif_scan",
    "cuba_lif_step",
    "init_adaptive_state",
    "init_state",
    "spike_fn",
    "surrogate",
]


class LIFParameters(NamedTuple):
    """Parameters of a population of CUBA-LIF neurons.

    beta: synaptic-current decay per time step (dimensionless, broadcastable to the
        neuron shape). gamma: membrane-voltage decay per time step (dimensionless).
    threshold: firing threshold (model voltage units). surrogate_window: half-width of the
        rectangular surrogate window around the threshold (voltage units).
        surrogate_height: value of ``ds/dv`` inside the window (per voltage unit).
    """

    beta: Tensor
    gamma: Tensor
    threshold: float = 0.1
    surrogate_window: float = 0.3
    surrogate_height: float = 0.3


class ThresholdAdaptation(NamedTuple):
    """Adaptive threshold rule of r1 (all in model voltage units, dimensionless factors).

    After each step: ``th = s * (th + increment) + (1 - s) * max(decay * th, base)``.
    The initial threshold is :attr:`LIFParameters.threshold`.
    """

    increment: float = 0.01
    decay: float = 0.1
    base: float = 0.01


DEFAULT_ADAPTATION = ThresholdAdaptation()
"""r1's rule of the paper: increment 0.01, decay 0.1, base 0.01."""


class LIFState(NamedTuple):
    """Feed-forward CUBA-LIF state: current ``c``, voltage ``v``, previous spike ``s`` (0/1)."""

    c: Tensor
    v: Tensor
    s: Tensor


class AdaptiveLIFState(NamedTuple):
    """CUBA-LIF state with an adaptive threshold ``th`` (the one the next spike test uses)."""

    c: Tensor
    v: Tensor
    s: Tensor
    th: Tensor


def init_state(like: Tensor) -> LIFState:
    """All-zero state shaped like one step of input ``like`` (states start at zero)."""
    z = torch.zeros_like(like)
    return LIFState(z, z, z)


def init_adaptive_state(like: Tensor, threshold: float) -> AdaptiveLIFState:
    """Zero current/voltage/spike and threshold ``threshold`` everywhere."""
    z = torch.zeros_like(like)
    return AdaptiveLIFState(z, z, z, torch.full_like(like, threshold))


def surrogate(x: Tensor, window: float, height: float, mask: Tensor | None = None) -> Tensor:
    """``ds/dv`` at ``x = v - threshold``: ``height`` where ``|x| < window`` and ``mask != 0``."""
    h = (x.abs() < window).to(x.dtype).mul_(height)
    return h if mask is None else h.mul_(mask != 0)


class _RectSpike(torch.autograd.Function):
    """Heaviside forward, rectangular surrogate backward (optionally masked)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, window: float, height: float, mask: Tensor | None) -> Tensor:
        ctx.window, ctx.height = window, height
        ctx.save_for_backward(x, mask)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, None, None]:
        x, mask = ctx.saved_tensors
        return grad_out * surrogate(x, ctx.window, ctx.height, mask), None, None, None


def spike_fn(
    x: Tensor, window: float = 0.3, height: float = 0.3, mask: Tensor | None = None
) -> Tensor:
    """Spike where ``x = v - threshold > 0``; surrogate ``height`` on ``|x| < window``.

    ``mask`` (broadcastable to ``x``): where it is zero the surrogate gradient is zero
    (per-sequence dropout: dropped neurons learn nothing).
    """
    return _RectSpike.apply(x, float(window), float(height), mask)


def _masked_update(c: Tensor, beta: Tensor, current: Tensor, mask: Tensor | None) -> Tensor:
    """``(beta * c + I) * mask`` (the published training-mode dropout; no mask: no product)."""
    c = beta * c + current
    return c if mask is None else c * mask


def cuba_lif_step(
    current: Tensor,
    state: LIFState,
    params: LIFParameters,
    *,
    dropout_mask: Tensor | None = None,
) -> tuple[Tensor, LIFState]:
    """One time step of a CUBA-LIF population; returns ``(spikes, new_state)``.

    ``dropout_mask`` (0 or ``1/(1-p)``, broadcastable to the neurons): multiplies the whole
    current update ``c = (beta c + I) m`` and zeroes the surrogate where it is zero.
    """
    c = _masked_update(state.c, params.beta, current, dropout_mask)
    v = params.gamma * state.v * (1.0 - state.s) + c
    s = spike_fn(
        v - params.threshold, params.surrogate_window, params.surrogate_height, dropout_mask
    )
    return s, LIFState(c, v, s)


def adaptive_lif_step(
    current: Tensor,
    state: AdaptiveLIFState,
    params: LIFParameters,
    adaptation: ThresholdAdaptation = DEFAULT_ADAPTATION,
    *,
    dropout_mask: Tensor | None = None,
) -> tuple[Tensor, AdaptiveLIFState]:
    """One step of a CUBA-LIF neuron with adaptive threshold.

    Order: current (with the dropout mask) and voltage update as in :func:`cuba_lif_step`;
    the spike test uses the threshold carried in the state (``state.th``, 0.1 at the first
    step); then the threshold is updated with the new spike:
    ``th' = s (th + inc) + (1 - s) max(decay th, base)``.

    The threshold is a non-differentiated state (computed from detached values): gradients
    through its dynamics explode over 160 steps (measured: weight gradients of the layers
    below r1 ~1e4-1e5 times those of fc1, and no learning), while the reset term still
    carries gradient as in :func:`cuba_lif_step`.
    """
    c = _masked_update(state.c, params.beta, current, dropout_mask)
    v = params.gamma * state.v * (1.0 - state.s) + c
    th = state.th.detach()
    s = spike_fn(v - th, params.surrogate_window, params.surrogate_height, dropout_mask)
    s_ = s.detach()
    th = s_ * (th + adaptation.increment) + (1.0 - s_) * torch.clamp(
        adaptation.decay * th, min=adaptation.base
    )
    return s, AdaptiveLIFState(c, v, s, th)


def adaptive_recurrent_scan(
    inputs: Tensor,
    recurrent: Callable[[Tensor], Tensor],
    params: LIFParameters,
    adaptation: ThresholdAdaptation = DEFAULT_ADAPTATION,
    state: AdaptiveLIFState | None = None,
    *,
    dropout_mask: Tensor | None = None,
    backend: ScanBackend = "auto",
) -> tuple[Tensor, AdaptiveLIFState]:
    """An adaptive-threshold layer fed by its own previous spikes, over the leading (time)
    axis of ``inputs`` ``(T, B, H)``: step ``t`` is :func:`adaptive_lif_step` with current
    ``inputs[t] + recurrent(s_{t-1})`` (r1 of the paper's network: ``recurrent`` is its
    ``nn.Linear`` or analog layer, called once per step in order).

    Returns the spikes ``(T, B, H)`` and the final state (continue from it with the next
    steps). When autograd needs the result (the inputs, the neuron parameters, the state
    or ``recurrent``'s output require grad), on CUDA or with ``backend="eager"`` this is
    that step loop; otherwise (CPU float32/float64, inference) the same loop with the
    neuron update fused into one kernel, :func:`ferrocim.snn.kernels.adaptive_step`
    (the same operations: bit-identical results).
    """
    check_option("backend", backend, ("auto", "eager"))
    if state is None:
        state = init_adaptive_state(inputs[0], params.threshold)
    product = recurrent(state.s)  # step 0's; whether it needs grad tells for the layer
    tensors = (inputs, product, params.beta, params.gamma, *state, dropout_mask)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if not grad and _fused(inputs, backend):
        return _kernel_adaptive(inputs, recurrent, product, params, adaptation, state, dropout_mask)
    out = []
    for t, a_t in enumerate(inputs.unbind(0)):
        if t:
            product = recurrent(state.s)
        s, state = adaptive_lif_step(
            a_t + product, state, params, adaptation, dropout_mask=dropout_mask
        )
        out.append(s)
    return torch.stack(out), state


def cuba_lif_scan(
    currents: Tensor,
    params: LIFParameters,
    state: LIFState | None = None,
    *,
    dropout_mask: Tensor | None = None,
    backend: ScanBackend = "auto",
) -> tuple[Tensor, LIFState]:
    """Run :func:`cuba_lif_step` over the leading (time) axis of ``currents``.

    ``currents`` has shape ``(T, *neuron_batch_shape)``; returns spikes of the same shape
    and the final state, so that scanning ``a`` then ``b`` from the returned state equals
    scanning ``cat(a, b)``. Same maths as the step loop, but one fused autograd node with a
    hand-written backward pass through time (saves only ``c`` and ``v`` — the eager path
    also the spikes, as bool — and avoids per-step autograd bookkeeping); tests check it
    against the step loop.
    A ``dropout_mask`` ``m`` (constant over time) enters as ``c_t = (m beta) c_{t-1} + m I_t``,
    which is ``(beta c_{t-1} + I_t) m`` exactly.

    ``backend``: "auto" runs the fused kernels of :mod:`ferrocim.snn.kernels` on CPU
    tensors (one pass over memory per direction; bit-identical spikes) and the eager loop
    elsewhere (CUDA); "eager" always runs the eager loop.
    """
    check_option("backend", backend, ("auto", "eager"))
    if state is None:
        state = init_state(currents[0])
    beta = params.beta
    if dropout_mask is not None:
        beta, currents = beta * dropout_mask, currents * dropout_mask
    inputs = (currents, beta, params.gamma, state.c, state.v, state.s)
    if _fused(currents, backend) and not (
        torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
    ):
        return _kernel_spikes(currents, beta, params, state)
    spikes, c, v, s = _LIFScan.apply(
        currents,
        beta,
        params.gamma,
        state.c,
        state.v,
        state.s,
        dropout_mask,
        float(params.threshold),
        float(params.surrogate_window),
        float(params.surrogate_height),
        backend,
    )
    return spikes, LIFState(c, v, s)


def cuba_lif_scan_reference(
    currents: Tensor,
    params: LIFParameters,
    state: LIFState | None = None,
    *,
    dropout_mask: Tensor | None = None,
) -> tuple[Tensor, LIFState]:
    """:func:`cuba_lif_scan` as a plain loop of :func:`cuba_lif_step` (autograd backward)."""
    if state is None:
        state = init_state(currents[0])
    out = []
    # unbind (not currents[t]): one backward node for all steps instead of T zero-filled copies
    for current in currents.unbind(0):
        s, state = cuba_lif_step(current, state, params, dropout_mask=dropout_mask)
        out.append(s)
    return torch.stack(out), state


_Saved = tuple[Tensor, ...]
ScanBackend = Literal["auto", "eager"]


class _LIFScan(torch.autograd.Function):
    """Fused CUBA-LIF scan; backward is backpropagation through time written out.

    With ``x_t = v_t - thr`` and ``h(x) = height [|x| < window]`` (times ``[mask != 0]``;
    ``beta`` and the currents arrive already multiplied by the mask), going
    backwards with ``gv'``, ``gc'`` the gradients w.r.t. ``v_{t+1}``, ``c_{t+1}``::

        gs_t = dL/ds_t(out) - gamma * v_t * gv'
        gv_t = h(x_t) gs_t + gamma (1 - s_t) gv'
        gc_t = gv_t + beta gc'          (= dL/dI_t)
        dL/dbeta  += gc_t c_{t-1};   dL/dgamma += gv_t v_{t-1} (1 - s_{t-1})
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        currents: Tensor,
        beta: Tensor,
        gamma: Tensor,
        c0: Tensor,
        v0: Tensor,
        s0: Tensor,
        grad_mask: Tensor | None,
        threshold: float,
        window: float,
        height: float,
        backend: str,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        shape = _state_shape(currents, c0)
        # outputs in the memory order of the currents (e.g. channels-last conv output)
        like = _dense(_over_time(currents, shape))
        cs, vs = torch.empty_like(like), torch.empty_like(like)
        vr0 = v0 * (1.0 - s0)  # v (1 - s) after the reset
        if _fused(currents, backend):
            # the kernel writes the float spikes; its backward recomputes s = v > thr
            spikes, fired = torch.empty_like(like), None
            _kernel_forward(currents, beta, gamma, c0, vr0, threshold, cs, vs, spikes)
        else:
            fired = torch.empty_like(like, dtype=torch.bool)
            _eager_forward(currents, beta, gamma, c0, vr0, threshold, cs, vs, fired)
            spikes = fired.to(currents.dtype)
        # spikes are exactly 0/1: the eager path keeps them as bool for backward
        ctx.save_for_backward(beta, gamma, c0, v0, s0, cs, vs, fired, grad_mask)
        ctx.threshold, ctx.window, ctx.height = threshold, window, height
        ctx.current_shape, ctx.backend = currents.shape, backend
        # the last state is returned apart from the outputs (not as views of them): its
        # gradient then arrives as one step's values, not as a full-size zero-filled
        # tensor that autograd adds to the spikes' gradient
        return spikes, cs[-1].clone(), vs[-1].clone(), spikes[-1].clone()

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, g_spikes: Tensor, g_c_last: Tensor, g_v_last: Tensor, g_s_last: Tensor
    ) -> tuple[Tensor | None, ...]:
        beta, gamma, c0, v0, s0, cs, vs, spikes, mask = ctx.saved_tensors
        saved = (beta, gamma, c0, v0, s0, cs, vs, spikes, mask)
        if _fused(cs, ctx.backend):
            g_cur, g_v_first, g_beta, g_gamma = _kernel_backward(
                ctx, g_spikes, g_c_last, g_v_last, g_s_last, *saved
            )
        else:
            g_spikes = g_spikes.clone()
            g_spikes[-1] += g_s_last
            backward = _backward_large_steps if cs[0].numel() >= _LARGE_STEP else _backward_blocks
            g_cur, g_v, g_beta, g_gamma = backward(ctx, g_spikes, g_c_last, g_v_last, *saved)
            g_v_first = g_v[0]
        gv_next, gc_next = g_v_first, g_cur[0]
        needs = ctx.needs_input_grad
        g_c0 = (beta * gc_next).sum_to_size(c0.shape) if needs[3] else None
        g_v0 = (gamma * (1.0 - s0) * gv_next).sum_to_size(v0.shape) if needs[4] else None
        g_s0 = (-gamma * v0 * gv_next).sum_to_size(s0.shape) if needs[5] else None
        return (
            g_cur.sum_to_size(ctx.current_shape) if needs[0] else None,
            g_beta.sum_to_size(beta.shape) if needs[1] else None,
            g_gamma.sum_to_size(gamma.shape) if needs[2] else None,
            g_c0,
            g_v0,
            g_s0,
            None,
            None,
            None,
            None,
            None,
        )


def _fused(t: Tensor, backend: str) -> bool:
    """True when the fused CPU kernels run this scan (CPU float32/float64, ``auto``)."""
    return backend == "auto" and t.device.type == "cpu" and t.dtype in _KERNEL_DTYPES


_KERNEL_DTYPES = (torch.float32, torch.float64)


def _dense(t: Tensor) -> Tensor:
    """``t`` itself when its memory is dense in some order of its dimensions, else a
    contiguous copy (broadcast or sliced tensors)."""
    return t if t.permute(_memory_order(t)).is_contiguous() else t.contiguous()


def _state_shape(currents: Tensor, c0: Tensor) -> torch.Size:
    """The neuron shape of a scan: one step's currents broadcast with the state
    (``torch.broadcast_shapes`` costs tens of µs; equal shapes skip it)."""
    step = currents.shape[1:]
    return step if step == c0.shape else torch.broadcast_shapes(step, c0.shape)


def _over_time(t: Tensor, shape: torch.Size) -> Tensor:
    """Time-major ``t`` ``(n, *s)`` broadcast to ``(n, *shape)`` (``s`` broadcastable to
    ``shape`` as one step's currents are to the state)."""
    extra = len(shape) - (t.dim() - 1)
    if extra > 0:
        t = t.view(t.shape[0], *([1] * extra), *t.shape[1:])
    return t.broadcast_to((t.shape[0], *shape))


def _memory_order(t: Tensor) -> list[int]:
    """Dimensions of ``t`` from the largest stride to the smallest (its memory order)."""
    return sorted(range(t.dim()), key=t.stride, reverse=True)


class _Layout:
    """Numpy views of a scan's tensors, all flattened in the memory order of ``like``
    ``(n, *shape)`` (time first), as the kernels take them."""

    def __init__(self, like: Tensor) -> None:
        self.order = _memory_order(like)
        if self.order[0] != 0:  # time must stay the outer dimension
            self.order = [0, *(d for d in self.order if d != 0)]
        self.neuron_order = [d - 1 for d in self.order[1:]]
        self.shape = like.shape[1:]
        # time-major row-major order: tensors already of the full shape and contiguous
        # convert without the broadcast/permute/copy steps (a few µs each: they dominate
        # small scans such as an SSTL update at batch 1)
        self.row_major = self.order == list(range(like.dim()))

    def steps(self, t: Tensor, *, out: bool = False) -> Any:
        """``(n, *shape)`` → ``(n, M)``; ``out``: must be a view (written by the kernel)."""
        if self.row_major and t.shape[1:] == self.shape and t.is_contiguous():
            return t.detach().view(t.shape[0], -1).numpy()
        p = _over_time(t.detach(), self.shape).permute(self.order)
        if out and not p.is_contiguous():
            raise RuntimeError("LIF kernel output is not in the scan's memory order")
        return p.contiguous().view(t.shape[0], -1).numpy()

    def values(self, t: Tensor, *, out: bool = False) -> Any:
        """A per-neuron tensor broadcastable to ``shape`` → ``(M,)``."""
        if self.row_major and t.shape == self.shape and t.is_contiguous():
            return t.detach().view(-1).numpy()
        p = t.detach().broadcast_to(self.shape).permute(self.neuron_order)
        if out and not p.is_contiguous():
            raise RuntimeError("LIF kernel output is not in the scan's memory order")
        return p.contiguous().view(-1).numpy()


def _kernel_forward(
    currents: Tensor, beta: Tensor, gamma: Tensor, c0: Tensor, vr0: Tensor,
    threshold: float, cs: Tensor, vs: Tensor, spikes: Tensor,
) -> None:  # fmt: skip
    """Forward scan by :func:`ferrocim.snn.kernels.lif_forward` (fills cs, vs, spikes)."""
    from ferrocim.snn.kernels import lif_forward

    lay = _Layout(cs)
    lif_forward(
        lay.steps(currents), lay.values(beta), lay.values(gamma), lay.values(c0),
        lay.values(vr0), threshold, lay.steps(cs, out=True), lay.steps(vs, out=True),
        lay.steps(spikes, out=True),
    )  # fmt: skip


def _kernel_spikes(
    currents: Tensor, beta: Tensor, params: LIFParameters, state: LIFState
) -> tuple[Tensor, LIFState]:
    """The scan without autograd by :func:`ferrocim.snn.kernels.lif_spikes` (inference)."""
    from ferrocim.snn.kernels import lif_spikes

    shape = _state_shape(currents, state.c)
    spikes = torch.empty_like(_dense(_over_time(currents, shape)))
    lay = _Layout(spikes)
    c, v = torch.empty_like(spikes[0]), torch.empty_like(spikes[0])
    lif_spikes(
        lay.steps(currents), lay.values(beta), lay.values(params.gamma), lay.values(state.c),
        lay.values(state.v * (1.0 - state.s)), params.threshold, lay.steps(spikes, out=True),
        lay.values(c, out=True), lay.values(v, out=True),
    )  # fmt: skip
    return spikes, LIFState(c, v, spikes[-1])


def _kernel_adaptive(
    inputs: Tensor,
    recurrent: Callable[[Tensor], Tensor],
    product: Tensor,
    params: LIFParameters,
    adaptation: ThresholdAdaptation,
    state: AdaptiveLIFState,
    mask: Tensor | None,
) -> tuple[Tensor, AdaptiveLIFState]:
    """:func:`adaptive_recurrent_scan` as a loop of ``recurrent`` and the fused step
    :func:`ferrocim.snn.kernels.adaptive_step` (two calls per step instead of about 20);
    ``product`` is step 0's ``recurrent(state.s)``."""
    from ferrocim.snn.kernels import adaptive_step

    n, b, h = inputs.shape

    def dense(t: Tensor | None, shape: tuple[int, ...], fill: float) -> Tensor:
        """A contiguous copy of ``t`` broadcast to ``shape`` (``fill`` where None)."""
        if t is None:
            return inputs.new_full(shape, fill)
        return t.detach().to(inputs.dtype).broadcast_to(shape).contiguous()

    st = torch.stack([dense(t, (b, h), 0.0) for t in state])  # c, v, s, th: advanced in place
    spikes = inputs.new_empty((n, b, h))
    x = inputs.detach().contiguous()
    par = [dense(t, (h,), 0.0).numpy() for t in (params.beta, params.gamma)]
    m = dense(mask, (b, h), 1.0).numpy()
    st_np, x_np, sp_np = st.numpy(), x.numpy(), spikes.numpy()
    inc, decay, base = adaptation
    for t in range(n):
        if t:
            product = recurrent(st[2])  # the eager step's product, from the spikes so far
        p_np = product.detach().to(inputs.dtype).contiguous().numpy()
        adaptive_step(x_np[t], p_np, *par, m, st_np, inc, decay, base, sp_np[t])
    c, v, s, th = st.unbind(0)
    return spikes, AdaptiveLIFState(c, v, s, th)


def _eager_forward(
    currents: Tensor, beta: Tensor, gamma: Tensor, c0: Tensor, vr0: Tensor,
    threshold: float, cs: Tensor, vs: Tensor, fired: Tensor,
) -> None:  # fmt: skip
    """Forward scan as four fused tensor operations per step (any device)."""
    # step views made once (unbind), not indexed per step
    cur, c_t, v_t, s_t = currents.unbind(0), cs.unbind(0), vs.unbind(0), fired.unbind(0)
    c, zero = c0, currents.new_zeros(())
    vr = torch.broadcast_to(vr0, cs.shape[1:]).clone()
    for t in range(cs.shape[0]):
        c = torch.addcmul(cur[t], beta, c, out=c_t[t])  # c = beta c + I
        v = torch.addcmul(c, gamma, vr, out=v_t[t])  # v = gamma v (1 - s) + c
        torch.gt(v, threshold, out=s_t[t])
        torch.where(s_t[t], zero, v, out=vr)  # exact v (1 - s): s is 0 or 1


def _kernel_backward(
    ctx: Any, g_spikes: Tensor, g_c_last: Tensor, g_v_last: Tensor, g_s_last: Tensor,
    *saved: Any,
) -> _Saved:  # fmt: skip
    """Backward by :func:`ferrocim.snn.kernels.lif_backward`; returns dL/dI, dL/dv at the
    first step, dL/dbeta and dL/dgamma (the last three unreduced, neuron-shaped)."""
    from ferrocim.snn.kernels import lif_backward

    beta, gamma, c0, v0, s0, cs, vs, _, mask = saved
    lay = _Layout(cs)
    keep = torch.ones((), dtype=torch.bool) if mask is None else mask != 0
    g_cur = torch.empty_like(cs)
    g_v0, g_beta, g_gamma = (torch.empty_like(cs[0]) for _ in range(3))
    lif_backward(
        lay.steps(g_spikes), lay.values(g_c_last), lay.values(g_v_last), lay.values(g_s_last),
        lay.values(beta),
        lay.values(gamma), lay.values(c0), lay.values(v0 * (1.0 - s0)), lay.steps(cs),
        lay.steps(vs), lay.values(keep), ctx.threshold, ctx.window,
        ctx.height, lay.steps(g_cur, out=True), lay.values(g_v0, out=True),
        lay.values(g_beta, out=True), lay.values(g_gamma, out=True),
    )  # fmt: skip
    return g_cur, g_v0, g_beta, g_gamma


_LARGE_STEP = 1 << 15
"""Neurons per time step from which the scan's backward goes step by step with the fewest
passes over memory (conv layers); smaller layers batch the step-independent work in blocks
of steps instead (Python overhead dominates them, e.g. an SSTL update at batch 1)."""


def _backward_blocks(
    ctx: Any, g_spikes: Tensor, g_c_last: Tensor, g_v_last: Tensor, *saved: Any
) -> _Saved:
    """Backward of :class:`_LIFScan` for small layers; returns dL/dI, dL/dv, dL/dbeta,
    dL/dgamma (the last two unreduced, neuron-shaped)."""
    beta, gamma, c0, v0, s0, cs, vs, spikes, mask = saved
    spikes = spikes.to(cs.dtype)
    thr = ctx.threshold
    n = cs.shape[0]
    # What does not depend on the recursion is computed for a block of steps at once,
    # so the loop runs three fused ops per step (Python overhead dominates small
    # layers, e.g. an online SSTL update at batch 1). Blocks hold about 2**18 values
    # so that large layers stay in cache (one step per block for conv1 at batch 32).
    per_step = cs[0].numel()
    block = max(1, min(n, (1 << 18) // max(per_step, 1)))
    g_cur = torch.empty_like(cs)  # dL/dI_t = dL/dc_t
    g_v = torch.empty_like(cs)  # dL/dv_t
    g_beta = torch.zeros_like(cs[0])
    g_gamma = torch.zeros_like(cs[0])
    gsp, gv, gc = g_spikes.unbind(0), g_v.unbind(0), g_cur.unbind(0)  # step views, made once
    c_first = torch.broadcast_to(c0, cs.shape[1:])
    v_first = torch.broadcast_to(v0 * (1.0 - s0), cs.shape[1:])
    for stop in range(n, 0, -block):
        lo = max(0, stop - block)
        v_blk = vs[lo:stop]
        h = surrogate(v_blk - thr, ctx.window, ctx.height, mask)
        gam_v = gamma * v_blk  # s_t feeds v_{t+1} through -gamma v_t
        gam_ns = gamma * (1.0 - spikes[lo:stop])  # dv_{t+1}/dv_t = gamma (1 - s_t)
        hs, gvs, gss = h.unbind(0), gam_v.unbind(0), gam_ns.unbind(0)
        for t in range(stop - 1, lo - 1, -1):
            k = t - lo
            if t == n - 1:
                torch.add(hs[k] * gsp[t], g_v_last, out=gv[t])
                torch.add(gv[t], g_c_last, out=gc[t])
                continue
            gs = torch.addcmul(gsp[t], gvs[k], gv[t + 1], value=-1.0)
            torch.addcmul(hs[k] * gs, gss[k], gv[t + 1], out=gv[t])
            torch.addcmul(gv[t], beta, gc[t + 1], out=gc[t])
        # dL/dbeta = sum_t gc_t c_{t-1};  dL/dgamma = sum_t gv_t v_{t-1} (1 - s_{t-1})
        if lo > 0:
            c_prev, vns_prev = (
                cs[lo - 1 : stop - 1],
                vs[lo - 1 : stop - 1] * (1.0 - spikes[lo - 1 : stop - 1]),
            )
            g_beta.add_((g_cur[lo:stop] * c_prev).sum(0))
            g_gamma.add_((g_v[lo:stop] * vns_prev).sum(0))
        else:
            g_beta.addcmul_(g_cur[0], c_first)
            g_gamma.addcmul_(g_v[0], v_first)
            if stop > 1:
                g_beta.add_((g_cur[1:stop] * cs[: stop - 1]).sum(0))
                vns = vs[: stop - 1] * (1.0 - spikes[: stop - 1])
                g_gamma.add_((g_v[1:stop] * vns).sum(0))
    return g_cur, g_v, g_beta, g_gamma


def _backward_large_steps(
    ctx: Any, g_spikes: Tensor, g_c_last: Tensor, g_v_last: Tensor, *saved: Any
) -> _Saved:
    """Backward of :class:`_LIFScan` for large layers: the recursion of :class:`_LIFScan`
    with about ten fused passes per step and neuron (the surrogate's height folded into a
    product, the reset as a masked fill of the bool spikes)."""
    beta, gamma, c0, v0, s0, cs, vs, spikes, mask = saved
    thr, window, height = ctx.threshold, ctx.window, ctx.height
    n = cs.shape[0]
    keep = None if mask is None else (mask != 0).to(cs.dtype)
    g_cur, g_v = torch.empty_like(cs), torch.empty_like(cs)
    g_beta, g_gamma = torch.zeros_like(cs[0]), torch.zeros_like(cs[0])
    for t in range(n - 1, -1, -1):
        h = (vs[t] - thr).abs_().lt_(window)  # [|v - thr| < window] as 0/1
        if keep is not None:
            h.mul_(keep)
        if t == n - 1:
            torch.addcmul(g_v_last, h, g_spikes[t], value=height, out=g_v[t])
            torch.add(g_v[t], g_c_last, out=g_cur[t])
        else:
            a = gamma * g_v[t + 1]
            gs = torch.addcmul(g_spikes[t], vs[t], a, value=-1.0)  # dL/ds_t
            a.masked_fill_(spikes[t], 0.0)  # gamma (1 - s_t) dL/dv_{t+1}
            torch.addcmul(a, h, gs, value=height, out=g_v[t])
            torch.addcmul(g_v[t], beta, g_cur[t + 1], out=g_cur[t])
        if t > 0:
            g_beta.addcmul_(g_cur[t], cs[t - 1])
            g_gamma.addcmul_(g_v[t], vs[t - 1].masked_fill(spikes[t - 1], 0.0))
        else:
            g_beta.addcmul_(g_cur[0], c0)
            g_gamma.addcmul_(g_v[0], v0 * (1.0 - s0))
    return g_cur, g_v, g_beta, g_gamma
