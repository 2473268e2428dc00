"""CUBA-LIF functional core: hand-worked sequences, surrogate, split runs, fused scan."""

from __future__ import annotations

import pytest
import torch

from ferrocim.snn.functional import (
    AdaptiveLIFState,
    LIFParameters,
    LIFState,
    ThresholdAdaptation,
    adaptive_lif_step,
    cuba_lif_scan,
    cuba_lif_scan_reference,
    cuba_lif_step,
    init_adaptive_state,
    init_state,
    spike_fn,
)
from ferrocim.snn.modules import MIN_DECAY, AdaptiveCubaLIF, CubaLIF

D = torch.float64


def _params(beta: float = 0.5, gamma: float = 0.5) -> LIFParameters:
    return LIFParameters(torch.tensor(beta, dtype=D), torch.tensor(gamma, dtype=D))


def test_step_hand_worked_sequence() -> None:
    # beta = gamma = 0.5, threshold 0.1; worked by hand:
    # t0: c=.06 v=.06 s=0 | t1: c=.09 v=.03+.09=.12 s=1 | t2: c=.045 v=0+.045 s=0
    # t3: c=.2225 v=.0225+.2225=.245 s=1 | t4: c=.11125 v=0+.11125 s=1
    currents = [0.06, 0.06, 0.0, 0.2, 0.0]
    want_c = [0.06, 0.09, 0.045, 0.2225, 0.11125]
    want_v = [0.06, 0.12, 0.045, 0.245, 0.11125]
    want_s = [0.0, 1.0, 0.0, 1.0, 1.0]
    state = init_state(torch.zeros(1, dtype=D))
    p = _params()
    for i, c, v, s in zip(currents, want_c, want_v, want_s, strict=True):
        spike, state = cuba_lif_step(torch.tensor([i], dtype=D), state, p)
        assert state.c.item() == pytest.approx(c, abs=1e-15)
        assert state.v.item() == pytest.approx(v, abs=1e-15)
        assert spike.item() == s and state.s.item() == s
    spikes, last = cuba_lif_scan(torch.tensor(currents, dtype=D)[:, None], p)
    assert spikes[:, 0].tolist() == want_s
    assert last.v.item() == pytest.approx(0.11125, abs=1e-15)


def test_spike_is_strictly_above_threshold() -> None:
    p = _params()
    s, st = cuba_lif_step(torch.tensor([0.1], dtype=D), init_state(torch.zeros(1, dtype=D)), p)
    assert st.v.item() == 0.1 and s.item() == 0.0
    s, _ = cuba_lif_step(torch.tensor([0.1 + 1e-12], dtype=D), init_state(s), p)
    assert s.item() == 1.0


def test_rectangular_surrogate_is_the_published_one() -> None:
    # published PseudoSpikeRect: ds/dv = 0.3 * 1[|v - th| < 0.3] (half-width 0.3, height 0.3)
    x = torch.tensor([-0.31, -0.29, 0.0, 0.1, 0.29, 0.3, 0.31], dtype=D, requires_grad=True)
    s = spike_fn(x)
    assert s.tolist() == [0, 0, 0, 1, 1, 1, 1]
    (g,) = torch.autograd.grad(s.sum(), x)
    assert g.tolist() == [0, 0.3, 0.3, 0.3, 0.3, 0, 0]
    mask = torch.tensor([1, 1, 0, 1, 0, 1, 1], dtype=D) / 0.7
    (g,) = torch.autograd.grad(spike_fn(x, 0.3, 0.3, mask).sum(), x)
    assert g.tolist() == [0, 0.3, 0, 0.3, 0, 0, 0]
    (g,) = torch.autograd.grad(spike_fn(x, 0.1, 2.0).sum(), x)
    assert g.tolist() == [0, 0, 2.0, 0, 0, 0, 0]


def test_scan_gradient_uses_published_surrogate() -> None:
    # one step, v = I: dL/dI = 0.3 inside |v - 0.1| < 0.3, 0 outside (both paths)
    for scan in (cuba_lif_scan, cuba_lif_scan_reference):
        cur = torch.tensor([[0.35, 0.41, -0.19, -0.21]], dtype=D, requires_grad=True)
        s, _ = scan(cur, _params())
        (g,) = torch.autograd.grad(s.sum(), cur)
        assert g.tolist() == [[0.3, 0.0, 0.3, 0.0]]


def test_dropout_mask_compounds_the_current() -> None:
    # beta = gamma = 0.5, mask 2 (p = 0.5) on neuron 0, 0 on neuron 1; c = (beta c + I) m:
    # t0: c=.06 v=.06 | t1: c=(.03+0)*2=.06 v=.03+.06=.09 | t2: c=(.03+.03)*2=.12 v=.045+.12
    # (the old c = beta c + I m would give c = .06, .03, .075 and v = .06, .06, .105)
    mask = torch.tensor([2.0, 0.0], dtype=D)
    currents = torch.tensor([[0.03, 0.5], [0.0, 0.5], [0.03, 0.5]], dtype=D)
    want_c, want_v = [0.06, 0.06, 0.12], [0.06, 0.09, 0.165]
    state = init_state(torch.zeros(2, dtype=D))
    for i, c, v in zip(currents, want_c, want_v, strict=True):
        s, state = cuba_lif_step(i, state, _params(), dropout_mask=mask)
        assert state.c[0].item() == pytest.approx(c, abs=1e-15)
        assert state.v[0].item() == pytest.approx(v, abs=1e-15)
        assert state.c[1].item() == 0 and s[1].item() == 0
    for scan in (cuba_lif_scan, cuba_lif_scan_reference):
        spikes, last = scan(currents, _params(), dropout_mask=mask)
        assert spikes[:, 0].tolist() == [0.0, 0.0, 1.0]
        assert last.c[0].item() == pytest.approx(0.12, abs=1e-15)
    r = init_adaptive_state(torch.zeros(2, dtype=D), 0.1)
    for i in currents:
        _, r = adaptive_lif_step(i, r, _params(), dropout_mask=mask)
    assert r.c.tolist() == pytest.approx([0.12, 0.0], abs=1e-15)


