"""The fused CPU kernels (ferrocim.snn.kernels) against the eager scan they replace, the
layout-preserving convolution, the CPU time chunk and the thread count they leave."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ferrocim.snn.kernels as kernels
from ferrocim.convolution import conv2d
from ferrocim.snn import EEGSNN, NetworkConfig
from ferrocim.snn.functional import (
    LIFParameters,
    LIFState,
    ThresholdAdaptation,
    adaptive_recurrent_scan,
    cuba_lif_scan,
)
from ferrocim.threads import configure_threads


def _case(dtype: torch.dtype, shape: tuple[int, ...], n: int = 12, channels_last: bool = False):
    g = torch.Generator().manual_seed(0)
    cur = 0.3 * torch.randn(n, 5, *shape, generator=g, dtype=dtype)
    if channels_last:  # (n, B, C, H, W) in (n, B, H, W, C) memory order, as a conv gives
        cur = cur.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    beta = torch.rand(shape, generator=g, dtype=dtype)
    gamma = torch.rand(shape, generator=g, dtype=dtype)
    mask = (torch.rand(5, *shape, generator=g) > 0.3).to(dtype) / 0.7
    return cur, beta, gamma, mask


def _scan(backend: str, cur, beta, gamma, mask, state=None, grad: bool = True):
    cur, beta, gamma = (t.detach().clone().requires_grad_(grad) for t in (cur, beta, gamma))
    params = LIFParameters(beta, gamma, 0.1, 0.3, 0.3)
    with torch.set_grad_enabled(grad):
        first, st = cuba_lif_scan(cur[:5], params, state, dropout_mask=mask, backend=backend)
        rest, st = cuba_lif_scan(cur[5:], params, st, dropout_mask=mask, backend=backend)
    spikes = torch.cat((first, rest))
    if not grad:
        return spikes, st, None
    w = torch.linspace(-1, 1, spikes[0].numel(), dtype=spikes.dtype).view(spikes[0].shape)
    ((spikes * w).sum() + st.v.sum() + 0.5 * st.c.sum() + 0.25 * st.s.sum()).backward()
    return spikes, st, (cur.grad, beta.grad, gamma.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_kernel_scan_equals_eager(dtype, masked, channels_last) -> None:
    cur, beta, gamma, mask = _case(dtype, (3, 4, 6), channels_last=channels_last)
    mask = mask if masked else None
    s0, st0, g0 = _scan("eager", cur, beta, gamma, mask)
    s1, st1, g1 = _scan("auto", cur, beta, gamma, mask)
    assert 0.05 < s0.mean().item() < 0.95  # the case spikes, and not everywhere
    assert torch.equal(s1, s0)  # same operations in the same order: bit-identical
    assert torch.equal(st1.c, st0.c) and torch.equal(st1.v, st0.v)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for a, b, name in zip(g1, g0, ("currents", "beta", "gamma"), strict=True):
        assert b.abs().sum() > 0, name
        torch.testing.assert_close(a, b, **tol, msg=name)
    # without autograd the inference kernel gives the same spikes and final state
    s2, st2, _ = _scan("auto", cur, beta, gamma, mask, grad=False)
    assert torch.equal(s2, s0) and torch.equal(st2.v, st0.v) and torch.equal(st2.c, st0.c)


def test_kernel_backward_flushes_subnormal_gradients_to_zero() -> None:
    """A gradient that decays through silent steps (no surrogate window reached) shrinks by
    beta, gamma = 0.5 per step, through float32's subnormal range (below 2**-126) to 0.
    The eager scan keeps the subnormals; the kernel gives 0 there (see lif_backward) and
    the eager values everywhere else."""
    n, shape = 200, (64,)
    cur = torch.full((n, 1, *shape), -1.0)  # v settles at -4, outside the window 0.1 ± 0.3
    half = torch.full(shape, 0.5)

    def grad(backend: str) -> torch.Tensor:
        c = cur.clone().requires_grad_(True)
        _, st = cuba_lif_scan(c, LIFParameters(half, half), backend=backend)
        st.v.sum().backward()  # dL/dv at the last step only
        return c.grad

    eager, kernel = grad("eager"), grad("auto")
    tiny = torch.finfo(torch.float32).tiny
    sub = (eager != 0) & (eager.abs() < tiny)
    # steps back from the end whose eager gradient is subnormal: dL/dI_t = (k + 1) 2**-k
    # for k = n-1-t steps back (a current reaches v through every later step), which is
    # below 2**-126 from k = 134 (134 - log2 135 > 126) and rounds to 0 from k = 157
    steps_back = (n - 1 - torch.nonzero(sub[:, 0, 0]).flatten()).tolist()
    assert steps_back == list(range(156, 133, -1))
    assert sub.all(dim=(1, 2)).sum() == 23  # every neuron alike
    assert not ((kernel != 0) & (kernel.abs() < tiny)).any()  # no subnormal left
    assert torch.equal(kernel[sub], torch.zeros_like(kernel[sub]))
    normal = eager.abs() >= tiny
    assert normal.sum() > 100 * 64
    # the normal values near the edge lose the dropped subnormal terms: < tiny each
    torch.testing.assert_close(kernel[normal], eager[normal], rtol=1e-5, atol=tiny)


def test_kernel_keeps_the_memory_order_of_the_currents() -> None:
    cur, beta, gamma, _ = _case(torch.float32, (3, 4, 6), channels_last=True)
    spikes, st = cuba_lif_scan(cur, LIFParameters(beta, gamma))
    assert spikes.stride() == cur.stride()
    assert st.v.is_contiguous(memory_format=torch.channels_last)


def test_parallel_split_equals_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large layers split among threads (lowered threshold here) give identical results,
    and torch's thread count is what the caller set (numba's OpenMP layer once reset it)."""
    cur, beta, gamma, mask = _case(torch.float32, (8, 9, 10), n=6)
    one = _scan("auto", cur, beta, gamma, mask)
    monkeypatch.setattr(kernels, "PARALLEL_MIN", 1)
    before = torch.get_num_threads()
    try:
        configure_threads(2)
        two = _scan("auto", cur, beta, gamma, mask)
        configure_threads(1)
        _scan("auto", cur, beta, gamma, mask)
        assert torch.get_num_threads() == 1
    finally:
        configure_threads(before)
    assert torch.equal(two[0], one[0])
    for a, b in zip(two[2], one[2], strict=True):
        assert torch.equal(a, b)