def test_adaptive_threshold_hand_worked() -> None:
    # th0 = .1; t0: v=.15>.1 s=1 th=.11 | t1: c=.075 v=0+.075<.11 s=0 th=max(.011,.01)=.011
    # t2: c=.0375 v=.0375+.0375=.075>.011 s=1 th=.021 | t3: c=.06875 v=.06875 s=1 th=.031
    p = _params()
    state = init_adaptive_state(torch.zeros(1, dtype=D), 0.1)
    want = [(1.0, 0.11), (0.0, 0.011), (1.0, 0.021), (1.0, 0.031)]
    for i, (s_want, th_want) in zip([0.15, 0.0, 0.0, 0.05], want, strict=True):
        s, state = adaptive_lif_step(torch.tensor([i], dtype=D), state, p, ThresholdAdaptation())
        assert s.item() == s_want
        assert state.th.item() == pytest.approx(th_want, abs=1e-15)
    assert isinstance(state, AdaptiveLIFState)


def _random_case(seed: int, masked: bool, with_state: bool):
    g = torch.Generator().manual_seed(seed)
    T, B, N = 40, 3, 5
    cur = (torch.rand(T, B, N, dtype=D, generator=g) * 0.2).requires_grad_()
    beta = torch.rand(N, dtype=D, generator=g).requires_grad_()
    gamma = torch.rand(N, dtype=D, generator=g).requires_grad_()
    leaves = [cur, beta, gamma]
    state = None
    if with_state:
        c0 = (torch.rand(B, N, dtype=D, generator=g) * 0.1).requires_grad_()
        v0 = (torch.rand(B, N, dtype=D, generator=g) * 0.1).requires_grad_()
        s0 = (torch.rand(B, N, generator=g) > 0.5).to(D).requires_grad_()
        state = LIFState(c0, v0, s0)
        leaves += [c0, v0, s0]
    mask = (torch.rand(B, N, generator=g) > 0.3).to(D) if masked else None
    w_out = torch.randn(T, B, N, dtype=D, generator=g)
    return cur, LIFParameters(beta, gamma), state, mask, leaves, w_out


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_fused_scan_equals_step_loop_with_gradients(masked: bool, with_state: bool) -> None:
    results = []
    for scan in (cuba_lif_scan, cuba_lif_scan_reference):
        cur, p, state, mask, leaves, w_out = _random_case(3, masked, with_state)
        s, last = scan(cur, p, state, dropout_mask=mask)
        loss = (s * w_out).sum() + (last.c * 2).sum() + (last.v**2).sum()
        results.append((s, last, torch.autograd.grad(loss, leaves)))
    (s1, l1, g1), (s2, l2, g2) = results
    assert 0.2 < s1.mean().item() < 0.9  # the case really spikes and resets
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    for a, b in zip(l1, l2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("scan", [cuba_lif_scan, cuba_lif_scan_reference])
def test_scan_split_in_two_equals_one_piece(scan) -> None:
    cur, p, _, mask, leaves, w_out = _random_case(5, True, False)
    whole, last_whole = scan(cur, p, dropout_mask=mask)
    g_whole = torch.autograd.grad((whole * w_out).sum(), leaves)
    a, st = scan(cur[:17], p, dropout_mask=mask)
    b, last = scan(cur[17:], p, st, dropout_mask=mask)
    both = torch.cat([a, b])
    g_split = torch.autograd.grad((both * w_out).sum(), leaves)
    torch.testing.assert_close(both, whole, rtol=0, atol=0)
    for x, y in zip(last, last_whole, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14)
    for x, y in zip(g_split, g_whole, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_module_binds_full_shape_parameters_and_clamps() -> None:
    lif = CubaLIF((4, 2, 3))
    assert lif.beta.shape == (4, 2, 3) and lif.gamma.shape == (4, 2, 3)
    assert torch.all(lif.beta == 0.1) and torch.all(lif.gamma == 0.1)
    with torch.no_grad():
        lif.beta.fill_(-1.0)
    assert torch.all(lif.params().beta == MIN_DECAY)
    spikes, _ = lif(torch.full((5, 2, 4, 2, 3), 0.2))
    assert spikes.shape == (5, 2, 4, 2, 3) and torch.all(spikes == 1)
    r = AdaptiveCubaLIF((3,))
    s, st = r.step(torch.full((2, 3), 0.15))
    assert torch.all(s == 1) and torch.allclose(st.th, torch.full((2, 3), 0.11))