def test_state_shapes_broadcast() -> None:
    """A state of the full batch with per-neuron currents shared over the batch."""
    beta, gamma = torch.full((4,), 0.5), torch.full((4,), 0.5)
    cur = torch.tensor([[0.06, 0.2, 0.0, 0.3]] * 3)  # (n=3, 4), same for every trial
    state = LIFState(torch.zeros(2, 4), torch.tensor([[0.0, 0.0, 0.3, 0.0]] * 2), torch.zeros(2, 4))
    spikes, st = cuba_lif_scan(cur, LIFParameters(beta, gamma), state)
    # hand-computed: neuron 0 c = 0.06, 0.09, 0.105; v = 0.06, 0.12 (spike), 0.105 (spike)
    assert spikes.shape == (3, 2, 4)
    assert spikes[:, 0, 0].tolist() == [0.0, 1.0, 1.0]
    assert spikes[0, :, 2].tolist() == [1.0, 1.0]  # v0 = 0.3: 0.15 + 0 > 0.1
    torch.testing.assert_close(st.c[:, 0], torch.tensor([0.105, 0.105]))


@pytest.mark.parametrize("hw", [(3, 3), (8, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv2d_equals_torch(hw, channels_last) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, *hw, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(7, 5, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)
    y = conv2d(x, w, b)
    y0 = F.conv2d(x, w, b)
    torch.testing.assert_close(y, y0, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad((y * y0.detach()).sum(), (x, w, b))
    grads0 = torch.autograd.grad((y0 * y0.detach()).sum(), (x, w, b))
    for a, b0 in zip(grads, grads0, strict=True):
        torch.testing.assert_close(a, b0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kept", [False, True])
def test_cpu_time_chunk_follows_the_widest_layer(kept: bool, monkeypatch) -> None:
    """16 steps of conv2 at batch 64 (the measured best); an SSTL update at batch 1 that
    runs fc1 and fc2 only does all 160 steps at once; inference with freed memory kept
    in the process takes ten times the values per chunk."""
    import ferrocim.allocator

    monkeypatch.setattr(ferrocim.allocator, "_done", [kept])
    model = EEGSNN(NetworkConfig())
    cpu = torch.device("cpu")
    assert model._default_chunk(("conv1", "conv2", "fc2"), 160, 64, cpu) == 16
    assert model._default_chunk(("fc1", "fc2"), 160, 1, cpu) == 160
    assert model._default_chunk(("conv1", "conv2"), 160, 8, cpu) == 128
    assert model._default_chunk(("conv2",), 160, 64, torch.device("cuda")) == 160
    with torch.no_grad():
        assert model._default_chunk(("conv1", "conv2"), 160, 64, cpu) == (160 if kept else 16)
        assert model._default_chunk(("conv1", "conv2"), 160, 256, cpu) == (40 if kept else 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_recurrent_adaptive_kernel_equals_step_loop(dtype, masked) -> None:
    g = torch.Generator().manual_seed(3)
    n, b, h = 12, 4, 16
    x = (torch.rand(n, b, h, generator=g) < 0.4).to(dtype)
    w = (0.4 * torch.randn(h, h, generator=g)).to(dtype)
    bias = (0.05 * torch.randn(h, generator=g)).to(dtype)
    params = LIFParameters(torch.rand(h, generator=g).to(dtype), torch.rand(h).to(dtype))
    mask = (torch.rand(b, h, generator=g) > 0.3).to(dtype) / 0.7 if masked else None
    rule = ThresholdAdaptation(0.02, 0.5, 0.01)

    def linear(s: torch.Tensor) -> torch.Tensor:
        return F.linear(s, w, bias)

    runs = []
    for backend in ("eager", "auto"):
        with torch.no_grad():  # two chunks: the state carries over
            first, st = adaptive_recurrent_scan(x[:5], linear, params, rule, dropout_mask=mask,
                                                backend=backend)  # fmt: skip
            rest, st = adaptive_recurrent_scan(x[5:], linear, params, rule, st,
                                               dropout_mask=mask, backend=backend)  # fmt: skip
        runs.append((torch.cat((first, rest)), st))
    (s0, st0), (s1, st1) = runs
    assert 0.1 < s0.mean().item() < 0.9  # the case spikes, and not everywhere
    assert torch.equal(s1, s0)  # the eager step's operations: bit-identical
    for a, b_, name in zip(st1, st0, ("c", "v", "s", "th"), strict=True):
        assert torch.equal(a, b_), name
    assert st0.th.max() > 0.1  # the threshold adapted
    # with autograd the same call is the differentiable step loop
    w.requires_grad_(True)
    out, _ = adaptive_recurrent_scan(x, linear, params, rule, dropout_mask=mask)
    assert torch.equal(out.detach(), s0)
    out.sum().backward()
    assert w.grad is not None
